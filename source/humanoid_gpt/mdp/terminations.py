"""Terminations: falling off the reference (failures) and reaching the motion's end (time-outs, not failures)."""

from __future__ import annotations

import torch

from humanoid_gpt.mdp.config import TerminationConfig
from humanoid_gpt.mdp.frames import up_axis
from humanoid_gpt.mdp.rewards import TrackingStep


def anchor_height(s: TrackingStep, cfg: TerminationConfig) -> torch.Tensor:
    a = s.consts.anchor
    return (s.ref.body_pos[:, a, 2] - s.robot.body_pos[:, a, 2]).abs() > cfg.anchor_height


def anchor_tilt(s: TrackingStep, cfg: TerminationConfig) -> torch.Tensor:
    """The angle between the reference's and the robot's anchor up axes: a fall, whatever the heading."""
    a = s.consts.anchor
    cos = (up_axis(s.ref.body_quat[:, a]) * up_axis(s.robot.body_quat[:, a])).sum(-1)
    return torch.arccos(cos.clamp(-1.0, 1.0)) > cfg.anchor_tilt


def end_effector_height(s: TrackingStep, cfg: TerminationConfig) -> torch.Tensor:
    """An end effector's height strayed from the reference's (off when the threshold is 0)."""
    ee = s.consts.end_effectors
    if cfg.end_effector_height <= 0:
        return torch.zeros(s.robot.root_pos.shape[0], dtype=torch.bool, device=s.robot.root_pos.device)
    return ((s.ref.body_pos[:, ee, 2] - s.robot.body_pos[:, ee, 2]).abs() > cfg.end_effector_height).any(-1)


def root_xy_drift(s: TrackingStep, cfg: TerminationConfig) -> torch.Tensor:
    """The root strayed horizontally from the reference's path (off when the threshold is 0)."""
    if cfg.root_xy_drift <= 0:
        return torch.zeros(s.robot.root_pos.shape[0], dtype=torch.bool, device=s.robot.root_pos.device)
    return (s.ref.root_pos[:, :2] - s.robot.root_pos[:, :2]).norm(dim=-1) > cfg.root_xy_drift


def non_finite(s: TrackingStep, cfg: TerminationConfig) -> torch.Tensor:
    """A NaN or inf physics state: reset the env (and count it) instead of crashing the run."""
    parts = (s.robot.root_pos, s.robot.root_quat, s.robot.joint_pos, s.robot.joint_vel, s.robot.body_pos)
    return ~torch.stack([torch.isfinite(p).flatten(1).all(-1) for p in parts]).all(0)


FAILURE_TERMS = {
    "anchor_height": anchor_height,
    "anchor_tilt": anchor_tilt,
    "end_effector_height": end_effector_height,
    "root_xy_drift": root_xy_drift,
    "non_finite": non_finite,
}


def compute_failures(s: TrackingStep, cfg: TerminationConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(N,) failure flags and each term's flags. NaN comparisons are False, so a NaN env fails through non_finite."""
    flags = {name: fn(s, cfg) for name, fn in FAILURE_TERMS.items()}
    return torch.stack(list(flags.values())).any(0), flags


def motion_ended(motion_time: torch.Tensor, duration: torch.Tensor, control_dt: float) -> torch.Tensor:
    """True where the next step would pass the clip's last frame: a time-out, not a failure."""
    return motion_time + control_dt > duration + 1e-6
