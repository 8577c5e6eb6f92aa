"""Our forward kinematics reproduces the G1 Moves authors' own FK (BeyondMimic NPZ) of the same CSVs."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.kinematics import clip_body_states, forward_kinematics


@pytest.mark.parametrize("name", ["B_HandsUp", "B_Fence2"])
def test_fk_matches_reference_npz(name, g1, g1_moves_dir, g1_moves_npz_dir):
    clip = load_clip(g1_moves_dir / f"bonus__{name}.csv", g1=g1)
    ref = np.load(g1_moves_npz_dir / f"{name}.npz")
    n = ref["body_pos_w"].shape[0]
    assert n == clip.num_frames - 1
    ours = clip_body_states(g1, clip)
    # The NPZ stores no body names: match its bodies to ours by position on the first frame.
    cost = np.linalg.norm(ref["body_pos_w"][0][:, None] - ours.pos[0][None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    err = np.linalg.norm(ref["body_pos_w"][:, rows] - ours.pos[:n, cols], axis=-1)
    assert err.max() < 1e-3, f"max body position error {err.max() * 1000:.3f} mm"
    # Orientations agree too (up to quaternion sign).
    dot = np.abs((ref["body_quat_w"][:, rows] * ours.quat[:n, cols]).sum(-1))
    assert np.degrees(2 * np.arccos(np.clip(dot, 0, 1))).max() < 0.1
    # Velocities: theirs are differences too; away from the first frame they agree closely.
    lin_err = np.linalg.norm(ref["body_lin_vel_w"][1:, rows] - ours.lin_vel[1:n, cols], axis=-1)
    assert np.median(lin_err) < 1e-3 and lin_err.max() < 0.1


def test_body_velocity_is_the_derivative_of_body_position(g1, walk_clip):
    clip = walk_clip.slice(1000, 1100)
    states = clip_body_states(g1, clip)
    fd = (states.pos[2:] - states.pos[:-2]) * clip.fps / 2
    np.testing.assert_allclose(states.lin_vel[1:-1], fd, atol=0.05)


def test_default_pose_feet_are_near_the_floor(g1):
    states = forward_kinematics(g1, g1.default_qpos()[None], bodies=("left_ankle_roll_link", "right_ankle_roll_link"))
    # The ankle roll link origin sits a few cm above the sole; the default pelvis height puts the soles at the floor.
    assert np.all((states.pos[0, :, 2] > 0.0) & (states.pos[0, :, 2] < 0.1))
