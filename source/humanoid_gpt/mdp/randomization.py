"""Domain randomization, sampled once here; each backend applies the draws and draws nothing itself.

``sample_env_params`` decides every per-env parameter (friction multiplier, torso mass offset, kp and kd scales,
latency, first push interval), ``push_velocity`` and ``next_push_interval`` the pushes. The MuJoCo backend writes them
into per-env model copies (``MujocoWorlds.randomize``) and its push timers; Isaac Lab's event terms
(``humanoid_gpt_tasks.mdp.events``) are thin adapters that write the same draws through the asset APIs.
Given a generator seeded alike, both backends get the same per-env parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from humanoid_gpt.mdp.config import RandomizationConfig


@dataclass
class EnvParams:
    """(N,) or (N, 1) tensors: one value per environment; neutral values when a part is off."""

    friction: torch.Tensor  # multiplies the ground-contact friction
    torso_mass_offset: torch.Tensor  # kg
    kp_scale: torch.Tensor
    kd_scale: torch.Tensor
    latency_steps: torch.Tensor  # int
    push_interval: torch.Tensor  # s until the next push


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def sample_env_params(cfg: RandomizationConfig, n: int, generator: torch.Generator | None = None) -> EnvParams:
    ones, zeros = torch.ones(n), torch.zeros(n)
    return EnvParams(
        friction=_uniform(*cfg.friction_range, n, generator) if cfg.friction else ones,
        torso_mass_offset=_uniform(*cfg.torso_mass_offset, n, generator) if cfg.mass else zeros,
        kp_scale=_uniform(*cfg.gain_scale, n, generator) if cfg.gains else ones,
        kd_scale=_uniform(*cfg.gain_scale, n, generator) if cfg.gains else ones.clone(),
        latency_steps=(
            torch.randint(cfg.latency_steps[0], cfg.latency_steps[1] + 1, (n,), generator=generator)
            if cfg.latency
            else torch.zeros(n, dtype=torch.long)
        ),
        push_interval=_uniform(*cfg.push_interval, n, generator) if cfg.push else torch.full((n,), float("inf")),
    )


def next_push_interval(cfg: RandomizationConfig, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n,) s until the next push of ``n`` envs that were just pushed."""
    return _uniform(*cfg.push_interval, n, generator)


def push_velocity(cfg: RandomizationConfig, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 3) root velocity changes for a push: random in the horizontal plane."""
    v = torch.zeros(n, 3)
    v[:, :2] = _uniform(*cfg.push_velocity, 2 * n, generator).view(n, 2)
    return v
