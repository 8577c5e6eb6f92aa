"""Time-warp augmentation: duration scales by 1 / factor at the corpus rate, velocities by the factor, the root
rotation stays a unit slerp, and a warp that breaks the G1's joint-velocity limits is dropped naming the joint."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from humanoid_gpt.catalog.store import warp_name
from humanoid_gpt.governance.retarget import G1_VELOCITY_LIMITS
from humanoid_gpt.governance.warp import WarpConfig, WarpConfigError, time_warp, warp_clip
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot import G1_JOINT_NAMES


@pytest.fixture(scope="module")
def walk(lafan1_dir, g1) -> MotionClip:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(lafan1_dir / "walk1_subject2.csv", g1=g1).slice(0, 300)  # 10 s at 30 fps


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.0, 1.1, 1.25])
def test_duration_scales_by_one_over_the_factor(walk, factor):
    out = time_warp(walk, factor, 50.0)
    assert out.fps == 50.0 and out.name == warp_name(walk.name, factor)
    assert abs(out.duration - walk.duration / factor) <= 1.0 / 50.0
    assert out.provenance["warp"] == factor and walk.provenance.get("warp") is None  # the source is untouched
    # The same poses, played faster: mean joint speed scales with the factor (interpolation smooths a little).
    ratio = np.abs(out.joint_vel()).mean() / np.abs(walk.joint_vel()).mean()
    assert ratio == pytest.approx(factor, rel=0.03)
    np.testing.assert_allclose(np.linalg.norm(out.root_quat, axis=1), 1.0, atol=1e-9)  # slerp keeps unit quaternions
    np.testing.assert_allclose(out.joint_pos[0], walk.joint_pos[0])
    np.testing.assert_allclose(out.root_pos[-1], walk.root_pos[-1], atol=0.05)  # ends where the take ends


def test_original_at_the_corpus_rate_is_the_clip_itself(walk):
    at50 = walk.resample(50.0)
    assert time_warp(at50, 1.0, 50.0).joint_pos is at50.joint_pos  # no resampling round-off


def test_a_too_fast_warp_is_dropped_for_velocity_limits(g1):
    """A knee swinging at 90% of its motor's limit: 1.1x stays under the limit, 1.25x breaks it."""
    fps, n = 50.0, 200
    t = np.arange(n) / fps
    knee = G1_JOINT_NAMES.index("left_knee_joint")
    limit = G1_VELOCITY_LIMITS["knee"]
    amp = 0.9 * limit / (2 * np.pi * 4.0)  # 4 Hz: peak speed 0.9 x limit
    q = np.tile(g1.default_joint_pos, (n, 1))
    q[:, knee] = 1.0 + amp * np.sin(2 * np.pi * 4.0 * t)
    clip = MotionClip("swing", fps, np.tile([0.0, 0.0, 0.78], (n, 1)), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), q, {})
    results = {r.factor: r for r in warp_clip(clip, g1, fps, WarpConfig(factors=(0.8, 1.1, 1.25)))}
    assert list(results) == [1.0, 0.8, 1.1, 1.25]
    assert results[1.1].kept and results[1.1].peak_speed_ratio < 1.0
    fast = results[1.25]
    assert not fast.kept and fast.clip is None and fast.peak_speed_ratio > 1.0
    assert fast.reason.code == "warp_velocity" and "left_knee_joint" in fast.reason.message
    # 0.9 x 1.25 = 1.12 x the limit, a little less once resampled to 50 fps (interpolation rounds the peaks).
    assert 1.0 < fast.peak_speed_ratio < 1.125 and f"warp x1.25: left_knee_joint at {fast.peak_speed_ratio:.2f}x" in (
        fast.reason.message
    )
    # A looser tolerance keeps it.
    loose = warp_clip(clip, g1, fps, WarpConfig(factors=(1.25,), velocity_tolerance=1.2))
    assert all(r.kept for r in loose)


def test_warp_config():
    assert WarpConfig().all_factors == (1.0, 0.8, 0.9, 1.1, 1.25)
    assert sum(1 / f for f in WarpConfig().all_factors) == pytest.approx(5.07, abs=0.01)  # about 5x the data
    assert WarpConfig.from_dict([1.5]).factors == (1.5,)
    assert WarpConfig.from_dict({"factors": [0.5, 2.0]}).all_factors == (1.0, 0.5, 2.0)
    with pytest.raises(WarpConfigError, match=r"\[0.0\] are not speed factors"):
        WarpConfig(factors=(0.0,))
    with pytest.raises(WarpConfigError, match="twice"):
        WarpConfig(factors=(1.1, 1.1))
    with pytest.raises(WarpConfigError, match="unknown warp setting"):
        WarpConfig.from_dict({"factor": [1.1]})
