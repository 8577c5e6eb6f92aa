"""mjlab's and BeyondMimic's tracking exports, and the Humanoid-GPT release, in the harness: recognised from the file,
driven by joint name from its metadata, the embedded motion played (or our clips fed), scored beside other labs'
policies in one table, and broken copies caught by `hgpt sim2sim check` naming the field and the fix.

The exports are built at test time by tests/motion_export_support.py from 3 s of a real LAFAN1 G1 walk, the way
mjlab 1.6.0's exporter (tasks/tracking/rl/runner.py, rl/exporter_utils.py) and BeyondMimic's (utils/exporter.py)
write them; tests/fixtures/mjlab_1.6.0_g1_tracking.json is what mjlab's own exporter wrote, and the builder is held
to it. Their actor commands the reference pose from the observation's ``command`` term (no training needed), so a
harness that feeds the wrong joints, default pose or scale drives the robot elsewhere than PD on the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from motion_export_support import signature, with_metadata, write_motion_export, write_release

from humanoid_gpt.backends import load_backend
from humanoid_gpt.cli import main
from humanoid_gpt.deploy.check import check_policy
from humanoid_gpt.deploy.layouts import LayoutError, identify
from humanoid_gpt.deploy.policies import ReferencePolicy, policy_setup
from humanoid_gpt.mdp.actions import actions_for_targets
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.motion.formats import joint_order_permutations

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def walk(g1, lafan1_dir):
    from humanoid_gpt.motion import load_clip

    return load_clip(lafan1_dir / "walk1_subject1.csv", g1=g1).slice(0, 91)  # 3 s at 30 fps


@pytest.fixture(scope="module")
def exports(g1, walk, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    return {
        flavour: write_motion_export(folder / f"{flavour}_walk.onnx", g1, walk, flavour)
        for flavour in ("mjlab", "beyondmimic")
    }


def _csv(values) -> str:
    return ",".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values)


class CurrentReference:
    """PD on the reference at the robot's own time step: what the exports' actor commands."""

    def __init__(self, env) -> None:
        self.env = env

    def __call__(self, obs) -> torch.Tensor:
        return actions_for_targets(self.env.clock.reference(0.0).joint_pos, self.env.consts)


def _evaluate(setup, clips, make=None):
    backend = load_backend("mujoco", g1=setup.g1, threads=1)
    return backend.evaluate(clips, make or setup.make, TrackingConfig(**setup.task_settings), 1, progress=False)


def test_the_builder_writes_what_mjlabs_own_exporter_writes(exports):
    real = json.loads((FIXTURES / "mjlab_1.6.0_g1_tracking.json").read_text())
    ours = signature(exports["mjlab"])
    assert {k: ours[k] for k in ("opset", "inputs", "outputs")} == {k: real[k] for k in ("opset", "inputs", "outputs")}
    assert ours["metadata"] == real["metadata"]  # keys, order and every value (gains, pose, scale, terms)


def test_both_exports_are_recognised_and_driven_by_joint_name(exports, g1):
    mj, bm = (policy_setup(str(exports[k]), g1) for k in ("mjlab", "beyondmimic"))
    assert identify(exports["mjlab"]).name == identify(exports["beyondmimic"]).name == "mjlab"
    assert mj.layout == bm.layout == "mjlab" and mj.reference is not None
    isaac = joint_order_permutations(g1)["isaaclab"]
    meta = {m.key: m.value for m in onnx.load(str(exports["beyondmimic"])).metadata_props}
    assert meta["joint_names"].split(",") == [g1.joint_names[i] for i in isaac]  # BeyondMimic: Isaac Lab order
    for setup in (mj, bm):
        np.testing.assert_allclose(setup.g1.kp, g1.kp, rtol=2e-3)  # by name, whatever the file's order
        np.testing.assert_allclose(setup.g1.action_scale, g1.action_scale, rtol=1e-2)
        knee, hip = g1.joint_names.index("left_knee_joint"), g1.joint_names.index("right_hip_pitch_joint")
        assert setup.g1.default_joint_pos[knee] == 0.669 and setup.g1.default_joint_pos[hip] == -0.312


@pytest.mark.parametrize("flavour", ["mjlab", "beyondmimic"])
def test_the_policy_sees_its_reference_as_exported(exports, g1, walk, flavour):
    """The actor commands the reference pose read from its observation: played on its embedded motion, and on our
    clip (--motions), it must drive the robot exactly as PD on the reference does (falls included)."""
    setup = policy_setup(str(exports[flavour]), g1)
    embedded = setup.reference().slice(0, 51)
    ours, pd = _evaluate(setup, [embedded]), _evaluate(setup, [embedded], CurrentReference)
    a, b = ours["aggregate"], pd["aggregate"]
    assert a["mean_episode_s"] == b["mean_episode_s"] and abs(a["mpkpe_mm"] - b["mpkpe_mm"]) < 1.0, (a, b)
    clip = walk.resample(50).slice(0, 51)
    fed, pd = _evaluate(setup, [clip]), _evaluate(setup, [clip], CurrentReference)
    assert fed["aggregate"]["mean_episode_s"] == pd["aggregate"]["mean_episode_s"]
    assert abs(fed["aggregate"]["mpkpe_mm"] - pd["aggregate"]["mpkpe_mm"]) < 2.0


def test_eval_scores_foreign_layouts_and_ours_in_one_table(exports, g1, walk, twist2_file, tmp_path, capsys):
    from humanoid_gpt.motion.io import save_clip

    clip = tmp_path / "walk.npz"
    save_clip(walk.resample(50), clip)
    release = write_release(tmp_path / "release.onnx")
    out = tmp_path / "board.json"
    argv = ["sim2sim", "eval", "--motions", str(clip), "--max-seconds", "1", "--out", str(out), "--threads", "1"]
    for policy in (exports["mjlab"], exports["beyondmimic"], release, twist2_file, "zero"):
        argv += ["--policy", str(policy)]
    assert main(argv) == 0
    board = json.loads(out.read_text())["policies"]
    layouts = {name: r["policy"]["layout"] for name, r in board.items()}
    assert layouts == {
        "mjlab_walk.onnx": "mjlab",
        "beyondmimic_walk.onnx": "mjlab",
        "release.onnx": "humanoid-gpt-release",
        twist2_file.name: "twist2",
        "zero": "humanoid-gpt",
    }
    printed = capsys.readouterr().out
    assert "| mjlab_walk.onnx | mjlab |" in printed and "| release.onnx | humanoid-gpt-release |" in printed


@pytest.mark.parametrize("flavour", ["mjlab", "beyondmimic"])
def test_check_passes_each_export_end_to_end(exports, flavour, tmp_path):
    report = tmp_path / "check.json"
    assert main(["sim2sim", "check", str(exports[flavour]), "--seconds", "0.6", "--json", str(report)]) == 0
    items = {i["name"]: i["status"] for i in json.loads(report.read_text())["items"]}
    assert items["motion kinematics"] == items["control rate (motion)"] == items["observation order"] == "ok"
    assert items["default pose"] == items["kp"] == items["action scale"] == "ok"
    assert items["dynamic: its embedded motion 0.6 s"] == "ok"


def _broken(kind, g1, walk, good, tmp_path):
    """A copy of an export with one classic deployment mistake."""
    path = tmp_path / f"{kind}.onnx"
    names = {p.key: p.value for p in onnx.load(str(good)).metadata_props}
    isaac = joint_order_permutations(g1)["isaaclab"]
    if kind == "quaternion":
        return write_motion_export(path, g1, walk, "beyondmimic", quat_xyzw=True)
    if kind == "control rate":
        return write_motion_export(path, g1, walk, "beyondmimic", motion_fps=30.0)
    changes = {
        "joint order": {"joint_names": ",".join(g1.joint_names)},  # the MJCF order over Isaac Lab-ordered values
        "gains": {"joint_stiffness": _csv((2 * g1.kp[isaac]).tolist())},
        "action scale": {"action_scale": _csv((g1.effort_limit / g1.kp)[isaac].tolist())},
        "default pose": {
            "default_joint_pos": _csv(
                np.array([float(v) for v in names["default_joint_pos"].split(",")])[np.argsort(isaac)].tolist()
            )
        },
        "observation order": {
            "observation_names": names["observation_names"].replace("joint_pos,joint_vel", "joint_vel,joint_pos")
        },
    }[kind]
    return with_metadata(good, path, **changes)


@pytest.mark.parametrize(
    ("kind", "item", "detail", "fix"),
    [
        ("joint order", "joint order (motion)", "joint_pos is in the isaaclab order", "joint_names"),
        ("gains", "kp", "2x the robot's", "armature"),
        ("action scale", "action scale", "joints differ", "0.25 effort / kp"),
        ("default pose", "default pose", "in the unitree joint order, not in joint_names' order", "default_joint_pos"),
        ("control rate", "control rate (motion)", "joint_vel matches its joint_pos at 29 Hz", "--output_fps 50"),
        ("quaternion", "quaternion order (motion)", "body_quat_w is x, y, z, w", "w, x, y, z"),
        ("observation order", "observation order", "the order command, motion_anchor_pos_b", "observation_names"),
    ],
)
def test_broken_copies_are_caught_naming_the_field_and_the_fix(kind, item, detail, fix, exports, g1, walk, tmp_path):
    check = check_policy(_broken(kind, g1, walk, exports["beyondmimic"], tmp_path), g1, dynamic=False)
    found = {i.name: i for i in check.items}
    assert not check.ok and found[item].status == "mismatch", [(i.name, i.status, i.detail) for i in check.items]
    assert detail in found[item].detail and fix in found[item].fix, found[item]


def test_files_outside_the_layout_are_refused_naming_the_field(exports, g1, tmp_path):
    velocity = with_metadata(exports["mjlab"], tmp_path / "velocity.onnx", command_names="twist")
    with pytest.raises(LayoutError, match=r"velocity.onnx: command_names \['twist'\] has no 'motion' term"):
        policy_setup(str(velocity), g1)
    terms = "command,height_scan,motion_anchor_ori_b,base_lin_vel,base_ang_vel,joint_pos,joint_vel,actions"
    unknown = with_metadata(exports["mjlab"], tmp_path / "unknown.onnx", observation_names=terms)
    with pytest.raises(LayoutError, match=r"observation term\(s\) \['height_scan'\] are not G1 tracking terms"):
        policy_setup(str(unknown), g1)
    short = with_metadata(
        exports["mjlab"], tmp_path / "short.onnx", observation_names=terms.replace("height_scan,", "")
    )
    with pytest.raises(LayoutError, match="make 157 values, the graph's obs input takes 160"):
        policy_setup(str(short), g1)
    history = with_metadata(
        exports["mjlab"], tmp_path / "history.onnx", observation_terms_history_length=_csv([5.0] * 8)
    )
    with pytest.raises(LayoutError, match="observation history lengths"):
        policy_setup(str(history), g1)
    stripped = with_metadata(exports["mjlab"], tmp_path / "stripped.onnx", joint_names="")
    with pytest.raises(LayoutError, match=r"metadata joint_names \(0 names\) are not the G1's 29 joints"):
        policy_setup(str(stripped), g1)


def test_the_release_layout_runs_on_our_observation_with_its_action_scale(g1, walk, tmp_path):
    release = write_release(tmp_path / "release.onnx")
    assert identify(release).name == "humanoid-gpt-release"
    setup = policy_setup(str(release), g1)
    np.testing.assert_allclose(setup.g1.action_scale, g1.effort_limit / g1.kp)  # effort / kp, not 0.25 of it
    np.testing.assert_allclose(setup.g1.default_joint_pos, g1.default_joint_pos)
    clip = [walk.resample(50).slice(0, 51)]
    ours, pd = _evaluate(setup, clip), _evaluate(setup, clip, ReferencePolicy)  # it commands the next reference
    assert ours["aggregate"]["mean_episode_s"] == pd["aggregate"]["mean_episode_s"]
    assert abs(ours["aggregate"]["mpkpe_mm"] - pd["aggregate"]["mpkpe_mm"]) < 1.0
    assert main(["sim2sim", "check", str(release), "--seconds", "0.6"]) == 0
