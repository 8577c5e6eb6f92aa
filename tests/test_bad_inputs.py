"""Bad input through the ``hgpt`` command, as a new user gives it: every case is refused with a message naming the
file or option and the fix, never a traceback (exit 3 is the catch-all for an unchecked input), and leaves no
output behind that looks complete. Bad files are made here from the shared clips."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hostile_support import (
    amass_clip,
    hostile_body_model,
    hostile_checkpoint,
    onnx_with_external_data,
    radians_under_degrees,
    registry_file,
)

from humanoid_gpt.cli import main

WALK = "g1_motions/lafan1/walk1_subject1.csv"
AMC = "mocap/cmu_asf_amc/02_01.amc"
BVH = "mocap/lafan1_bvh/walk.bvh"


@dataclass
class Case:
    argv: Callable[[Path, Path], list[str]]  # (tmp folder, data root) -> arguments
    code: int  # 2: a user error, argparse's or ours
    fragments: tuple[str, ...]  # all must appear in stderr
    setup: Callable[[Path, Path], None] = lambda tmp, data: None
    env: dict = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # outputs (relative to tmp) that must not exist afterwards


def _write(rel: str, text: str | bytes):
    def setup(tmp: Path, data: Path) -> None:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(text if isinstance(text, bytes) else text.encode())

    return setup


def _head(rel: str, lines: int):
    def setup(tmp: Path, data: Path) -> None:
        (tmp / rel).write_text("\n".join((data / WALK).read_text().splitlines()[:lines]) + "\n")

    return setup


def _meshless_menagerie(tmp: Path, data: Path) -> None:
    from humanoid_gpt.robot.g1 import resolve_g1_xml

    (tmp / "men" / "unitree_g1").mkdir(parents=True)
    xml = resolve_g1_xml()
    (tmp / "men" / "unitree_g1" / xml.name).write_text(xml.read_text())


def _transformed(rel: str, transform: Callable[[list[str]], list[str]], lines: int = 300):
    """A CSV made from the walk clip's first rows, each row's 36 fields transformed."""

    def setup(tmp: Path, data: Path) -> None:
        rows = [r.split(",") for r in (data / WALK).read_text().splitlines()[:lines]]
        (tmp / rel).write_text("\n".join(",".join(transform(r)) for r in rows) + "\n")

    return setup


def _degrees(row: list[str]) -> list[str]:
    return row[:7] + [f"{float(v) * 57.29578:.4f}" for v in row[7:]]


def _relative_height(row: list[str]) -> list[str]:
    return row[:2] + [f"{float(row[2]) - 0.79:.4f}"] + row[3:]


def _frozen(tmp: Path, data: Path) -> None:
    import numpy as np

    qpos = np.tile(np.r_[0, 0, 0.78, 1, 0, 0, 0, np.zeros(29)], (100_000, 1))
    np.savez(tmp / "frozen.npz", fps=np.array([30.0]), qpos=qpos)


def _made(make: Callable[[Path, Path], object]) -> Callable[[Path, Path], None]:
    """A setup from a hostile_support generator of (tmp folder, data root): what it returns is not needed."""

    def setup(tmp: Path, data: Path) -> None:
        make(tmp, data)

    return setup


def _short_bvh(tmp: Path, data: Path) -> None:
    """The walk BVH (30 fps stored) cut to its first 20 frames."""
    head, motion = (data / BVH).read_text().split("MOTION\n")
    lines = motion.splitlines()
    (tmp / "walk.bvh").write_text(head + "MOTION\nFrames: 20\n" + "\n".join(lines[1:22]) + "\n")


def _main_config(tmp: Path, data: Path) -> None:
    import yaml

    from humanoid_gpt.jobs.config import preset_path

    cfg = yaml.safe_load(preset_path("demo").read_text())
    cfg["corpus"]["num_cpus"] = 0
    (tmp / "job.yaml").write_text(yaml.safe_dump(cfg))


def _evaluate(rel: str) -> Callable[[Path, Path], list[str]]:
    """sim2sim eval of the policy file ``rel`` on the walk clip."""
    return lambda t, d: ["sim2sim", "eval", "--policy", str(t / rel), "--motions", str(d / WALK), "--out", str(t / "e")]


def _check(rel: str) -> Callable[[Path, Path], list[str]]:
    return lambda t, d: ["motions", "check", str(t / rel), "--json", str(t / "checks.json")]


CASES = {
    "joints in degrees": Case(_check("deg.csv"), 1, (), setup=_transformed("deg.csv", _degrees)),
    "a root height relative to the start": Case(
        _check("low.csv"), 1, (), setup=_transformed("low.csv", _relative_height)
    ),
    "an array of one repeated pose": Case(_check("frozen.npz"), 1, (), setup=_frozen),
    "binary data named .csv": Case(
        lambda t, d: ["motions", "convert", str(t / "bin.csv"), str(t / "out.npz")],
        2,
        ("bin.csv", "not a text CSV"),
        setup=_write("bin.csv", bytes(range(256)) * 20),
        absent=("out.npz",),
    ),
    "a folder without motion files": Case(
        lambda t, d: ["sim2sim", "eval", "--policy", "zero", "--motions", str(t / "docs"), "--out", str(t / "e.json")],
        2,
        ("docs", "no motion files", "notes.txt"),
        setup=_write("docs/notes.txt", "hi"),
        absent=("e.json",),
    ),
    "a zero frame rate": Case(
        lambda t, d: ["motions", "convert", str(d / WALK), str(t / "out.npz"), "--src-fps", "0"],
        2,
        ("--src-fps", "0"),
        absent=("out.npz",),
    ),
    "eval with zero envs": Case(
        lambda t, d: [
            "sim2sim",
            "eval",
            "--policy",
            "zero",
            "--motions",
            str(d / WALK),
            "--out",
            str(t / "e.json"),
            "--num-envs",
            "0",
        ],
        2,
        ("--num-envs", "must be positive"),
        absent=("e.json",),
    ),
    "eval with negative seconds": Case(
        lambda t, d: [
            "sim2sim",
            "eval",
            "--policy",
            "zero",
            "--motions",
            str(d / WALK),
            "--out",
            str(t / "e.json"),
            "--max-seconds",
            "-1",
        ],
        2,
        ("--max-seconds", "must be positive"),
        absent=("e.json",),
    ),
    "eval of a three-frame clip": Case(
        lambda t, d: [
            "sim2sim",
            "eval",
            "--policy",
            "zero",
            "--motions",
            str(t / "three.csv"),
            "--out",
            str(t / "e.json"),
        ],
        2,
        ("three", "shorter than 0.5 s", "longer clips"),
        setup=_head("three.csv", 3),
        absent=("e.json",),
    ),
    "train with zero envs": Case(
        lambda t, d: ["train", "expert", "--task", "HGPT-Cluster-000", "--num-envs", "0", "--log-root", str(t / "r")],
        2,
        ("--num-envs", "at least 1"),
        absent=("r",),
    ),
    "train with a zero save interval": Case(
        lambda t, d: [
            "train",
            "expert",
            "--task",
            "HGPT-Cluster-000",
            "--save-interval",
            "0",
            "--log-root",
            str(t / "r"),
        ],
        2,
        ("--save-interval", "at least 1"),
        absent=("r",),
    ),
    "train with zero iterations": Case(
        lambda t, d: [
            "train",
            "expert",
            "--task",
            "HGPT-Cluster-000",
            "--max-iterations",
            "0",
            "--log-root",
            str(t / "r"),
        ],
        2,
        ("--max-iterations", "at least 1"),
        absent=("r",),
    ),
    "resume from a config file": Case(
        lambda t, d: ["train", "expert", "--task", "HGPT-Cluster-000", "--resume", str(t / "run" / "config.json")],
        2,
        ("config.json is not a checkpoint", "pass the run folder"),
        setup=_write("run/config.json", "{}"),
    ),
    "export a config file": Case(
        lambda t, d: ["export", "onnx", str(t / "config.json"), "--out", str(t / "x")],
        2,
        ("config.json", "not a readable checkpoint", "corrupt or truncated"),
        setup=_write("config.json", "{}"),
        absent=("x",),
    ),
    "a manifest that is a list": Case(
        lambda t, d: ["train", "expert", "--task", "HGPT-Cluster-000", "--log-root", str(t / "r")],
        2,
        ("list.json", "JSON object"),
        setup=_write("list.json", "[1, 2]"),
        absent=("r",),
        env={"HGPT_CLUSTER_MANIFEST": "{tmp}/list.json"},
    ),
    "convert to a csv name": Case(
        lambda t, d: ["motions", "convert", str(d / WALK), str(t / "out.csv")],
        2,
        ("out.csv", ".npz"),
        absent=("out.csv",),
    ),
    "a menagerie folder without meshes": Case(
        lambda t, d: ["robot", "info"],
        2,
        ("cannot load the G1 model", "assets/", "MENAGERIE_ROOT"),
        setup=_meshless_menagerie,
        env={"MENAGERIE_ROOT": "{tmp}/men"},
    ),
    "an evaluation's --out that is a folder": Case(
        lambda t, d: ["sim2sim", "eval", "--policy", "zero", "--motions", str(d / WALK), "--out", str(t)],
        2,
        ("argument --out", "is an existing folder", "name a file inside it"),
    ),
    "an evaluation's --out under /proc": Case(
        lambda t, d: ["sim2sim", "eval", "--policy", "zero", "--motions", str(d / WALK), "--out", "/proc/hgpt/e.json"],
        2,
        ("argument --out", "cannot write in /proc", "choose a place you can write to"),
    ),
    "an evaluation's --out under a file": Case(
        lambda t, d: ["sim2sim", "eval", "--policy", "zero", "--motions", str(d / WALK), "--out", str(t / "f/e.json")],
        2,
        ("argument --out", "is a file, so no file can be created under it"),
        setup=_write("f", "a file"),
    ),
    "teleop --json that is a folder": Case(
        lambda t, d: ["teleop", "--source", "udp://127.0.0.1:9", "--policy", "p.onnx", "--json", str(t)],
        2,
        ("argument --json", "is an existing folder"),
    ),
    "retarget --out that is a file": Case(
        lambda t, d: ["retarget", str(t / "walk.bvh"), "--out", str(t / "walk.bvh")],
        2,
        ("argument --out", "is an existing file, and this names a folder"),
        setup=_write("walk.bvh", "HIERARCHY\n"),
    ),
    # Issue 27's classes: files that would run code or lead out of their folder, malformed records, unit and rate
    # mismatches, a teleop port open to the network, config values refused when the config loads.
    "a checkpoint that would run code, as a policy": Case(
        _evaluate("evil.pt"),
        2,
        ("evil.pt", "refused, not loaded", "Fix"),
        setup=_made(lambda t, d: hostile_checkpoint(t / "evil.pt", t / "marker")),
        absent=("marker",),
    ),
    "a checkpoint that would run code, resumed": Case(
        lambda t, d: [
            "train",
            "expert",
            "--task",
            "HGPT-Cluster-000",
            "--resume",
            str(t / "evil.pt"),
            "--threads",
            "1",
        ],
        2,
        ("evil.pt", "refused, not loaded", "Fix"),
        setup=_made(lambda t, d: hostile_checkpoint(t / "evil.pt", t / "marker")),
        absent=("marker",),
    ),
    "a body model that would run code": Case(
        lambda t, d: ["retarget", str(t / "amass.npz"), "--out", str(t / "rt")],
        1,
        ("SMPLH_MALE.pkl", "refused rather than run", "Fix: convert the model to .npz"),
        setup=_made(lambda t, d: (amass_clip(t / "amass.npz"), hostile_body_model(t / "bm", t / "marker"))),
        env={"HGPT_BODY_MODELS": "{tmp}/bm"},
        absent=("marker",),
    ),
    "a registry checkpoint leading out of its folder": Case(
        lambda t, d: ["distill", "--registry", str(t / "reg.json"), "--log-root", str(t / "d")],
        2,
        ("reg.json", "cluster '900'", "../../../../etc/passwd", "leads out of the registry's folder"),
        setup=_made(lambda t, d: registry_file(t / "reg.json", checkpoint="../../../../etc/passwd")),
        absent=("d",),
    ),
    "a registry record whose checkpoint is a number": Case(
        lambda t, d: ["distill", "--registry", str(t / "reg.json"), "--log-root", str(t / "d")],
        2,
        ("reg.json", "experts.900: checkpoint=5 is not a str", "Fix"),
        setup=_made(lambda t, d: registry_file(t / "reg.json", checkpoint=5)),
        absent=("d",),
    ),
    "a manifest clip leading out of the data root": Case(
        lambda t, d: ["train", "expert", "--task", "HGPT-Cluster-900", "--log-root", str(t / "r")],
        2,
        ("m.json", "../../../etc/passwd", "leads out of the data root"),
        setup=_write("m.json", json.dumps({"schema_version": 1, "clusters": {"900": ["../../../etc/passwd"]}})),
        env={"HGPT_CLUSTER_MANIFEST": "{tmp}/m.json"},
        absent=("r",),
    ),
    "ONNX external data outside the model's folder": Case(
        _evaluate("p/m.onnx"),
        2,
        ("m.onnx", "tensor 'weight'", "../outside/w.bin", "leads out of the model's folder"),
        setup=_made(lambda t, d: onnx_with_external_data(t / "p/m.onnx", "../outside/w.bin")),
    ),
    "ONNX external data missing": Case(
        _evaluate("p/m.onnx"),
        2,
        ("m.onnx", "tensor 'weight'", "is missing", "Fix: copy 'w.bin' beside m.onnx"),
        setup=_made(lambda t, d: onnx_with_external_data(t / "p/m.onnx", "w.bin").with_name("w.bin").unlink()),
    ),
    "an AMC in radians under :DEGREES": Case(
        lambda t, d: ["retarget", str(t / "02_01.amc"), "--out", str(t / "rt")],
        1,
        ("02_01.amc", "stated in degrees (:DEGREES)", "nearly frozen", "Fix: change the header line to :RADIANS"),
        setup=_made(lambda t, d: radians_under_degrees(d / AMC, t / "02_01.amc")),
    ),
    "retarget --fps on a BVH that stores another rate": Case(
        lambda t, d: ["retarget", str(t / "walk.bvh"), "--out", str(t / "rt"), "--fps", "60"],
        0,
        ("stores 30 fps", "read at that rate", "--out-fps 60"),
        setup=_short_bvh,
    ),
    "teleop on every interface without --allow-network": Case(
        lambda t, d: ["teleop", "--source", "udp://0.0.0.0:9870", "--policy", str(t / "p.onnx")],
        2,
        ("0.0.0.0", "--allow-network"),
    ),
    "a main config with corpus.num_cpus 0": Case(
        lambda t, d: ["main", "--config", str(t / "job.yaml"), "--out", str(t / "job")],
        2,
        ("job.yaml: corpus: num_cpus=0 must be at least 1",),
        setup=_main_config,
        absent=("job",),
    ),
    "a malformed registry": Case(
        lambda t, d: ["experts", "eval", "--checkpoint", str(t / "missing.pt"), "--registry", str(t / "reg.json")],
        2,
        ("reg.json", "expert registry"),
        setup=_write("reg.json", "{not json"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_clearly(name, tmp_path, monkeypatch, capsys):
    from humanoid_gpt import settings

    case = CASES[name]
    data = settings.data_root()
    if not (data / WALK).is_file():
        pytest.skip(f"{data / WALK} missing: set HGPT_DATA_ROOT")
    case.setup(tmp_path, data)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    with warnings.catch_warnings(record=True) as warned:  # what a user sees on stderr, pytest would keep apart
        warnings.simplefilter("always")
        try:
            code = main(case.argv(tmp_path, data))
        except SystemExit as e:  # argparse refuses bad option values before any work
            code = e.code
    captured = capsys.readouterr()
    # Commands over many files (retarget) report each file's refusal in their table, on stdout.
    err = captured.err + captured.out + "\n".join(str(w.message) for w in warned)
    assert code == case.code, err
    assert "Traceback" not in err and "unexpected" not in err, err
    for fragment in case.fragments:
        assert fragment in err, f"{fragment!r} not in: {err}"
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), f"{rel} was left behind"


CHECKED = {  # motions check: the file is invalid, with this finding
    "joints in degrees": ("joint_pos", "look like degrees"),
    "a root height relative to the start": ("below the floor", "relative to the start"),
    "an array of one repeated pose": ("same pose", "not a motion"),
}


@pytest.mark.parametrize("name", list(CHECKED))
def test_motions_check_names_what_is_wrong(name, tmp_path, monkeypatch, capsys):
    test_bad_input_is_refused_clearly(name, tmp_path, monkeypatch, capsys)
    (check,) = json.loads((tmp_path / "checks.json").read_text())
    assert check["status"] == "invalid"
    assert all(fragment in check["findings"][0] for fragment in CHECKED[name]), check["findings"]


class NaNPolicy(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 29), float("nan"))


class WrongInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, torch.zeros(29, 50))


class WrongOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 12)


def _script(tmp: Path, module: torch.nn.Module) -> Path:
    path = tmp / f"{type(module).__name__}.pt"
    torch.jit.script(module).save(str(path))
    return path


def test_a_policy_that_outputs_nan_fails_its_episodes(tmp_path, lafan1_dir, capsys):
    policy = _script(tmp_path, NaNPolicy())
    out = tmp_path / "e.json"
    argv = [
        "sim2sim",
        "eval",
        "--policy",
        str(policy),
        "--motions",
        str(lafan1_dir / "walk1_subject1.csv"),
        "--out",
        str(out),
        "--max-seconds",
        "2",
    ]
    assert main(argv) == 0
    agg = json.loads(out.read_text())["aggregate"]
    assert agg["sr_percent"] == 0.0 and agg["non_finite_action_episodes"] == 1


def test_a_policy_of_the_wrong_size_is_named(tmp_path, lafan1_dir, capsys):
    wrong_in, wrong_out = _script(tmp_path, WrongInput()), _script(tmp_path, WrongOutput())
    clip = str(lafan1_dir / "walk1_subject1.csv")
    for policy, fragment in ((wrong_in, "it must map (N, 136)"), (wrong_out, "returns (1, 12)")):
        argv = [
            "sim2sim",
            "eval",
            "--policy",
            str(policy),
            "--motions",
            clip,
            "--out",
            str(tmp_path / "e.json"),
            "--max-seconds",
            "1",
        ]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(policy) in err and fragment in err, err
    assert not (tmp_path / "e.json").exists()


def test_an_expert_checkpoint_as_policy_points_to_experts_eval(tmp_path, lafan1_dir, untrained_experts, capsys):
    argv = [
        "sim2sim",
        "eval",
        "--policy",
        str(untrained_experts[0]),
        "--motions",
        str(lafan1_dir / "walk1_subject1.csv"),
        "--out",
        str(tmp_path / "e.json"),
        "--max-seconds",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is an expert checkpoint" in err and "hgpt experts eval" in err


def test_an_expert_is_never_recorded_for_another_cluster(tmp_path, untrained_experts, walk_manifest, capsys):
    registry = tmp_path / "experts.json"
    argv = [
        "experts",
        "eval",
        "--checkpoint",
        str(untrained_experts[0]),
        "--registry",
        str(registry),
        "--cluster",
        "900",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "expert of cluster 901" in err and "not of cluster 900" in err
    assert not registry.exists()


def test_resume_names_the_option_that_differs_and_offers_the_last_complete_checkpoint(tmp_path, walk_manifest, capsys):
    base = [
        "train",
        "expert",
        "--task",
        "HGPT-Cluster-900",
        "--num-envs",
        "2",
        "--save-interval",
        "1",
        "--log-root",
        str(tmp_path),
        "--run-name",
        "r",
        "--threads",
        "1",
    ]
    assert main([*base, "--max-iterations", "2"]) == 0
    run = tmp_path / "HGPT-Cluster-900" / "r"
    assert (
        main(
            [
                "train",
                "expert",
                "--task",
                "HGPT-Cluster-900",
                "--num-envs",
                "4",
                "--resume",
                str(run),
                "--max-iterations",
                "3",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--num-envs differs (2 -> 4)" in err
    latest = run / "model_1.pt"
    latest.write_bytes(latest.read_bytes()[:5000])  # a copy cut short
    assert main([*base[:-4], "--resume", str(run), "--max-iterations", "3", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "model_1.pt is corrupt or truncated" in err and "model_0.pt" in err


def test_rerunning_an_interrupted_training_continues_it_and_never_mixes_two_runs(tmp_path, walk_manifest, capsys):
    command = ["train", "expert", "--task", "HGPT-Cluster-900", "--num-envs", "2", "--save-interval", "1"]
    command += ["--log-root", str(tmp_path), "--run-name", "r", "--threads", "1"]
    run = tmp_path / "HGPT-Cluster-900" / "r"
    assert main([*command, "--max-iterations", "1"]) == 0  # as if interrupted after its first checkpoint
    first = (run / "model_0.pt").read_bytes()
    assert main([*command, "--max-iterations", "2"]) == 0  # the same command again: it continues
    out = capsys.readouterr().out
    assert f"continuing {run} from model_0.pt: 1 of 2 iterations done" in out, out
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_0.pt", "model_1.pt"]
    assert (run / "model_0.pt").read_bytes() == first  # not overwritten by a restart at iteration 1
    assert main([*command, "--max-iterations", "2", "--num-envs", "4"]) == 2  # another experiment, same folder
    err = capsys.readouterr().err
    assert "--num-envs differs (2 -> 4)" in err and "another --run-name" in err, err


def test_a_resumed_checkpoint_is_refused_before_any_env_is_built(tmp_path, walk_manifest, monkeypatch, capsys):
    import humanoid_gpt.experts.train as train

    monkeypatch.setattr(train, "load_backend", lambda *a, **k: pytest.fail("the env was built before the check"))
    foreign = tmp_path / "model_3.pt"
    torch.save({"model": 1}, foreign)
    assert main(["train", "expert", "--task", "HGPT-Cluster-900", "--resume", str(foreign)]) == 2
    assert "model_3.pt: not a humanoid_gpt expert checkpoint" in capsys.readouterr().err
