"""The tracking task on the native MuJoCo backend, as an rsl_rl ``VecEnv``.

Same MDP as the Isaac Lab task (every observation, reward and termination comes from ``humanoid_gpt.mdp``); the
physics is C MuJoCo on CPU threads (:class:`MujocoWorlds`). Observation groups: ``policy`` and ``critic`` (the
privileged observation, what experts train on), ``student`` and ``teacher`` (for DAgger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from humanoid_gpt import rotations as R
from humanoid_gpt.mdp import observations as O
from humanoid_gpt.mdp.actions import joint_targets
from humanoid_gpt.mdp.config import RobotTensors, TrackingConfig, check_library
from humanoid_gpt.mdp.randomization import next_push_interval, push_velocity, sample_env_params
from humanoid_gpt.mdp.reset import ReferenceClock
from humanoid_gpt.mdp.rewards import TrackingStep, compute_rewards
from humanoid_gpt.mdp.sampling import StartSampler
from humanoid_gpt.mdp.terminations import compute_failures, motion_ended
from humanoid_gpt.metrics import MetricsAccumulator, step_errors
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.state import KinematicState
from humanoid_gpt_mujoco.worlds import MujocoWorlds


@dataclass
class EvalSchedule:
    """Evaluation: every clip once from its first frame, in order, envs taking the next clip as they finish."""

    clip_ids: Sequence[int]


class MujocoTrackingEnv(VecEnv):
    """``num_envs`` G1s tracking clips of ``library`` under ``cfg``.

    ``compile=True`` fuses the per-step MDP maths with ``torch.compile`` (about 6x less time in it, after a
    30-40 s compilation): worth it for training runs, not for short evaluations or tests.

    Training (default): episodes start at a random phase of a clip sampled by the library's weights (reference state
    initialization) and end on a failure, at the clip's end or after ``cfg.episode_seconds``. With ``schedule``, each
    episode plays one clip of the schedule from its start to its end (or a fall): the evaluation protocol.
    """

    def __init__(
        self,
        g1: G1,
        library: MotionLibrary,
        cfg: TrackingConfig,
        num_envs: int,
        seed: int = 0,
        num_threads: int = 2,
        schedule: EvalSchedule | None = None,
        compile: bool = False,
    ) -> None:
        cfg.validate()
        check_library(library, cfg)
        self.g1, self.library, self.cfg = g1, library, cfg
        self.num_envs = num_envs
        self.num_actions = g1.num_joints
        self.device = torch.device("cpu")
        self.consts = RobotTensors.build(g1, cfg)
        self.dt = cfg.control_dt
        self.decimation = cfg.decimation
        self.schedule = list(schedule.clip_ids) if schedule is not None else None
        self._next_scheduled = 0
        self.max_episode_length = (
            int(np.ceil(float(library.duration.max()) / self.dt)) + 1
            if self.schedule is not None
            else cfg.max_episode_steps
        )
        self.generator = torch.Generator().manual_seed(seed)
        dr = cfg.randomization if self.schedule is None else type(cfg.randomization).off()
        self.dr = dr
        self.params = sample_env_params(dr, num_envs, self.generator)
        per_env = dr.friction or dr.mass or dr.gains
        self.worlds = MujocoWorlds(
            g1, num_envs, cfg.keypoints, cfg.physics_dt, num_threads, per_env, cfg.self_collisions
        )
        if per_env:
            self.worlds.randomize(self.params)

        n, a = num_envs, self.num_actions
        self.clock = ReferenceClock(library, n, self.dt)
        self.starts = StartSampler(library, cfg.sampling)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.action = torch.zeros(n, a)
        self.prev_action = torch.zeros(n, a)
        self._delayed = torch.zeros(int(dr.latency_steps[1]) + 1 if dr.latency else 1, n, a)
        self.push_timer = self.params.push_interval.clone()
        self.active = torch.ones(n, dtype=torch.bool)  # False once an evaluation schedule is exhausted
        self.metrics = MetricsAccumulator(n)
        self._evaluate = torch.compile(self._evaluate_step, dynamic=False) if compile else self._evaluate_step
        self._observe = torch.compile(self._observe_state, dynamic=False) if compile else self._observe_state
        self._episode_sums: dict[str, torch.Tensor] = {}
        self._restored_obs: TensorDict | None = None
        self.reset()

    # Reference and robot state -------------------------------------------------------------------------------------

    def robot_state(self) -> KinematicState:
        w = self.worlds
        f = lambda x: torch.from_numpy(x).float()  # noqa: E731
        qpos, qvel = f(w.qpos), f(w.qvel)
        root_quat = qpos[:, 3:7]
        return KinematicState(
            joint_pos=qpos[:, 7:],
            joint_vel=qvel[:, 6:],
            root_pos=qpos[:, :3],
            root_quat=root_quat,
            root_lin_vel=qvel[:, :3],
            root_ang_vel=R.quat_apply(root_quat, qvel[:, 3:6]),  # MuJoCo's free joint stores it in the body frame
            body_pos=f(w.body_pos),
            body_quat=f(w.body_quat),
            body_lin_vel=f(w.body_vel[..., 3:]),
            body_ang_vel=f(w.body_vel[..., :3]),
        )

    # Resets ---------------------------------------------------------------------------------------------------------

    def _start_episodes(self, env_ids: torch.Tensor) -> None:
        if len(env_ids) == 0:
            return
        if self.schedule is None:
            clips, times = self.starts.sample(len(env_ids), self.generator)
        else:
            clips = self.clock.clip_ids[env_ids].clone()
            for k, e in enumerate(env_ids.tolist()):
                if self._next_scheduled < len(self.schedule):
                    clips[k] = self.schedule[self._next_scheduled]
                    self._next_scheduled += 1
                else:
                    self.active[e] = False
            times = torch.zeros(len(env_ids), dtype=torch.float64)
        self.start_at(env_ids, clips, times)

    def start_at(self, env_ids: torch.Tensor, clip_ids: torch.Tensor, times: torch.Tensor) -> None:
        """Place ``env_ids`` at ``times`` of ``clip_ids`` (reference state initialization, noise per config)."""
        s = self.clock.start(env_ids, clip_ids, times, self.consts, self.dr, self.generator)
        root_ang_body = R.quat_apply_inverse(s.root_quat, s.root_ang_vel)
        qpos = torch.cat([s.root_pos, s.root_quat, s.joint_pos], -1).double().numpy()
        qvel = torch.cat([s.root_lin_vel, root_ang_body, s.joint_vel], -1).double().numpy()
        self.worlds.set_state(env_ids.numpy(), qpos, qvel)
        self._clocks_moved = True
        self.episode_length_buf[env_ids] = 0
        self.action[env_ids] = 0.0
        self.prev_action[env_ids] = 0.0
        self._delayed[:, env_ids] = 0.0

    def reset(self) -> tuple[TensorDict, dict]:
        self._next_scheduled = 0
        self.active[:] = True
        self._start_episodes(torch.arange(self.num_envs))
        return self.get_observations(), {}

    # Observations ----------------------------------------------------------------------------------------------------

    def _observe_state(self, robot: KinematicState, ref_next: KinematicState, action: torch.Tensor):
        student = O.student_observation(robot, ref_next, action, self.consts, self.dr, self.generator)
        return student, O.privileged_observation(robot, ref_next, action, self.consts)

    def _evaluate_step(self, s: TrackingStep):
        """Rewards, failures and tracking errors of one step: the pure-torch part, compiled when asked."""
        reward, terms = compute_rewards(s, self.cfg.rewards, self.dt)
        failed, fail_terms = compute_failures(s, self.cfg.terminations)
        return reward, terms, failed, fail_terms, step_errors(s.robot, s.ref)

    def get_observations(self) -> TensorDict:
        if self._restored_obs is not None:  # the first observation after restore() is the one saved with the state
            obs, self._restored_obs = self._restored_obs, None
            return obs
        self.ref_next, self._clocks_moved = self.clock.reference(self.dt), False
        student, privileged = self._observe(self.robot_state(), self.ref_next, self.action)
        self._last_obs = TensorDict(
            {"policy": privileged, "critic": privileged, "student": student, "teacher": privileged},
            batch_size=[self.num_envs],
        )
        return self._last_obs

    # Stepping --------------------------------------------------------------------------------------------------------

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        self._restored_obs = None  # a step makes new observations
        actions = actions.detach().float()
        # A broken policy (NaN/inf) must not be scored like a valid one: MuJoCo would zero the controls with a
        # warning and the robot would stand. The env's step is played with zero actions and its episode fails.
        bad_action = ~torch.isfinite(actions).all(-1)
        actions = torch.where(bad_action[:, None], 0.0, actions).clamp(-100.0, 100.0)
        self.prev_action = self.action
        self.action = actions.clone()
        # Action latency: env e applies the action from latency_steps[e] control steps ago.
        self._delayed = torch.roll(self._delayed, 1, dims=0)
        self._delayed[0] = actions
        applied = self._delayed[self.params.latency_steps, torch.arange(self.num_envs)]
        if self._clocks_moved:  # start_at since the last observation: the cached reference is stale
            self.ref_next, self._clocks_moved = self.clock.reference(self.dt), False
        ref = self.ref_next
        targets = joint_targets(applied, self.consts, ref.joint_pos if self.cfg.action_relative_to_reference else None)
        self._push()
        self.worlds.step(targets.double().numpy(), self.decimation)
        self.clock.advance()
        self.episode_length_buf += 1

        torque = torch.from_numpy(self.worlds.torque).float()
        contacts = torch.from_numpy(self.worlds.self_contacts)
        s = TrackingStep(self.robot_state(), ref, self.action, self.prev_action, self.consts, torque, contacts)
        reward, terms, failed, fail_terms, errors = self._evaluate(s)
        unstable = torch.from_numpy(self.worlds.unstable.copy())
        failed = failed | unstable | bad_action
        ended = motion_ended(self.clock.motion_time, self.library.duration[self.clock.clip_ids], self.dt)
        time_out = (ended | (self.episode_length_buf >= self.max_episode_length)) & ~failed
        done = failed | time_out
        reward = torch.nan_to_num(reward, nan=0.0, posinf=0.0, neginf=0.0)

        self.metrics.add(errors, self.active)
        for name, value in terms.items():
            self._episode_sums[name] = self._episode_sums.get(name, torch.zeros(self.num_envs)) + value
        extras: dict = {"time_outs": time_out, "log": {}}
        done_ids = done.nonzero().flatten()
        if len(done_ids):
            closing = done_ids[self.active[done_ids]]  # envs past the end of an evaluation schedule record nothing
            self.metrics.close(
                closing, self.clock.clip_ids[closing], time_out[closing] & ended[closing], bad_action[closing]
            )
            log = extras["log"]
            for name, total in self._episode_sums.items():
                log[f"/episode_reward/{name}"] = total[done_ids].mean()
                total[done_ids] = 0.0
            for name, flags in fail_terms.items():
                log[f"/termination/{name}"] = flags[done_ids].float().mean()
            log["/termination/unstable_resets"] = unstable.sum().float()
            log["/termination/non_finite_action"] = bad_action.sum().float()
            log["/episode_length_s"] = self.episode_length_buf[done_ids].float().mean() * self.dt
            fell = failed.nonzero().flatten()
            self.starts.record(self.clock.clip_ids[fell], self.clock.motion_time[fell])
            self._start_episodes(done_ids)
        self.starts.step()
        obs = self.get_observations()
        return obs, reward * self.active, done, extras

    def _push(self) -> None:
        if not self.dr.push:
            return
        self.push_timer -= self.dt
        due = (self.push_timer <= 0).nonzero().flatten()
        if len(due):
            self.worlds.add_root_velocity(due.numpy(), push_velocity(self.dr, len(due), self.generator).numpy())
            self.push_timer[due] = next_push_interval(self.dr, len(due), self.generator)

    # Exact resume ----------------------------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """The env's whole state between two steps: worlds, episode clocks and counters, actions in flight, push
        timers and the env's random generator. A run resumed from it continues its episodes bit for bit."""
        return {
            "worlds": self.worlds.state(),
            "clip_ids": self.clock.clip_ids.clone(),
            "motion_time": self.clock.motion_time.clone(),
            "episode_length": self.episode_length_buf.clone(),
            "action": self.action.clone(),
            "prev_action": self.prev_action.clone(),
            "delayed": self._delayed.clone(),
            "push_timer": self.push_timer.clone(),
            "active": self.active.clone(),
            "next_scheduled": self._next_scheduled,
            "episode_sums": {k: v.clone() for k, v in self._episode_sums.items()},
            "generator": self.generator.get_state(),
            "start_sampler": self.starts.state(),
            # Drawn with sensor noise (recomputing would draw again); a plain dict, which loads weights-only.
            "observations": self._last_obs.clone().to_dict(),
        }

    def restore(self, state: dict) -> None:
        if state["clip_ids"].shape != (self.num_envs,):
            raise ValueError(f"a saved env state of {len(state['clip_ids'])} envs does not fit {self.num_envs} envs")
        self.worlds.load_state(state["worlds"])
        self.clock.clip_ids[:] = state["clip_ids"]
        self.clock.motion_time[:] = state["motion_time"]
        self.episode_length_buf[:] = state["episode_length"]
        self.action, self.prev_action = state["action"].clone(), state["prev_action"].clone()
        self._delayed = state["delayed"].clone()
        self.push_timer = state["push_timer"].clone()
        self.active[:] = state["active"]
        self._next_scheduled = state["next_scheduled"]
        self._episode_sums = {k: v.clone() for k, v in state["episode_sums"].items()}
        self.generator.set_state(state["generator"])
        if "start_sampler" in state:  # snapshots from before adaptive sampling carry none
            self.starts.load_state(state["start_sampler"])
        self.ref_next, self._clocks_moved = self.clock.reference(self.dt), False
        self._restored_obs = TensorDict(state["observations"], batch_size=[self.num_envs])

    def close(self) -> None:
        self.worlds.close()
