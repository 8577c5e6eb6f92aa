"""The batched kinematic state both a reference motion and a simulated robot are described by.

One dataclass for both sides means every observation, reward, termination and metric is a function of two
``KinematicState`` objects, whatever produced them (the motion library, C MuJoCo, Isaac Lab).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class KinematicState:
    """World frame; quaternions (w, x, y, z); bodies in a fixed order (the keypoints, unless said otherwise)."""

    joint_pos: torch.Tensor  # (N, 29) rad
    joint_vel: torch.Tensor  # (N, 29) rad/s
    root_pos: torch.Tensor  # (N, 3) m
    root_quat: torch.Tensor  # (N, 4)
    root_lin_vel: torch.Tensor  # (N, 3) m/s
    root_ang_vel: torch.Tensor  # (N, 3) rad/s
    body_pos: torch.Tensor  # (N, B, 3)
    body_quat: torch.Tensor  # (N, B, 4)
    body_lin_vel: torch.Tensor  # (N, B, 3)
    body_ang_vel: torch.Tensor  # (N, B, 3)

    @property
    def num(self) -> int:
        return self.joint_pos.shape[0]

    def index(self, idx: torch.Tensor | slice) -> KinematicState:
        """The states of a subset of the batch."""
        return KinematicState(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> KinematicState:
        return KinematicState(**{f.name: getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)})
