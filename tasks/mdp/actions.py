"""The tracking action: PD targets from the core's action map, with optional per-env latency (the core's draws) and
reference-relative offsets (the same maths as the MuJoCo backend)."""

from __future__ import annotations

from dataclasses import MISSING

import torch
from isaaclab.managers import ActionTerm, ActionTermCfg
from isaaclab.utils import configclass

from humanoid_gpt.mdp.actions import joint_targets
from humanoid_gpt.mdp.config import RandomizationConfig
from humanoid_gpt_tasks.mdp.events import core_draws


class TrackingJointAction(ActionTerm):
    cfg: TrackingJointActionCfg

    def __init__(self, cfg: TrackingJointActionCfg, env) -> None:
        super().__init__(cfg, env)
        self._command = None
        n, j = self.num_envs, self.action_dim
        self._raw = torch.zeros(n, j, device=self.device)
        self._targets = torch.zeros(n, j, device=self.device)
        dr = cfg.randomization
        if dr is not None and dr.latency:
            self._delay = core_draws(env, dr)[0].latency_steps.to(self.device)
            self._history = torch.zeros(dr.latency_steps[1] + 1, n, j, device=self.device)
        else:
            self._delay = torch.zeros(n, dtype=torch.long, device=self.device)
            self._history = torch.zeros(1, n, j, device=self.device)

    @property
    def command(self):
        if self._command is None:
            self._command = self._env.command_manager.get_term(self.cfg.command_name)
        return self._command

    @property
    def action_dim(self) -> int:
        return len(self.cfg.joint_names)

    @property
    def raw_actions(self) -> torch.Tensor:
        return self._raw

    @property
    def processed_actions(self) -> torch.Tensor:
        return self._targets

    def process_actions(self, actions: torch.Tensor) -> None:
        self._raw[:] = actions
        self._history = torch.roll(self._history, 1, dims=0)
        self._history[0] = actions
        applied = self._history[self._delay, torch.arange(self.num_envs, device=self.device)]
        cmd = self.command
        base = cmd.ref_next().joint_pos if cmd.tracking.action_relative_to_reference else None
        self._targets = joint_targets(applied, cmd.consts, base)

    def apply_actions(self) -> None:
        self._asset.actuators.target_command.set_position_index(value=self._targets, joint_ids=self.command.joint_ids)

    def reset(self, env_ids=None) -> None:
        ids = slice(None) if env_ids is None else env_ids
        self._raw[ids] = 0.0
        self._history[:, ids] = 0.0


@configclass
class TrackingJointActionCfg(ActionTermCfg):
    class_type: type = TrackingJointAction
    asset_name: str = "robot"
    command_name: str = "motion"
    joint_names: list[str] = MISSING
    randomization: RandomizationConfig | None = None  # per-env latency from the core's draws when ``latency`` is on
