"""Episode starts: uniform (the library's weights) or adaptive (more often where episodes fail), in both backends'
shared sampler and in the MuJoCo harness."""

import pytest
import torch

from humanoid_gpt.deploy.policies import ZeroPolicy
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.mdp.sampling import StartSampler, StartSamplingConfig
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt_mujoco.env import MujocoTrackingEnv


class _Library:
    """What the sampler reads of a motion library: durations, weights, and uniform sampling."""

    def __init__(self, durations, weights=None):
        self.duration = torch.tensor(durations, dtype=torch.float64)
        self.weights = torch.tensor(weights or [1.0] * len(durations))

    def sample(self, n, generator=None):
        ids = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return ids, torch.rand(n, generator=generator, dtype=torch.float64) * self.duration[ids]


ADAPTIVE = StartSamplingConfig(adaptive=True, ema=0.5, uniform_ratio=0.1)


def test_bins_cover_every_clip():
    s = StartSampler(_Library([2.5, 1.0]), ADAPTIVE)
    assert s.clip_of_bin.tolist() == [0, 0, 0, 1]
    assert s.bin_length.tolist() == [1.0, 1.0, 0.5, 1.0]
    clips = torch.tensor([0, 0, 0, 1, 1])
    assert s.bin_of(clips, torch.tensor([0.0, 1.2, 9.0, 0.3, 5.0])).tolist() == [0, 1, 2, 3, 3]


def test_uniform_starts_are_the_librarys_and_keep_its_weights():
    lib = _Library([2.0, 2.0], weights=[3.0, 1.0])
    s = StartSampler(lib, StartSamplingConfig())
    a = s.sample(50, torch.Generator().manual_seed(0))
    b = lib.sample(50, torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    torch.testing.assert_close(
        StartSampler(lib, ADAPTIVE).probabilities(), torch.tensor([0.375, 0.375, 0.125, 0.125]).double()
    )


def test_adaptive_starts_go_where_episodes_fail():
    lib = _Library([3.0, 3.0])
    s = StartSampler(lib, ADAPTIVE)
    for _ in range(20):  # episodes keep failing in the second second of clip 1
        s.record(torch.tensor([1, 1]), torch.tensor([1.2, 1.7], dtype=torch.float64))
        s.step()
    p = s.probabilities()
    assert p[4] == pytest.approx((2.0 + 0.1 / 6) / 2.1, rel=1e-5)  # 2 failures per step against uniform_ratio 0.1
    assert p.sum() == pytest.approx(1.0)
    clips, times = s.sample(4000, torch.Generator().manual_seed(1))
    hard = (clips == 1) & (times >= 1.0) & (times < 2.0)
    assert 0.94 < hard.double().mean() < 0.98
    assert (times >= 0).all() and (times <= 3.0).all()
    for _ in range(40):  # no more failures: the moving average forgets them and starts drift back to uniform
        s.step()
    torch.testing.assert_close(s.probabilities(), torch.full((6,), 1 / 6, dtype=torch.float64), atol=1e-3, rtol=0)


def test_the_kernel_spreads_failures_back_within_a_clip_only():
    s = StartSampler(
        _Library([2.0, 2.0]), StartSamplingConfig(adaptive=True, ema=1.0, kernel_size=2, uniform_ratio=1e-9)
    )
    s.record(torch.tensor([1]), torch.tensor([0.5], dtype=torch.float64))  # clip 1's first bin
    s.step()
    p = s.probabilities()
    assert p[1] < 1e-8  # the last bin of clip 0 does not inherit clip 1's failure
    assert p[2] == pytest.approx(1.0)


def test_state_round_trips_and_bad_settings_are_refused():
    s = StartSampler(_Library([2.0]), ADAPTIVE)
    s.record(torch.tensor([0]), torch.tensor([1.5], dtype=torch.float64))
    s.step()
    t = StartSampler(_Library([2.0]), ADAPTIVE)
    t.load_state(s.state())
    assert torch.equal(t.probabilities(), s.probabilities())
    with pytest.raises(ValueError, match="does not fit"):
        StartSampler(_Library([5.0]), ADAPTIVE).load_state(s.state())
    for bad in ({"uniform_ratio": 0.0}, {"bin_seconds": 0.0}, {"ema": 0.0}, {"kernel_size": 0}):
        with pytest.raises(ConfigError, match="sampling"):
            TrackingConfig(sampling=StartSamplingConfig(adaptive=True, **bad)).validate()


def test_the_mujoco_harness_records_falls_and_resumes_its_sampler(g1, walk_clip):
    """Zero actions make the G1 fall: the failures land in the bins where they happened, the sampler's state is part
    of the env's snapshot, and an old config without a sampling part still loads."""
    cfg = TrackingConfig(randomization=RandomizationConfig.off(), sampling=StartSamplingConfig(adaptive=True, ema=0.2))
    lib = MotionLibrary.from_clips([walk_clip.slice(0, 30 * 8)], g1)
    env = MujocoTrackingEnv(g1, lib, cfg, num_envs=4, seed=0)
    policy, obs = ZeroPolicy(29), env.get_observations()
    for _ in range(80):
        obs, *_ = env.step(policy(obs))
    assert env.starts.failures.sum() > 0
    snap = env.snapshot()
    other = MujocoTrackingEnv(g1, lib, cfg, num_envs=4, seed=5)
    other.restore(snap)
    assert torch.equal(other.starts.failures, env.starts.failures)
    env.close()
    other.close()
    saved = cfg.to_dict()
    del saved["sampling"]
    assert TrackingConfig.from_dict(saved).sampling == StartSamplingConfig()
