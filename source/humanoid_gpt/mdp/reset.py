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


class ReferenceClock:
    """Each env's clip and time in it: the motion-reference state every backend keeps, and episode starts.

    ``start`` places envs at a phase of a clip and returns the robot state a backend writes into its simulator.
    """

    def __init__(self, library, num_envs: int, control_dt: float, device: torch.device | str = "cpu") -> None:
        self.library, self.dt = library, control_dt
        self.clip_ids = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.motion_time = torch.zeros(num_envs, dtype=torch.float64, device=device)

    def reference(self, ahead: float = 0.0) -> KinematicState:
        """The reference ``ahead`` seconds past every env's clock."""
        return self.library.frames(self.clip_ids, self.motion_time + ahead)

    def start(
        self,
        env_ids: torch.Tensor,
        clip_ids: torch.Tensor,
        times: torch.Tensor,
        consts: RobotTensors,
        cfg: RandomizationConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> RootJointState:
        """Put ``env_ids`` at ``times`` of ``clip_ids`` (never within two steps of a clip's end); the matching robot
        state (reference state initialization, noise per ``cfg``)."""
        times = latest_start(self.library, clip_ids, times, self.dt)
        self.clip_ids[env_ids] = clip_ids
        self.motion_time[env_ids] = times
        return reset_state_from_reference(self.library.frames(clip_ids, times), consts, cfg, generator)

    def advance(self) -> None:
        self.motion_time += self.dt
