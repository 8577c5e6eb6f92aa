"""The sim2sim parity checker: our exported students and a BeyondMimic-style file pass; deliberately broken copies of
each are caught item by item, and a student trained in the wrong joint order is found by the standing trial."""

from __future__ import annotations

import json
import warnings

import onnx
import pytest
import torch
from students_support import export_student, export_tiny, export_tiny_kv, standing_student

from humanoid_gpt.deploy.check import check_policy, run_check
from humanoid_gpt.deploy.check_declared import BEYONDMIMIC_TERM_SIZES
from humanoid_gpt.motion.formats import joint_order_permutations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def statuses(check) -> dict[str, str]:
    return {i.name: i.status for i in check.items}


def detail(check, name: str) -> str:
    return next(i.detail + " | " + i.fix for i in check.items if i.name == name)


@pytest.fixture(scope="module")
def standing(g1, tmp_path_factory):
    """Our student format holding a linear balance controller: it stands without training."""
    return export_student(standing_student(g1), g1, tmp_path_factory.mktemp("standing"))


def _csv(values) -> str:
    return ",".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values)


def beyondmimic_file(g1, path, obs_size: int = 160, **overrides):
    """A tiny torch policy exported the way BeyondMimic's / mjlab's exporter does: input ``obs``, output
    ``actions``, metadata as comma-separated strings in Isaac Lab's breadth-first joint order."""
    order = joint_order_permutations(g1)["isaaclab"]
    names = [g1.joint_names[i] for i in order]
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        module, example = torch.nn.Linear(obs_size, 29), (torch.zeros(1, obs_size),)
        torch.onnx.export(module, example, str(path), input_names=["obs"], output_names=["actions"], dynamo=False)
    meta = {
        "run_path": "wandb/run",
        "joint_names": _csv(names),
        "joint_stiffness": _csv(g1.kp[order].tolist()),
        "joint_damping": _csv(g1.kd[order].tolist()),
        "default_joint_pos": _csv(g1.default_joint_pos[order].tolist()),
        "action_scale": _csv(g1.action_scale[order].tolist()),
        "observation_names": _csv(list(BEYONDMIMIC_TERM_SIZES)[:-1]),  # the tracking task's 8 terms, 160 values
        "command_names": "motion",
        **overrides,
    }
    model = onnx.load(str(path))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def edited(src, dst, change):
    """A copy of ``src`` whose metadata dict (key -> string) ``change`` edits in place."""
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    change(props)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(dst))
    return dst


# Passing files ------------------------------------------------------------------------------------------------------


def test_our_standing_student_passes_every_item_and_stands(g1, standing, tmp_path):
    report = tmp_path / "check.json"
    assert run_check(standing["streaming"], g1.xml_path, report) == 0
    saved = json.loads(report.read_text())
    assert saved["ok"] and saved["source"] == "humanoid_gpt"
    found = {i["name"]: i["status"] for i in saved["items"]}
    for item in ("joint order", "kp", "kd", "effort limit", "action scale", "default pose", "control rate"):
        assert found[item] == "ok", item
    assert found["physics rate"] == found["quaternion order"] == found["observation"] == "ok"
    assert found["dynamic: standing 4 s"] == "ok"
    assert saved["dynamic"]["status"] == "stood" and len(saved["dynamic"]["trials"]) == 1


def test_our_exported_gpt_and_kv_students_pass_the_static_items(g1, real_tokens, tmp_path):
    """Untrained, so they are not run; their files must agree with the robot in every item."""
    (tmp_path / "gpt").mkdir()
    (tmp_path / "kv").mkdir()
    for paths in (
        export_tiny("gpt", g1, real_tokens, tmp_path / "gpt")[1],
        export_tiny_kv(g1, real_tokens, tmp_path / "kv")[1],
    ):
        check = check_policy(paths["streaming"], g1, dynamic=False)
        assert check.ok, [i for i in check.items if i.status == "mismatch"]
        windowed = check_policy(paths["windowed"], g1)
        assert windowed.ok and statuses(windowed)["dynamic: standing 4 s"] == "skipped"


def test_a_student_trained_in_isaac_lab_joint_order_falls_and_the_fix_is_found(g1, tmp_path):
    """Its file declares the G1's order (every static item is fine) but it acts in Isaac Lab's: as declared it falls,
    with observations and actions reordered it stands."""
    path = export_student(standing_student(g1, "isaaclab", arm_offset=2.0), g1, tmp_path)["streaming"]
    check = check_policy(path, g1)
    assert [i.name for i in check.items if i.status == "mismatch"] == ["dynamic: standing 4 s"]
    assert check.dynamic["status"] == "fell"
    assert check.dynamic["fix"]["hypothesis"] == "joint order: Isaac Lab breadth-first"
    assert [t["stood"] for t in check.dynamic["trials"]] == [False, True]


