"""Every real clip loads and validates; bad input gives a clear error naming the file, field and fix; writes are
atomic; our format and BeyondMimic NPZ round-trip."""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from humanoid_gpt import settings
from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.motion import MotionClip, load_clip, save_beyondmimic_npz, save_clip
from humanoid_gpt.motion.formats import joint_order_permutations, read_beyondmimic_npz, read_holosoma_npz
from humanoid_gpt.motion.io import read_clip
from humanoid_gpt.motion.rates import MotionWarning


def _all_g1_files() -> list[Path]:
    root = settings.data_root() / "g1_motions"
    return sorted(p for p in root.rglob("*") if p.suffix in (".csv", ".npz")) if root.is_dir() else []


@pytest.mark.parametrize("path", _all_g1_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_clip_loads_and_validates(path, g1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MotionWarning)  # G1 Moves has a few fast shoulder frames: flagged, not fatal
        clip = load_clip(path, g1=g1)
    assert clip.num_frames > 100 and clip.joint_pos.shape == (clip.num_frames, 29)
    np.testing.assert_allclose(np.linalg.norm(clip.root_quat, axis=1), 1.0, atol=1e-9)
    assert clip.fps == (60.0 if "g1_moves" in path.parent.name else 30.0)


def test_shared_data_is_present():
    """Guards the parametrized test above from passing vacuously when the data root is wrong."""
    files = _all_g1_files()
    if not files:
        pytest.skip("no data under HGPT_DATA_ROOT")
    assert sum(f.suffix == ".csv" for f in files) == 89


def test_csv_quaternion_is_read_as_xyzw(lafan1_dir):
    raw = np.loadtxt(lafan1_dir / "walk1_subject1.csv", delimiter=",", max_rows=3)
    clip = read_clip(lafan1_dir / "walk1_subject1.csv")
    np.testing.assert_allclose(clip.root_quat[:3], raw[:, [6, 3, 4, 5]])
    assert clip.provenance["performer"] == "subject1" and clip.provenance["tags"] == ["walk"]


def test_g1_moves_provenance_comes_from_its_manifest(g1_moves_dir):
    clip = read_clip(g1_moves_dir / "dance__B_DadDance.csv")
    assert clip.provenance["tags"] == ["dance"] and clip.provenance["performer"]


# Bad input --------------------------------------------------------------------------------------------------------


@pytest.fixture
def walk_lines(lafan1_dir) -> list[str]:
    return (lafan1_dir / "walk1_subject1.csv").read_text().splitlines()[:300]


def _write(tmp_path: Path, lines: list[str], name: str = "clip.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_truncated_csv_names_the_line(tmp_path, walk_lines):
    lines = walk_lines[:]
    lines[-1] = lines[-1][: len(lines[-1]) // 2].rstrip(",")
    with pytest.raises(
        MotionFormatError, match=r"clip.csv: line 300 has \d+ columns, expected 36: the file looks truncated"
    ):
        load_clip(_write(tmp_path, lines))


def test_35_columns_is_rejected(tmp_path, walk_lines):
    lines = [",".join(line.split(",")[:35]) for line in walk_lines]
    with pytest.raises(MotionFormatError, match="line 1 has 35 columns, expected 36"):
        load_clip(_write(tmp_path, lines))


def test_nan_row_names_frame_and_field(tmp_path, walk_lines):
    lines = walk_lines[:]
    cols = lines[120].split(",")
    cols[7 + 3] = "nan"  # left knee
    lines[120] = ",".join(cols)
    with pytest.raises(
        MotionValidationError, match=r"clip.csv: invalid motion:\n  error: left_knee_joint at frame 120: NaN"
    ):
        load_clip(_write(tmp_path, lines))


def test_header_row_is_rejected(tmp_path, walk_lines):
    header = ",".join(["c"] * 36)
    with pytest.raises(MotionFormatError, match="not a numeric G1 CSV"):
        load_clip(_write(tmp_path, [header] + walk_lines))


def test_empty_file_is_rejected(tmp_path):
    with pytest.raises(MotionFormatError, match="empty"):
        load_clip(_write(tmp_path, []))


def _wxyz_quaternion(rows):
    rows[:, 3:7] = rows[:, [6, 3, 4, 5]]  # store w, x, y, z where the format wants x, y, z, w


def _scaled_quaternion(rows):
    rows[50, 3:7] *= 1.5


def _centimetres(rows):
    rows[:, :3] *= 100.0


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_wxyz_quaternion, "root_quat: .*other order"),
        (_scaled_quaternion, "root_quat at frame 50: norm 1.5"),
        (_centimetres, r"root_pos\[2\] at frame 0: pelvis height 7\d\.\d+ m"),
    ],
)
def test_implausible_content_is_rejected(tmp_path, walk_lines, corrupt, message):
    rows = np.array([[float(v) for v in line.split(",")] for line in walk_lines])
    corrupt(rows)
    p = tmp_path / "clip.csv"
    np.savetxt(p, rows, delimiter=",", fmt="%.6f")
    with pytest.raises(MotionValidationError, match=message):
        load_clip(p)


