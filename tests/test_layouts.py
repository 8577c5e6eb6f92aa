"""Other labs' policy layouts in the harness: a released TWIST2 student is recognised from its file, simulated with
its own actuation, and tracks real held-out mocap; renamed or unknown files are refused or forced with --layout."""

import json
import math

import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.cli import main
from humanoid_gpt.deploy.layouts import LayoutError, identify, twist2
from humanoid_gpt.deploy.policies import policy_setup


def _linear_onnx(path, in_name: str, in_dim: int, out_dim: int = 29):
    """A small ONNX of the right or wrong shape, as a lab might re-export a policy."""
    model = torch.nn.Linear(in_dim, out_dim)
    torch.onnx.export(
        model, torch.zeros(1, in_dim), str(path), input_names=[in_name], output_names=["out"], dynamo=False
    )
    return path


def test_roll_pitch_matches_twist2s_euler_formula():
    rpy = torch.tensor([[0.3, -0.4, 1.2], [-1.0, 0.2, -2.5]])
    # intrinsic z-y-x: q = qz(yaw) * qy(pitch) * qx(roll)
    axis = lambda i, a: R.rotvec_to_quat(torch.nn.functional.one_hot(torch.tensor(i), 3).float() * a[:, None])  # noqa: E731
    q = R.quat_mul(R.quat_mul(axis(2, rpy[:, 2]), axis(1, rpy[:, 1])), axis(0, rpy[:, 0]))
    torch.testing.assert_close(R.roll_pitch(q), rpy[:, :2], atol=1e-5, rtol=0)


def test_twist2_is_recognised_and_driven_with_its_own_actuation(twist2_file, g1):
    layout = identify(twist2_file)
    assert layout is not None and layout.name == "twist2"
    setup = policy_setup(str(twist2_file), g1)
    assert setup.layout == "twist2" and setup.task_settings == {"action_relative_to_reference": False}
    np.testing.assert_allclose(setup.g1.kp[:6], [100, 100, 100, 150, 40, 40])
    np.testing.assert_allclose(setup.g1.action_scale, 0.5)
    np.testing.assert_allclose(setup.g1.default_joint_pos[3], 0.4)  # its knee, not ours (0.3)
    assert (setup.g1.effort_limit <= setup.g1.kp + 1e-9).all() and (setup.g1.effort_limit <= g1.effort_limit).all()
    model = setup.g1.model(actuators="position")
    knee = model.actuator("left_knee_joint").id
    assert model.actuator_gainprm[knee, 0] == 150 and model.actuator_biasprm[knee, 2] == -4
    assert g1.actuation is None and math.isclose(float(g1.default_joint_pos[3]), 0.3)  # the original is untouched


