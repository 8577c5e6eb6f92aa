"""Expressing states in a root's gravity-aligned heading frame: the frame in which tracking errors ignore a slow
drift of the whole body (the released Humanoid-GPT evaluation's convention)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.state import KinematicState


@dataclass
class LocalBodies:
    """Bodies relative to the root's heading frame: origin at the root's xy (height kept), rotated by -yaw."""

    pos: torch.Tensor  # (N, B, 3)
    quat: torch.Tensor  # (N, B, 4)
    lin_vel: torch.Tensor  # (N, B, 3)
    ang_vel: torch.Tensor  # (N, B, 3)


def heading_quat(state: KinematicState) -> torch.Tensor:
    return R.yaw_quat(state.root_quat)


def to_heading_frame(state: KinematicState) -> LocalBodies:
    """The state's bodies in its root heading frame. Computed once per state object: rewards, observations and
    metrics all ask for it each step (states are values: build a new one rather than editing tensors in place)."""
    cached = state.__dict__.get("_heading_frame")
    if cached is None:
        cached = state.__dict__["_heading_frame"] = _to_heading_frame(state)
    return cached


def _to_heading_frame(state: KinematicState) -> LocalBodies:
    yaw = heading_quat(state).unsqueeze(1).expand(-1, state.body_pos.shape[1], -1)
    origin = state.root_pos.clone()
    origin[:, 2] = 0.0
    return LocalBodies(
        pos=R.quat_apply_inverse(yaw, state.body_pos - origin.unsqueeze(1)),
        quat=R.quat_mul(R.quat_conjugate(yaw), state.body_quat),
        lin_vel=R.quat_apply_inverse(yaw, state.body_lin_vel),
        ang_vel=R.quat_apply_inverse(yaw, state.body_ang_vel),
    )


def yaw_of(quat: torch.Tensor) -> torch.Tensor:
    h = R.yaw_quat(quat)
    return 2.0 * torch.atan2(h[..., 3], h[..., 0])


def up_axis(quat: torch.Tensor) -> torch.Tensor:
    """The body z axis in the world frame."""
    z = torch.zeros(quat.shape[:-1] + (3,), dtype=quat.dtype, device=quat.device)
    z[..., 2] = 1.0
    return R.quat_apply(quat, z)
