"""Policies the harness can run. A policy maps the observation TensorDict to actions (N, 29)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from tensordict import TensorDict

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.mdp.actions import actions_for_targets


class Policy(Protocol):
    def __call__(self, obs: TensorDict) -> torch.Tensor: ...


class ReferencePolicy:
    """Sanity check: PD targets at the next reference joint positions (what a perfect tracker would command open
    loop). It has no balance feedback, so it falls on most motions: a floor any learned policy must beat."""

    def __init__(self, env) -> None:
        self.env = env

    def __call__(self, obs: TensorDict) -> torch.Tensor:
        ref = self.env.ref_next.joint_pos
        if self.env.cfg.action_relative_to_reference:
            return torch.zeros_like(ref)
        return actions_for_targets(ref, self.env.consts)


class ZeroPolicy:
    """Zero actions: PD targets at the default pose (or at the reference, with reference-relative actions)."""

    def __init__(self, num_actions: int = 29) -> None:
        self.num_actions = num_actions

    def __call__(self, obs: TensorDict) -> torch.Tensor:
        return torch.zeros(obs.batch_size[0], self.num_actions)


class TorchScriptPolicy:
    """A TorchScript module taking one observation group (``student`` by default) to actions."""

    def __init__(self, path: str | Path, obs_group: str = "student") -> None:
        path = Path(path)
        if not path.is_file():
            raise HGPTError(f"policy file {path} does not exist")
        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as e:
            raise HGPTError(f"{path}: not a TorchScript policy ({e}); export one with torch.jit.script/trace") from e
        self.obs_group = obs_group

    @torch.no_grad()
    def __call__(self, obs: TensorDict) -> torch.Tensor:
        return self.module(obs[self.obs_group])


def make_policy(spec: str, env) -> Policy:
    """``reference``, ``zero``, or the path of a TorchScript file."""
    if spec == "reference":
        return ReferencePolicy(env)
    if spec == "zero":
        return ZeroPolicy(env.num_actions)
    return TorchScriptPolicy(spec)
