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
