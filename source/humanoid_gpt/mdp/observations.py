"""Observations. The student's is what a real G1 can sense plus the reference; the teacher's adds privileged state.

Reference terms use the NEXT reference frame (the pose the action should reach).
"""

from __future__ import annotations

import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.mdp.config import RandomizationConfig, RobotTensors
from humanoid_gpt.mdp.frames import heading_quat, to_heading_frame, yaw_of
from humanoid_gpt.state import KinematicState

STUDENT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("base_ang_vel", 3),
    ("projected_gravity", 3),
    ("joint_pos_rel", 29),
    ("joint_vel", 29),
    ("last_action", 29),
    ("ref_joint_pos_rel", 29),
    ("ref_root_height", 1),
    ("ref_projected_gravity", 3),
    ("ref_root_vel_heading", 6),
    ("yaw_error_cos_sin", 2),
    ("xy_error_heading", 2),
)
"""Names and sizes of the student observation's parts, in order (136 values). Exported with every policy."""
STUDENT_DIM = sum(n for _, n in STUDENT_LAYOUT)


def student_observation(
    robot: KinematicState,
    ref_next: KinematicState,
    last_action: torch.Tensor,
    consts: RobotTensors,
    noise: RandomizationConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The deployable observation (N, 136), as docs/architecture.md lists it. ``noise`` adds uniform sensor noise."""
    q = robot.root_quat
    ang_vel = R.quat_apply_inverse(q, robot.root_ang_vel)
    gravity = R.projected_gravity(q)
    joint_pos = robot.joint_pos - consts.default_joint_pos
    joint_vel = robot.joint_vel
    if noise is not None and noise.obs_noise:
        u = lambda x, s: x + (torch.rand(x.shape, generator=generator, device=x.device) * 2 - 1) * s  # noqa: E731
        ang_vel, gravity = u(ang_vel, noise.noise_ang_vel), u(gravity, noise.noise_gravity)
        joint_pos, joint_vel = u(joint_pos, noise.noise_joint_pos), u(joint_vel, noise.noise_joint_vel)
    ref_heading = heading_quat(ref_next)
    ref_vel = torch.cat(
        [
            R.quat_apply_inverse(ref_heading, ref_next.root_lin_vel),
            R.quat_apply_inverse(ref_heading, ref_next.root_ang_vel),
        ],
        dim=-1,
    )
    yaw_err = yaw_of(ref_next.root_quat) - yaw_of(q)
    xy = ref_next.root_pos - robot.root_pos
    xy[:, 2] = 0.0
    xy_err = R.quat_apply_inverse(heading_quat(robot), xy)[:, :2]
    return torch.cat(
        [
            ang_vel,
            gravity,
            joint_pos,
            joint_vel,
            last_action,
            ref_next.joint_pos - consts.default_joint_pos,
            ref_next.root_pos[:, 2:3],
            R.projected_gravity(ref_next.root_quat),
            ref_vel.flatten(1),
            torch.cos(yaw_err).unsqueeze(-1),
            torch.sin(yaw_err).unsqueeze(-1),
            xy_err,
        ],
        dim=-1,
    )


def _rot6(quat: torch.Tensor) -> torch.Tensor:
    """First two columns of the rotation matrix: a continuous 6-D rotation encoding."""
    x = torch.zeros(quat.shape[:-1] + (3,), dtype=quat.dtype, device=quat.device)
    y = x.clone()
    x[..., 0] = 1.0
    y[..., 1] = 1.0
    return torch.cat([R.quat_apply(quat, x), R.quat_apply(quat, y)], dim=-1)


def privileged_observation(
    robot: KinematicState,
    ref_next: KinematicState,
    last_action: torch.Tensor,
    consts: RobotTensors,
) -> torch.Tensor:
    """The teacher's observation: the noiseless student observation, then the root's true velocities in its heading
    frame, every keypoint's pose and velocities in the root heading frame, and their residuals to the reference."""
    heading = heading_quat(robot)
    mine, theirs = to_heading_frame(robot), to_heading_frame(ref_next)
    n = robot.num
    flat = lambda x: x.reshape(n, -1)  # noqa: E731
    rot_residual = R.quat_to_rotvec(R.quat_mul(R.quat_conjugate(mine.quat), theirs.quat))
    return torch.cat(
        [
            student_observation(robot, ref_next, last_action, consts),
            R.quat_apply_inverse(heading, robot.root_lin_vel),
            R.quat_apply_inverse(heading, robot.root_ang_vel),
            flat(mine.pos),
            flat(_rot6(mine.quat)),
            flat(mine.lin_vel),
            flat(mine.ang_vel),
            flat(theirs.pos - mine.pos),
            flat(rot_residual),
            flat(theirs.lin_vel - mine.lin_vel),
            flat(theirs.ang_vel - mine.ang_vel),
        ],
        dim=-1,
    )


def privileged_dim(num_keypoints: int) -> int:
    return STUDENT_DIM + 6 + num_keypoints * (3 + 6 + 3 + 3 + 3 + 3 + 3 + 3)