def test_wrong_joint_order_is_detected(tmp_path, lafan1_dir, g1):
    rows = np.loadtxt(lafan1_dir / "dance1_subject1.csv", delimiter=",", max_rows=600)
    rows[:, 7:] = rows[:, 7:][:, joint_order_permutations(g1)["isaaclab"]]  # Isaac Lab's order, not the G1's
    p = tmp_path / "isaac_order.csv"
    np.savetxt(p, rows, delimiter=",", fmt="%.6f")
    with pytest.raises(MotionValidationError, match="not in the G1 joint order"):
        load_clip(p)


def test_corrupt_npz_is_a_clear_error(tmp_path, g1_moves_npz_dir):
    p = tmp_path / "cut.npz"
    p.write_bytes((g1_moves_npz_dir / "B_HandsUp.npz").read_bytes()[:5000])
    with pytest.raises(MotionFormatError, match="cut.npz: not a readable NPZ"):
        load_clip(p)


def test_unknown_npz_layout_names_the_keys(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, poses=np.zeros((3, 72)))
    with pytest.raises(MotionFormatError, match=r"other.npz: unknown NPZ layout with keys \['poses'\]"):
        load_clip(p)


def test_wrong_joint_count_in_npz(tmp_path):
    p = tmp_path / "holo.npz"
    np.savez(p, qpos=np.zeros((10, 30)), fps=np.array(30.0))
    with pytest.raises(MotionFormatError, match=r"'qpos' has shape \(10, 30\), expected \(N, 36\)"):
        read_holosoma_npz(p)


# Round trips and writers ------------------------------------------------------------------------------------------


def test_clip_npz_round_trip(tmp_path, walk_clip):
    p = save_clip(walk_clip, tmp_path / "walk.npz")
    back = load_clip(p)
    assert back.name == walk_clip.name and back.fps == walk_clip.fps
    assert back.provenance["performer"] == "subject1"
    for key in ("root_pos", "root_quat", "joint_pos"):
        np.testing.assert_allclose(getattr(back, key), getattr(walk_clip, key), rtol=0, atol=1e-12)


def test_newer_schema_is_refused(tmp_path, walk_clip):
    p = save_clip(walk_clip.slice(0, 10), tmp_path / "w.npz")
    data = dict(np.load(p))
    data["schema_version"] = np.array(99)
    np.savez(p, **data)
    with pytest.raises(MotionFormatError, match="schema version 99 is newer"):
        load_clip(p)


@pytest.mark.parametrize("order", ["isaaclab", "unitree"])
def test_beyondmimic_npz_round_trip_detects_joint_order(tmp_path, walk_clip, g1, order):
    clip = walk_clip.slice(0, 120)
    p = save_beyondmimic_npz(clip, tmp_path / f"walk_{order}.npz", g1, joint_order=order)
    data = np.load(p)
    assert data["joint_pos"].shape == (119, 29) and data["body_pos_w"].shape == (119, 30, 3)
    back = read_beyondmimic_npz(p, g1)
    assert back.provenance["joint_order"] == order
    np.testing.assert_allclose(back.joint_pos, clip.joint_pos[:119], atol=1e-6)
    np.testing.assert_allclose(back.root_pos, clip.root_pos[:119], atol=1e-6)


def test_holosoma_npz(tmp_path, walk_clip):
    p = tmp_path / "holo.npz"
    np.savez(p, qpos=walk_clip.qpos()[:50], fps=np.array(30.0))
    clip = load_clip(p)
    np.testing.assert_allclose(clip.joint_pos, walk_clip.joint_pos[:50])
    np.testing.assert_allclose(clip.root_quat, walk_clip.root_quat[:50])


def test_failed_write_leaves_nothing_behind(tmp_path, walk_clip, monkeypatch):
    target = tmp_path / "out.npz"

    def boom(f, **arrays):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_clip(walk_clip, target)
    assert os.listdir(tmp_path) == []


def test_existing_file_survives_a_failed_overwrite(tmp_path, walk_clip, monkeypatch):
    target = save_clip(walk_clip.slice(0, 10), tmp_path / "out.npz")
    before = target.read_bytes()
    monkeypatch.setattr(np, "savez", lambda f, **a: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        save_clip(walk_clip, target)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["out.npz"]


def test_load_clips_reads_a_folder(tmp_path, lafan1_dir, g1):
    from humanoid_gpt.motion import load_clips

    for name in ("walk1_subject1.csv", "run1_subject2.csv"):
        shutil.copy(lafan1_dir / name, tmp_path / name)
    clips = load_clips([tmp_path], g1)
    assert [c.name for c in clips] == ["run1_subject2", "walk1_subject1"]
    assert isinstance(clips[0], MotionClip)
