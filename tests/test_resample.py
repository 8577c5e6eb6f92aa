import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R


@pytest.mark.parametrize("fps", [60.0, 120.0, 50.0])
def test_resample_round_trip(walk_clip, fps):
    clip = walk_clip.slice(0, 301)
    back = clip.resample(fps).resample(clip.fps)
    assert back.num_frames == clip.num_frames and back.duration == pytest.approx(clip.duration)
    np.testing.assert_allclose(back.joint_pos, clip.joint_pos, atol=1e-9 if fps in (60.0, 120.0) else 2e-2)
    ang = R.quat_error_angle(torch.from_numpy(back.root_quat), torch.from_numpy(clip.root_quat))
    assert ang.max() < (1e-6 if fps in (60.0, 120.0) else 1e-2)


def test_upsampled_midpoint_is_the_slerp(walk_clip):
    clip = walk_clip.slice(0, 11)
    up = clip.resample(clip.fps * 2)
    q = torch.from_numpy(clip.root_quat)
    mid = R.quat_slerp(q[3], q[4], torch.tensor([0.5], dtype=torch.float64))
    assert R.quat_error_angle(torch.from_numpy(up.root_quat[7]), mid) < 1e-9
    np.testing.assert_allclose(up.joint_pos[7], 0.5 * (clip.joint_pos[3] + clip.joint_pos[4]))


def test_velocities_are_consistent(walk_clip):
    clip = walk_clip.slice(500, 800)
    dt = clip.dt
    np.testing.assert_allclose(clip.joint_vel()[1:-1], (clip.joint_pos[2:] - clip.joint_pos[:-2]) / (2 * dt))
    # Body-frame root velocity rotated back to the world frame is the world-frame velocity.
    q = torch.from_numpy(clip.root_quat)
    world = R.quat_apply(q, torch.from_numpy(clip.root_lin_vel("body"))).numpy()
    np.testing.assert_allclose(world, clip.root_lin_vel("world"), atol=1e-12)
    w_world = clip.root_ang_vel("world")
    w_body = R.quat_apply(q, torch.from_numpy(clip.root_ang_vel("body"))).numpy()
    np.testing.assert_allclose(w_body[1:-1], w_world[1:-1], atol=0.05)
    assert np.abs(w_world).max() < 20.0


def test_rotation_helpers_invert_each_other():
    g = torch.Generator().manual_seed(0)
    q = R.quat_normalize(torch.randn(100, 4, generator=g, dtype=torch.float64))
    back = R.rotvec_to_quat(R.quat_to_rotvec(q))
    assert R.quat_error_angle(back, q).max() < 1e-9
    v = torch.randn(100, 3, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(R.quat_apply_inverse(q, R.quat_apply(q, v)), v, atol=1e-12)
    np.testing.assert_allclose(R.wxyz_to_xyzw(R.xyzw_to_wxyz(q)), q)
