"""The motion library answers batched (clip, time) queries with the clips' own frames and FK, interpolated."""

import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.kinematics import clip_body_states
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import G1_KEYPOINT_NAMES


@pytest.fixture(scope="module")
def clips(lafan1_dir, g1_moves_dir, g1):
    walk = load_clip(lafan1_dir / "walk1_subject1.csv", g1=g1).slice(0, 400)
    dance = load_clip(g1_moves_dir / "dance__B_DadDance.csv", g1=g1).slice(0, 600)  # 60 fps
    return [walk, dance]


@pytest.fixture(scope="module")
def lib(clips, g1):
    return MotionLibrary.from_clips(clips, g1, dtype=torch.float64)


def test_exact_frames_equal_the_clip_and_its_fk(lib, clips, g1):
    frames = torch.tensor([0, 17, 399, 0, 250, 599])
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    times = frames.double() / lib.fps[ids]
    out = lib.frames(ids, times)
    for k, (c, f) in enumerate(zip(ids.tolist(), frames.tolist(), strict=True)):
        clip = clips[c]
        states = clip_body_states(g1, clip, G1_KEYPOINT_NAMES)
        np.testing.assert_allclose(out.joint_pos[k], clip.joint_pos[f], atol=1e-12)
        np.testing.assert_allclose(out.joint_vel[k], clip.joint_vel()[f], atol=1e-9)
        np.testing.assert_allclose(out.root_pos[k], clip.root_pos[f], atol=1e-12)
        assert R.quat_error_angle(out.root_quat[k], torch.from_numpy(clip.root_quat[f])) < 1e-6
        np.testing.assert_allclose(out.body_pos[k], states.pos[f], atol=1e-9)
        np.testing.assert_allclose(out.body_lin_vel[k], states.lin_vel[f], atol=1e-9)
        angle = R.quat_error_angle(out.body_quat[k], torch.from_numpy(states.quat[f]))
        assert angle.max() < 1e-6


def test_between_frames_interpolates(lib, clips):
    walk = clips[0]
    out = lib.frames(torch.tensor([0]), torch.tensor([10.25 / 30.0], dtype=torch.float64))
    expect = 0.75 * walk.joint_pos[10] + 0.25 * walk.joint_pos[11]
    np.testing.assert_allclose(out.joint_pos[0], expect, atol=1e-9)
    q = torch.from_numpy(walk.root_quat)
    assert R.quat_error_angle(out.root_quat[0], R.quat_slerp(q[10], q[11], torch.tensor([0.25]).double())) < 1e-7
    np.testing.assert_allclose(out.root_quat.norm(dim=-1), 1.0, atol=1e-9)


def test_times_are_clamped_to_the_clip(lib, clips):
    out = lib.frames(torch.tensor([0, 1]), torch.tensor([-1.0, 1e6], dtype=torch.float64))
    np.testing.assert_allclose(out.joint_pos[0], clips[0].joint_pos[0])
    np.testing.assert_allclose(out.joint_pos[1], clips[1].joint_pos[-1])


def test_many_queries_match_one_by_one(lib):
    g = torch.Generator().manual_seed(3)
    ids, times = lib.sample(512, g)
    batch = lib.frames(ids, times)
    for k in (0, 101, 511):
        single = lib.frames(ids[k : k + 1], times[k : k + 1])
        np.testing.assert_allclose(single.body_pos[0], batch.body_pos[k])
        np.testing.assert_allclose(single.body_quat[0], batch.body_quat[k])


def test_sampling_follows_weights(lib):
    lib.set_weights([0.0, 1.0])
    try:
        ids, times = lib.sample(1000, torch.Generator().manual_seed(0))
        assert (ids == 1).all() and (times <= lib.duration[1]).all() and (times >= 0).all()
    finally:
        lib.set_weights([1.0, 1.0])
    with pytest.raises(ValueError, match="weights must be 2"):
        lib.set_weights([1.0])
    with pytest.raises(ValueError, match="not all zero"):
        lib.set_weights([0.0, 0.0])


def test_float32_library_is_close_to_float64(clips, g1, lib):
    lib32 = MotionLibrary.from_clips(clips, g1)
    ids, times = lib.sample(256, torch.Generator().manual_seed(1))
    a, b = lib.frames(ids, times), lib32.frames(ids, times.float())
    np.testing.assert_allclose(a.body_pos, b.body_pos.double(), atol=1e-4)
    assert R.quat_error_angle(a.body_quat, b.body_quat.double()).max() < 1e-3


def test_short_clip_is_rejected(clips, g1):
    with pytest.raises(ValueError, match="at least 2"):
        MotionLibrary.from_clips([clips[0].slice(0, 1)], g1)