def test_a_beyondmimic_style_file_is_checked_by_joint_name(g1, tmp_path):
    check = check_policy(beyondmimic_file(g1, tmp_path / "policy.onnx"), g1, seconds=1.0)
    mismatches = [i.name for i in check.items if i.status == "mismatch"]
    assert check.source == "beyondmimic" and set(mismatches) <= {"dynamic: standing 1 s"}, mismatches
    found = statuses(check)
    assert found["joint order"] == found["kp"] == found["kd"] == found["default pose"] == "ok"
    assert "breadth-first" in detail(check, "joint order")
    assert found["observation"] == "ok" and "160 values" in detail(check, "observation")
    assert found["control rate"] == "info"  # their exporter does not write the rate
    # a plain export runs as the mjlab layout on the standing reference (this untrained one may fall)
    assert "as the mjlab layout" in detail(check, "dynamic: standing 1 s")


# Broken copies -------------------------------------------------------------------------------------------------------


def _ours_broken(kind: str):
    def permute(p):
        names = json.loads(p["joint_names"])
        p["joint_names"] = json.dumps(names[1:] + names[:1])

    def kp2(p):
        p["kp"] = json.dumps([2 * v for v in json.loads(p["kp"])])

    def pose(p):
        pose = json.loads(p["default_joint_pos"])
        pose[3] += 0.2  # left knee
        p["default_joint_pos"] = json.dumps(pose)

    def obs(p):
        layout = json.loads(p["obs_layout"])
        layout[-1][1] += 3
        p["obs_layout"] = json.dumps(layout)

    return {"permuted joint names": permute, "kp x2": kp2, "default pose": pose, "obs size": obs}[kind]


def _bm_broken(kind: str, g1):
    order = joint_order_permutations(g1)["isaaclab"]
    names = [g1.joint_names[i] for i in order]

    def permute(p):
        p["joint_names"] = _csv(names[1:] + names[:1])

    def kp2(p):
        p["joint_stiffness"] = _csv((2 * g1.kp[order]).tolist())

    def pose(p):
        pose = g1.default_joint_pos[order].copy()
        pose[names.index("left_knee_joint")] += 0.2
        p["default_joint_pos"] = _csv(pose.tolist())

    return {"permuted joint names": permute, "kp x2": kp2, "default pose": pose}[kind]


BROKEN = {
    "permuted joint names": ("joint order", "neither the G1's order"),
    "kp x2": ("kp", "2x the robot's"),
    "default pose": ("default pose", "left_knee_joint 0.5"),
    "obs size": ("observation", "the graph takes"),
    "missing metadata": ("metadata", "no deployment metadata"),
    "truncated": ("file", "not a readable ONNX model"),
}


def _break(kind: str, src, dst, edit):
    if kind == "missing metadata":
        return edited(src, dst, lambda p: p.clear())
    if kind == "truncated":
        dst.write_bytes(src.read_bytes()[:2000])
        return dst
    return edited(src, dst, edit)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_copies_of_our_student_are_caught(kind, g1, standing, tmp_path):
    edit = None if kind in ("missing metadata", "truncated") else _ours_broken(kind)
    path = _break(kind, standing["streaming"], tmp_path / "broken.onnx", edit)
    check = check_policy(path, g1, dynamic=False)
    item, text = BROKEN[kind]
    assert not check.ok and statuses(check)[item] == "mismatch", check.items
    assert text in detail(check, item)
    if kind == "permuted joint names":  # values are read by name, so the gains no longer fit their joints
        assert statuses(check)["kp"] == "mismatch"


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_copies_of_a_beyondmimic_file_are_caught(kind, g1, tmp_path):
    good = beyondmimic_file(g1, tmp_path / "good.onnx", obs_size=150 if kind == "obs size" else 160)
    edit = _bm_broken(kind, g1) if kind in ("permuted joint names", "kp x2", "default pose") else None
    path = good if kind == "obs size" else _break(kind, good, tmp_path / "broken.onnx", edit)
    check = check_policy(path, g1, dynamic=False)
    item, text = BROKEN[kind]
    if kind == "obs size":
        text = "the G1 tracking terms"
    assert not check.ok and statuses(check)[item] == "mismatch", check.items
    assert text in detail(check, item)


def test_the_command_exits_non_zero_on_a_mismatch(g1, standing, tmp_path):
    broken = edited(standing["streaming"], tmp_path / "kp.onnx", _ours_broken("kp x2"))
    assert run_check(broken, None, tmp_path / "r.json", dynamic=False) == 1
    saved = json.loads((tmp_path / "r.json").read_text())
    kp = next(i for i in saved["items"] if i["name"] == "kp")
    assert saved["ok"] is False and kp["status"] == "mismatch" and kp["detail"].startswith("kp is 2x")
