"""The hgpt command as a user runs it."""

import json
import os
import shutil
import signal

import numpy as np
import pytest

from humanoid_gpt.cli import main


def test_motions_check_flags_the_bad_file_and_exits_nonzero(tmp_path, lafan1_dir, capsys):
    shutil.copy(lafan1_dir / "walk1_subject1.csv", tmp_path / "good.csv")
    lines = (lafan1_dir / "run1_subject2.csv").read_text().splitlines()[:100]
    (tmp_path / "bad.csv").write_text("\n".join(lines[:-1] + [lines[-1][:40]]) + "\n")
    code = main(["motions", "check", str(tmp_path), "--json", str(tmp_path / "checks.json")])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 valid, 1 invalid" in out
    checks = {c["name"]: c for c in json.loads((tmp_path / "checks.json").read_text())}
    assert checks["good"]["status"] == "ok"
    assert checks["bad"]["status"] == "invalid" and "truncated" in checks["bad"]["findings"][0]


def test_motions_check_on_clean_data_exits_zero(lafan1_dir, capsys):
    assert main(["motions", "check", str(lafan1_dir / "walk1_subject1.csv")]) == 0


def test_missing_file_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["motions", "check", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_convert_to_beyondmimic_and_back(tmp_path, lafan1_dir, capsys):
    src = tmp_path / "walk.csv"
    src.write_text("\n".join((lafan1_dir / "walk1_subject1.csv").read_text().splitlines()[:90]) + "\n")
    assert (
        main(["motions", "convert", str(src), str(tmp_path / "walk_bm.npz"), "--to", "beyondmimic", "--fps", "50"]) == 0
    )
    data = np.load(tmp_path / "walk_bm.npz")
    assert float(data["fps"][0]) == 50.0 and data["body_pos_w"].shape[1:] == (30, 3)
    assert main(["motions", "check", str(tmp_path / "walk_bm.npz")]) == 0


def test_main_prints_a_preset_to_copy_and_refuses_a_missing_config(tmp_path, capsys):
    assert main(["main", "--print-config", "demo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# The README's main job") and "name: demo" in text
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("max_iterations: 250", "max_iterations: -1"))
    assert main(["main", "--config", str(mine)]) == 2
    assert "experts.max_iterations=-1 must be positive" in capsys.readouterr().err
    assert main(["main", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "no such main-job config" in capsys.readouterr().err
    smaller = tmp_path / "smaller.yaml"  # an override is checked with the preset it changes, naming both files
    smaller.write_text("experts: {num_envs: 0}\n")
    assert main(["main", "--preset", "gpu", "--override", str(smaller)]) == 2
    assert f"gpu.yaml + {smaller}: experts.num_envs=0 must be positive" in capsys.readouterr().err
    assert main(["main", "--preset", "gpu", "--override", str(tmp_path / "nope.yaml")]) == 2
    assert "no such main-job overrides file" in capsys.readouterr().err


def test_robot_info_lists_all_joints(capsys):
    assert main(["robot", "info"]) == 0
    out = capsys.readouterr().out
    assert "left_hip_pitch_joint" in out and "right_wrist_yaw_joint" in out


def test_retarget_writes_g1_clips_that_load(tmp_path, lafan1_bvh_dir, g1, capsys):
    from humanoid_gpt.motion import load_clip

    assert main(["retarget", str(lafan1_bvh_dir / "walk.bvh"), "--out", str(tmp_path)]) == 0
    assert "1 of 1 retargeted" in capsys.readouterr().out
    clip = load_clip(tmp_path / "walk.npz", g1=g1)
    assert clip.num_frames == 1800 and clip.provenance["retarget"]["status"] == "ok"
    assert (tmp_path / "walk.retarget.json").is_file()
    assert main(["retarget", str(tmp_path / "nothing.bvh"), "--out", str(tmp_path)]) == 1
    assert "nothing.bvh" in capsys.readouterr().out


def _short_bvh(src, dst, frames: int) -> None:
    lines = src.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Frames:"))
    dst.write_text("\n".join([*lines[:at], f"Frames: {frames}", *lines[at + 1 : at + 2 + frames]]) + "\n")


def test_retarget_fps_is_the_rate_of_files_that_store_none(tmp_path, lafan1_bvh_dir, g1, capsys):
    """--fps reads a raw joint-position .npy (it stores no rate); on a BVH storing 30 fps it changes nothing but
    says so; --out-fps resamples the output."""
    from mocap_support import SMPL24_REST

    from humanoid_gpt.governance.mocap import MocapWarning
    from humanoid_gpt.motion import load_clip

    raw = SMPL24_REST[None] + np.linspace(0, 0.5, 20)[:, None, None] * [0, 0, 1]  # (T, 24, 3), Y up, walking
    np.save(tmp_path / "raw.npy", raw)
    assert main(["retarget", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "a"), "--fps", "25"]) == 0
    assert load_clip(tmp_path / "a" / "raw.npz", g1=g1).fps == 25.0
    assert main(["retarget", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "b")]) == 1
    assert "pass fps=" in capsys.readouterr().out  # still never guessed

    _short_bvh(lafan1_bvh_dir / "walk.bvh", tmp_path / "walk.bvh", 30)
    with pytest.warns(MocapWarning, match="stores 30 fps and is read at that rate.*--out-fps 60"):
        assert main(["retarget", str(tmp_path / "walk.bvh"), "--out", str(tmp_path / "c"), "--fps", "60"]) == 0
    clip = load_clip(tmp_path / "c" / "walk.npz", g1=g1)
    assert (clip.fps, clip.num_frames) == (30.0, 30)
    assert main(["retarget", str(tmp_path / "walk.bvh"), "--out", str(tmp_path / "d"), "--out-fps", "60"]) == 0
    clip = load_clip(tmp_path / "d" / "walk.npz", g1=g1)
    assert clip.fps == 60.0 and clip.num_frames >= 58


def test_sim2sim_eval_reads_files_that_store_no_rate_at_fps(tmp_path, lafan1_dir, capsys):
    """A G1 CSV outside its dataset folder stores no rate: --fps gives it (no 30 fps assumption, no warning)."""
    import warnings

    from humanoid_gpt.motion.rates import FrameRateWarning

    clip = tmp_path / "mine.csv"
    clip.write_text("\n".join((lafan1_dir / "walk1_subject1.csv").read_text().splitlines()[:60]) + "\n")
    out = tmp_path / "e.json"
    argv = ["sim2sim", "eval", "--policy", "zero", "--motions", str(clip), "--out", str(out), "--num-envs", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameRateWarning)  # the 30 fps assumption: it must not happen
        assert main([*argv, "--fps", "60"]) == 0
    result = json.loads(out.read_text())
    assert result["clips"]["mine"]["duration_s"] == pytest.approx(1.0, abs=0.05), result["clips"]["mine"]


def test_sim2sim_eval_renders_the_robot_beside_its_reference(tmp_path, lafan1_dir, capsys):
    import imageio.v3 as iio

    clip = str(lafan1_dir / "dance1_subject1.csv")
    argv = ["sim2sim", "eval", "--policy", "zero", "--motions", clip, "--out", str(tmp_path / "e.json")]
    argv += ["--max-seconds", "2", "--relative-actions", "--video", str(tmp_path / "v.mp4")]
    assert main(argv) == 0
    frames = iio.imread(tmp_path / "v.mp4")
    report = json.loads((tmp_path / "e.json").read_text())
    steps = report["clips"]["dance1_subject1"]["frames"]
    assert len(frames) == steps // 2 and frames.shape[1:] == (360, 480, 3)  # every 2nd step until the last
    out = capsys.readouterr().out
    assert "recording" not in report and "blue: the reference" in out
    # The printed table tells "drifted" (G-MPKPE) from "fell" (seconds until the fall of failed windows).
    assert "| G-MPKPE (mm) | stable (s) | fell after (s) |" in out and "| dance1_subject1 |" in out


def test_sim2sim_eval_shows_several_policies_side_by_side_in_one_video(tmp_path, lafan1_dir, capsys):
    """Labs compare trackers by watching them on the same clip: one video, a panel per policy in --policy order, the
    one that falls first holding its last frame until the other ends."""
    import imageio.v3 as iio

    clip = str(lafan1_dir / "walk1_subject1.csv")
    argv = ["sim2sim", "eval", "--policy", "reference", "--policy", "zero", "--motions", clip, "--num-envs", "1"]
    argv += ["--max-seconds", "2", "--out", str(tmp_path / "e.json"), "--video", str(tmp_path / "v.mp4")]
    assert main(argv) == 0
    frames = iio.imread(tmp_path / "v.mp4")
    report = json.loads((tmp_path / "e.json").read_text())["policies"]
    steps = max(r["clips"]["walk1_subject1"]["frames"] for r in report.values())
    assert frames.shape[1:] == (360, 2 * 480, 3) and len(frames) == steps // 2
    assert "left to right: reference, zero" in capsys.readouterr().out
    assert not (tmp_path / "v_zero.mp4").exists()  # one video, not one per policy


def test_sigterm_ends_a_command_like_ctrl_c(monkeypatch, capsys):
    """Schedulers stop jobs with SIGTERM: the command exits as after Ctrl-C, with a message and 128 + the signal."""
    from humanoid_gpt import cli

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_robot_info", killed)
    assert main(["robot", "info"]) == 143
    assert "interrupted (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the command's only
