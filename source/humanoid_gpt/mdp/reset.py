"""Reference state initialization: an episode starts at a random phase of its motion, the robot placed at the
reference pose (with optional noise)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.mdp.config import RandomizationConfig, RobotTensors
from humanoid_gpt.state import KinematicState


@dataclass
class RootJointState:
    """What a simulator needs to place robots: root pose and velocities (world), joint positions and velocities."""

    root_pos: torch.Tensor
    root_quat: torch.Tensor
    root_lin_vel: torch.Tensor
    root_ang_vel: torch.Tensor
    joint_pos: torch.Tensor
    joint_vel: torch.Tensor


def reset_state_from_reference(
    ref: KinematicState,
    consts: RobotTensors,
    cfg: RandomizationConfig | None = None,
    generator: torch.Generator | None = None,
) -> RootJointState:
    """The robot state matching ``ref``; with ``cfg.init_noise``, perturbed and joints kept within their limits."""
    state = RootJointState(
        ref.root_pos.clone(),
        ref.root_quat.clone(),
        ref.root_lin_vel.clone(),
        ref.root_ang_vel.clone(),
        ref.joint_pos.clone(),
        ref.joint_vel.clone(),
    )
    if cfg is not None and cfg.init_noise:
        n, dev = ref.num, ref.joint_pos.device
        u = lambda *shape: torch.rand(shape, generator=generator, device=dev) * 2 - 1  # noqa: E731
        state.root_pos = state.root_pos + u(n, 3) * cfg.init_root_pos
        state.root_quat = R.quat_normalize(R.quat_mul(R.rotvec_to_quat(u(n, 3) * cfg.init_root_rot), state.root_quat))
        state.root_lin_vel = state.root_lin_vel + u(n, 3) * cfg.init_root_vel
        state.root_ang_vel = state.root_ang_vel + u(n, 3) * cfg.init_root_vel
        state.joint_pos = state.joint_pos + u(n, ref.joint_pos.shape[1]) * cfg.init_joint_pos
    state.joint_pos = torch.clamp(state.joint_pos, consts.joint_lower, consts.joint_upper)
    return state


def latest_start(library, clip_ids: torch.Tensor, times: torch.Tensor, control_dt: float) -> torch.Tensor:
    """``times`` (float64) moved back where needed so an episode never starts within two steps of its clip's end."""
    latest = (library.duration[clip_ids].double() - 2 * control_dt).clamp_min(0.0)
    return torch.minimum(times.double(), latest)
