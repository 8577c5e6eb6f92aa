"""The motion reference as an Isaac Lab command term: per-env clip and clock, reference queries, robot state
conversion and reference state initialization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING

import torch
from isaaclab.managers import CommandTerm, CommandTermCfg
from isaaclab.utils import configclass

from humanoid_gpt import rotations as R
from humanoid_gpt.catalog.refs import load_clip_refs
from humanoid_gpt.mdp.config import RobotTensors, TrackingConfig, check_library
from humanoid_gpt.mdp.reset import ReferenceClock
from humanoid_gpt.mdp.rewards import TrackingStep
from humanoid_gpt.mdp.sampling import StartSampler
from humanoid_gpt.metrics import step_errors
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot.g1 import load_g1
from humanoid_gpt.state import KinematicState


class MotionReferenceCommand(CommandTerm):
    """Owns the motion library; ``command`` is the next reference joint positions (N, 29)."""

    cfg: MotionReferenceCommandCfg

    def __init__(self, cfg: MotionReferenceCommandCfg, env) -> None:
        super().__init__(cfg, env)
        self.tracking: TrackingConfig = cfg.tracking
        self.robot = env.scene[cfg.asset_name]
        g1 = load_g1()
        self.consts = RobotTensors.build(g1, self.tracking, self.device)
        clips = load_clip_refs(cfg.motion_files, g1)  # files, "path@start:stop" segments, "corpus::clip id" clips
        self.library = MotionLibrary.from_clips(
            clips, g1, self.tracking.keypoints, device=self.device, weights=cfg.motion_weights
        )
        check_library(self.library, self.tracking)
        joint_ids, _ = self.robot.find_joints(list(g1.joint_names), preserve_order=True)
        self.joint_ids = torch.as_tensor(joint_ids, device=self.device)
        body_ids, _ = self.robot.find_bodies(list(self.tracking.keypoints), preserve_order=True)
        self.body_ids = torch.as_tensor(body_ids, device=self.device)
        root_ids, _ = self.robot.find_bodies([self.tracking.root_body])
        self.root_id = int(root_ids[0])
        self.dt = env.step_dt
        self.clock = ReferenceClock(self.library, self.num_envs, self.dt, self.device)
        self.starts = StartSampler(self.library, self.tracking.sampling)
        self.metrics = {k: torch.zeros(self.num_envs, device=self.device) for k in ("mpkpe_mm", "mpjpe")}
        self._cache: dict = {}
        self._version = 0

    # The command ------------------------------------------------------------------------------------------------

    @property
    def command(self) -> torch.Tensor:
        return self.ref_next().joint_pos

    def ref_next(self) -> KinematicState:
        """The reference one control step ahead of the robot's clock (what the next action should reach)."""
        return self._cached("ref_next", lambda: self.clock.reference(self.dt))

    def _cached(self, key: str, make):
        stamp = (self._env.common_step_counter, self._version)
        if self._cache.get("stamp") != stamp:
            self._cache = {"stamp": stamp}
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # Robot state ------------------------------------------------------------------------------------------------

    def robot_state(self) -> KinematicState:
        """The robot in the core's convention: positions relative to the env origin, quaternions (w, x, y, z)."""
        return self._cached("robot", self._read_robot)

    def _read_robot(self) -> KinematicState:
        d = self.robot.data
        origin = self._env.scene.env_origins
        body_pos = d.body_link_pos_w.torch[:, self.body_ids] - origin[:, None, :]
        return KinematicState(
            joint_pos=d.joint_pos.torch[:, self.joint_ids],
            joint_vel=d.joint_vel.torch[:, self.joint_ids],
            root_pos=d.body_link_pos_w.torch[:, self.root_id] - origin,
            root_quat=R.xyzw_to_wxyz(d.body_link_quat_w.torch[:, self.root_id]),
            root_lin_vel=d.body_link_lin_vel_w.torch[:, self.root_id],
            root_ang_vel=d.body_link_ang_vel_w.torch[:, self.root_id],
            body_pos=body_pos,
            body_quat=R.xyzw_to_wxyz(d.body_link_quat_w.torch[:, self.body_ids]),
            body_lin_vel=d.body_link_lin_vel_w.torch[:, self.body_ids],
            body_ang_vel=d.body_link_ang_vel_w.torch[:, self.body_ids],
        )

    def tracking_step(self) -> TrackingStep:
        """What reward and termination terms see after a physics step (before the clock advances)."""

        def make() -> TrackingStep:
            actions = self._env.action_manager
            return TrackingStep(
                self.robot_state(),
                self.ref_next(),
                actions.action,
                actions.prev_action,
                self.consts,
                self.robot.actuators.applied_effort.torch[:, self.joint_ids],
                None,
            )

        return self._cached("step", make)

    # CommandTerm hooks ------------------------------------------------------------------------------------------

    def _update_metrics(self) -> None:
        errors = step_errors(self.robot_state(), self.ref_next())
        for k in self.metrics:
            self.metrics[k] = errors[k].float()

    def _resample_command(self, env_ids: Sequence[int] | slice) -> None:
        if isinstance(env_ids, slice):
            env_ids = torch.arange(self.num_envs, device=self.device)[env_ids]
        env_ids = torch.as_tensor(env_ids, device=self.device, dtype=torch.long)
        if len(env_ids) == 0:
            return
        terminated = getattr(getattr(self._env, "termination_manager", None), "terminated", None)
        if terminated is not None:  # failures (not time-outs) count where they happened, as in the MuJoCo harness
            fell = env_ids[terminated[env_ids]]
            self.starts.record(self.clock.clip_ids[fell], self.clock.motion_time[fell])
        clips, times = self.starts.sample(len(env_ids))
        self.start_at(env_ids, clips, times)

    def start_at(self, env_ids: torch.Tensor, clip_ids: torch.Tensor, times: torch.Tensor) -> None:
        """Place ``env_ids`` at ``times`` of ``clip_ids`` (reference state initialization, noise per config)."""
        s = self.clock.start(env_ids, clip_ids, times, self.consts, self.tracking.randomization)
        origin = self._env.scene.env_origins[env_ids]
        pose = torch.cat([s.root_pos + origin, R.wxyz_to_xyzw(R.quat_normalize(s.root_quat))], dim=-1)
        self.robot.write_root_link_pose_to_sim_index(root_pose=pose, env_ids=env_ids)
        vel = torch.cat([s.root_lin_vel, s.root_ang_vel], dim=-1)
        self.robot.write_root_link_velocity_to_sim_index(root_velocity=vel, env_ids=env_ids)
        self.robot.write_joint_position_to_sim_index(position=s.joint_pos, joint_ids=self.joint_ids, env_ids=env_ids)
        self.robot.write_joint_velocity_to_sim_index(velocity=s.joint_vel, joint_ids=self.joint_ids, env_ids=env_ids)
        self._version += 1

    def _update_command(self) -> None:
        self.starts.step()
        self.clock.advance()
        self._version += 1


@configclass
class MotionReferenceCommandCfg(CommandTermCfg):
    class_type: type = MotionReferenceCommand
    asset_name: str = "robot"
    motion_files: list[str] = MISSING  # files, segments "path@start:stop", corpus clips "folder::clip id[@start:stop]"
    motion_weights: list[float] | None = None  # sampling weight per file (distillation balances clusters with it)
    tracking: TrackingConfig = MISSING
    resampling_time_range: tuple[float, float] = (1.0e9, 1.0e9)  # episodes end by termination, never by timer
