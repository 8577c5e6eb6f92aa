"""Keypoint-level tracking rewards in the paper's form, plus regularizing penalties. Each term maps a
:class:`TrackingStep` to (N,) values; :func:`compute_rewards` sums weight * term * dt as Isaac Lab's manager does."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.mdp.config import RewardConfig, RobotTensors
from humanoid_gpt.mdp.frames import to_heading_frame
from humanoid_gpt.state import KinematicState


@dataclass
class TrackingStep:
    """What the reward and termination terms see after one control step."""

    robot: KinematicState
    ref: KinematicState  # the reference at the robot's current time
    action: torch.Tensor  # (N, 29)
    prev_action: torch.Tensor  # (N, 29)
    consts: RobotTensors
    torque: torch.Tensor | None = None  # (N, 29) N m, last physics step
    self_contacts: torch.Tensor | None = None  # (N,) count of undesired contacts


def _kernel(diff: torch.Tensor, alpha: float, sigma: float, cfg: RewardConfig, w: torch.Tensor | None) -> torch.Tensor:
    """The tracking kernel of one term over per-keypoint errors: ``diff`` (N, K, 3) vectors or (N, K) angles, or
    (N, 3) / (N,) for the anchor alone (``w`` None). "l1": mean_w exp(-alpha e) with e the L1 norm of a keypoint's
    vector (an anchor's L2 norm); "gaussian": exp(-mean_w |e|^2 / sigma^2)."""
    vector = diff.dim() == (2 if w is None else 3)
    if cfg.form == "gaussian":
        sq = diff.square().sum(-1) if vector else diff.square()
        return torch.exp(-(sq if w is None else (sq * w).sum(-1) / w.sum()) / sigma**2)
    if w is None:
        return torch.exp(-alpha * (diff.norm(dim=-1) if vector else diff))
    err = diff.abs().sum(-1) if vector else diff
    return (torch.exp(-alpha * err) * w).sum(-1) / w.sum()


def anchor_pos(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    a = s.consts.anchor
    diff = s.ref.body_pos[:, a] - s.robot.body_pos[:, a]
    return _kernel(diff, cfg.alpha_anchor_pos, cfg.sigma_anchor_pos, cfg, None)


def anchor_rot(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    a = s.consts.anchor
    angle = R.quat_error_angle(s.robot.body_quat[:, a], s.ref.body_quat[:, a])
    return _kernel(angle, cfg.alpha_rot, cfg.sigma_rot, cfg, None)


def keypoint_pos(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    mine, theirs = to_heading_frame(s.robot), to_heading_frame(s.ref)
    return _kernel(theirs.pos - mine.pos, cfg.alpha_pos, cfg.sigma_pos, cfg, s.consts.keypoint_weights)


def keypoint_rot(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    mine, theirs = to_heading_frame(s.robot), to_heading_frame(s.ref)
    angle = R.quat_error_angle(mine.quat, theirs.quat)
    return _kernel(angle, cfg.alpha_rot, cfg.sigma_rot, cfg, s.consts.keypoint_weights)


def keypoint_lin_vel(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    diff = s.ref.body_lin_vel - s.robot.body_lin_vel
    return _kernel(diff, cfg.alpha_lin_vel, cfg.sigma_lin_vel, cfg, s.consts.keypoint_weights)


def keypoint_ang_vel(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    diff = s.ref.body_ang_vel - s.robot.body_ang_vel
    return _kernel(diff, cfg.alpha_ang_vel, cfg.sigma_ang_vel, cfg, s.consts.keypoint_weights)


def action_rate(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    return (s.action - s.prev_action).square().sum(-1)


def joint_limit(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    """How far joints are past the soft limits (the central ``soft_joint_limit`` fraction of the range), rad."""
    mid = 0.5 * (s.consts.joint_lower + s.consts.joint_upper)
    half = 0.5 * (s.consts.joint_upper - s.consts.joint_lower) * cfg.soft_joint_limit
    return ((s.robot.joint_pos - mid).abs() - half).clamp_min(0.0).sum(-1)


def torque(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    if s.torque is None:
        return torch.zeros(s.robot.num, device=s.action.device)
    return s.torque.square().sum(-1)


def self_collision(s: TrackingStep, cfg: RewardConfig) -> torch.Tensor:
    if s.self_contacts is None:
        return torch.zeros(s.robot.num, device=s.action.device)
    return s.self_contacts.float()


REWARD_TERMS = {
    "anchor_pos": anchor_pos,
    "anchor_rot": anchor_rot,
    "keypoint_pos": keypoint_pos,
    "keypoint_rot": keypoint_rot,
    "keypoint_lin_vel": keypoint_lin_vel,
    "keypoint_ang_vel": keypoint_ang_vel,
    "action_rate": action_rate,
    "joint_limit": joint_limit,
    "torque": torque,
    "self_collision": self_collision,
}
"""Term name -> function; each term's weight is the RewardConfig field of the same name."""


def compute_rewards(s: TrackingStep, cfg: RewardConfig, dt: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total reward (N,) = sum of weight * term * dt over the non-zero-weight terms, and each weighted term."""
    terms = {name: fn(s, cfg) * getattr(cfg, name) * dt for name, fn in REWARD_TERMS.items() if getattr(cfg, name)}
    return torch.stack(list(terms.values())).sum(0), terms
