"""From policy actions to PD joint targets."""

from __future__ import annotations

import torch

from humanoid_gpt.mdp.config import RobotTensors


def joint_targets(
    action: torch.Tensor, consts: RobotTensors, ref_next_joint_pos: torch.Tensor | None = None
) -> torch.Tensor:
    """q_target = base + a * action_scale, with base the default pose, or the next reference pose when given
    (actions relative to the reference, an option for experts)."""
    base = consts.default_joint_pos if ref_next_joint_pos is None else ref_next_joint_pos
    return base + action * consts.action_scale


def actions_for_targets(
    targets: torch.Tensor, consts: RobotTensors, ref_next_joint_pos: torch.Tensor | None = None
) -> torch.Tensor:
    """The inverse of :func:`joint_targets`: converts, e.g., an expert's reference-relative action into the
    student's default-relative action space."""
    base = consts.default_joint_pos if ref_next_joint_pos is None else ref_next_joint_pos
    return (targets - base) / consts.action_scale