def test_twist2_tracks_a_held_out_walk_through_the_cli(twist2_file, lafan1_dir, tmp_path, capsys):
    """TWIST2 never trained on LAFAN1: on 4 s of subject 5's walk it stays up with a small pose error, where the
    same robot holding its default pose (zero actions under TWIST2's actuation) falls."""
    clip = str(lafan1_dir / "walk1_subject5.csv")
    out = tmp_path / "board.json"
    argv = ["sim2sim", "eval", "--policy", str(twist2_file), "--policy", "zero", "--motions", clip]
    argv += ["--max-seconds", "4", "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    board = json.loads(out.read_text())["policies"]
    twist, zero = board[twist2_file.name], board["zero"]
    assert twist["policy"]["layout"] == "twist2" and zero["policy"]["layout"] == "humanoid-gpt"
    assert twist["aggregate"]["sr_percent"] == 100.0 and twist["aggregate"]["mpkpe_mm"] < 60.0
    assert zero["aggregate"]["mpkpe_mm"] > twist["aggregate"]["mpkpe_mm"] + 20
    printed = capsys.readouterr().out
    assert "| twist2_1017_25k.onnx | twist2 |" in printed and "G-MPKPE (mm)" in printed


def test_renamed_files_are_refused_naming_what_was_found_and_run_with_layout(tmp_path, g1):
    renamed = _linear_onnx(tmp_path / "renamed.onnx", "observations", twist2.OBS_DIM)
    with pytest.raises(LayoutError, match=r"no known policy layout fits it \(inputs: observations \[1, 1432\]"):
        identify(renamed)
    assert identify(renamed, "twist2").name == "twist2"
    wrong = _linear_onnx(tmp_path / "wrong.onnx", "input", 1402)
    with pytest.raises(LayoutError, match="does not fit the twist2 layout"):
        identify(wrong, "twist2")
    with pytest.raises(LayoutError, match="'beyond' is not a known layout; known: twist2"):
        identify(renamed, "beyond")
    with pytest.raises(LayoutError, match="does not exist"):
        identify(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(LayoutError, match="not a readable ONNX model"):
        identify(tmp_path / "junk.onnx")


def _holosoma_copy(src, dst, edit):
    """A copy of the holosoma file changed by ``edit(model, metadata dict)``, written with onnx into tmp_path."""
    import onnx

    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    edit(model, meta)
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(dst))
    return dst


def test_holosoma_is_recognised_and_driven_with_its_metadata_gains(holosoma_file, g1):
    assert identify(holosoma_file).name == "holosoma"
    setup = policy_setup(str(holosoma_file), g1)
    assert setup.layout == "holosoma" and setup.reference is not None
    kp = {n: k for n, k in zip(setup.g1.joint_names, setup.g1.kp, strict=True)}
    assert math.isclose(kp["left_knee_joint"], 99.098427777) and math.isclose(
        kp["left_wrist_pitch_joint"], 16.778327481
    )
    np.testing.assert_allclose(setup.g1.kp, g1.kp, rtol=1e-6)  # holosoma's gains follow the same armature formula
    np.testing.assert_allclose(setup.g1.kd, g1.kd, rtol=1e-6)
    np.testing.assert_allclose(setup.g1.action_scale, 1.0)
    np.testing.assert_allclose(setup.g1.default_joint_pos[[3, 4, 16, 23]], [0.669, -0.363, 0.2, -0.2])
    np.testing.assert_allclose(setup.g1.effort_limit, g1.effort_limit)


def test_holosoma_joint_order_is_mapped_by_name_and_foreign_names_refused(holosoma_file, g1, tmp_path):
    perm = np.random.default_rng(0).permutation(29)

    def permute(model, meta):
        for key in ("dof_names", "kp", "kd"):
            meta[key] = json.dumps([json.loads(meta[key])[i] for i in perm])

    permuted = _holosoma_copy(holosoma_file, tmp_path / "permuted.onnx", permute)
    setup = policy_setup(str(permuted), g1)
    np.testing.assert_allclose(setup.g1.kp, policy_setup(str(holosoma_file), g1).g1.kp)  # same gain per joint
    from humanoid_gpt.backends import load_backend
    from humanoid_gpt.mdp.config import TrackingConfig

    clip = setup.reference().slice(0, 31)
    result = load_backend("mujoco", g1=setup.g1, threads=1).evaluate(
        [clip], setup.make, TrackingConfig(**setup.task_settings), 1, progress=False
    )
    assert result["aggregate"]["episodes"] == 1

    def rename(model, meta):
        meta["dof_names"] = meta["dof_names"].replace("waist_yaw_joint", "torso_joint")

    foreign = _holosoma_copy(holosoma_file, tmp_path / "foreign.onnx", rename)
    with pytest.raises(LayoutError, match=r"foreign.onnx: metadata dof_names .* missing \['waist_yaw_joint'\], "):
        policy_setup(str(foreign), g1)


def test_holosoma_copies_without_its_interface_are_refused_with_what_was_found(holosoma_file, g1, tmp_path):
    def rename_quat(model, meta):
        for node in model.graph.node:
            node.output[:] = ["ref_quat_wxyz" if o == "ref_quat_xyzw" else o for o in node.output]
        next(o for o in model.graph.output if o.name == "ref_quat_xyzw").name = "ref_quat_wxyz"

    renamed = _holosoma_copy(holosoma_file, tmp_path / "renamed.onnx", rename_quat)
    with pytest.raises(LayoutError, match=r"no known policy layout fits it .*ref_quat_wxyz \[1, 4\]"):
        identify(renamed)
    stripped = _holosoma_copy(holosoma_file, tmp_path / "stripped.onnx", lambda model, meta: meta.clear())
    with pytest.raises(LayoutError, match="no known policy layout fits it .*metadata keys: none"):
        identify(stripped)
    with pytest.raises(LayoutError, match=r"stripped.onnx: metadata key 'dof_names' missing \(found: none\)"):
        policy_setup(str(stripped), g1, "holosoma")


def _doubled_kp(model, meta):
    meta["kp"] = json.dumps([2 * k for k in json.loads(meta["kp"])])


def _names_permuted(model, meta):
    """The metadata rewritten for another joint order while the network keeps its own: the classic mix-up."""
    perm = np.random.default_rng(1).permutation(29)
    for key in ("dof_names", "kp", "kd"):
        meta[key] = json.dumps([json.loads(meta[key])[i] for i in perm])


def _quat_w_first(model, meta):
    """The reference quaternions stored w, x, y, z under their x, y, z, w name (the table the graph gathers from)."""
    from onnx import numpy_helper

    producer = next(n for n in model.graph.node if "ref_quat_xyzw" in n.output)
    tensors = [t for t in model.graph.initializer if t.name == producer.input[0]]
    tensors += [n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and producer.input[0] in n.output]
    table = numpy_helper.to_array(tensors[0])
    tensors[0].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(table[..., [3, 0, 1, 2]]), tensors[0].name))


@pytest.mark.parametrize(
    ("edit", "item", "detail"),
    [
        (_doubled_kp, "kp", "kp is 2x the robot's on every joint"),
        (_names_permuted, "joint order", "neither the G1's order nor Isaac Lab's"),
        (_quat_w_first, "quaternion order (motion)", "the file stores w, x, y, z under an x, y, z, w name"),
    ],
)
def test_sim2sim_check_catches_broken_holosoma_copies(holosoma_file, g1, tmp_path, edit, item, detail):
    from humanoid_gpt.deploy.check import check_policy

    assert check_policy(holosoma_file, g1, dynamic=False).ok  # the file as released passes
    broken = _holosoma_copy(holosoma_file, tmp_path / "broken.onnx", edit)
    check = check_policy(broken, g1, dynamic=False)
    found = {i.name: i for i in check.items}
    assert not check.ok and found[item].status == "mismatch" and detail in found[item].detail, found[item]
    assert found[item].fix


def test_holosoma_plays_its_embedded_dance_through_the_cli(holosoma_file, g1, tmp_path, capsys):
    """4 s of the dance inside the file, played with the policy's own reference: it stays up with a small keypoint
    error (22 mm measured; the bound leaves room for other platforms' physics, far below the floor), where the same
    robot holding holosoma's default pose (zero actions under its actuation) falls within 1.3 s at 144 mm."""
    from humanoid_gpt.backends import load_backend
    from humanoid_gpt.deploy.policies import ZeroPolicy
    from humanoid_gpt.mdp.config import TrackingConfig

    out = tmp_path / "dance.json"
    argv = ["sim2sim", "eval", "--policy", str(holosoma_file), "--max-seconds", "4", "--out", str(out)]
    assert main([*argv, "--threads", "1"]) == 0
    dance = json.loads(out.read_text())
    assert dance["policy"]["layout"] == "holosoma" and list(dance["clips"]) == [holosoma_file.stem]
    agg = dance["aggregate"]
    assert agg["sr_percent"] == 100.0 and agg["mpkpe_mm"] < 40.0
    assert "| fastsac_g1_29dof_dancing | 100.0 |" in capsys.readouterr().out

    setup = policy_setup(str(holosoma_file), g1)
    clip = setup.reference().slice(0, 201)
    zero = load_backend("mujoco", g1=setup.g1, threads=1).evaluate(
        [clip], lambda env: ZeroPolicy(), TrackingConfig(**setup.task_settings), 1, progress=False
    )
    assert zero["aggregate"]["sr_percent"] == 0.0 and zero["aggregate"]["mpkpe_mm"] > agg["mpkpe_mm"] + 50


def test_sim2sim_eval_without_motions_needs_a_policy_with_its_own_reference(tmp_path, capsys):
    assert main(["sim2sim", "eval", "--policy", "zero", "--out", str(tmp_path / "x.json")]) == 2
    assert "--policy zero: carries no reference motion of its own (humanoid-gpt layout); pass --motions" in (
        capsys.readouterr().err
    )
