"""The robot side of teleop: the G1 in MuJoCo (:class:`SimulatedG1`) driven by the streaming policy through the
Unitree low-level command, and the seconds each stage of a control tick takes (:class:`StageTimes`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.robot.g1 import G1


@dataclass
class StageTimes:
    """Seconds spent per control tick in each stage."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            k: {"p50_ms": float(np.percentile(v, 50) * 1e3), "p99_ms": float(np.percentile(v, 99) * 1e3), "n": len(v)}
            for k, v in self.samples.items()
            if v
        }


class SimulatedG1:
    """The G1 in MuJoCo driven by a streaming student ONNX following a live reference (G1 qpos frames), through the
    Unitree low-level command: each motor's kp, kd, q, dq and tau become its actuator's PD law, so the damping
    command damps here as on the robot."""

    def __init__(self, g1: G1, policy: str | Path, mode_machine: int = 0) -> None:
        import mujoco
        import torch

        from humanoid_gpt.deploy.runtime import OnnxStream
        from humanoid_gpt.mdp.config import RobotTensors, TrackingConfig

        self.g1, self.mode_machine = g1, mode_machine
        self.stream = OnnxStream(policy)
        meta = self.stream.meta
        self.relative = bool(meta["action_relative_to_reference"])
        self.dt = float(meta["control_dt"])
        physics_dt = float(meta.get("physics_dt", 0.005))
        self.decimation = max(1, round(self.dt / physics_dt))
        self.model = g1.model(actuators="position", timestep=physics_dt)
        self.data = mujoco.MjData(self.model)
        self.consts = RobotTensors.build(g1, TrackingConfig())
        self.action = torch.zeros(1, g1.num_joints)
        self.falls = 0
        self.damped = 0  # control ticks that sent the damping command
        self.refused_run = 0  # policy actions refused in a row
        self.last_refusal: str | None = None
        self.last_cmd = None
        self._prev_ref: np.ndarray | None = None

    def reset(self, qpos: np.ndarray) -> None:
        import mujoco

        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        mujoco.mj_forward(self.model, self.data)
        self.stream.reset()
        self.action.zero_()
        self._prev_ref = None

    def _state(self, qpos, qvel=None, prev=None):
        import torch

        from humanoid_gpt import rotations as R
        from humanoid_gpt.state import KinematicState

        q = torch.as_tensor(np.asarray(qpos), dtype=torch.float32)[None]
        if qvel is not None:  # the robot: MuJoCo's free joint angular velocity is in the body frame
            v = torch.as_tensor(np.asarray(qvel), dtype=torch.float32)[None]
            lin, ang, joint_vel = v[:, :3], R.quat_apply(q[:, 3:7], v[:, 3:6]), v[:, 6:]
        else:  # the reference: differences from the previous reference frame
            p = q if prev is None else torch.as_tensor(prev, dtype=torch.float32)[None]
            lin = (q[:, :3] - p[:, :3]) / self.dt
            ang = R.angular_velocity(torch.cat([p[:, 3:7], q[:, 3:7]]), self.dt)[-1:]
            joint_vel = (q[:, 7:] - p[:, 7:]) / self.dt
        empty3, empty4 = torch.zeros(1, 0, 3), torch.zeros(1, 0, 4)
        return KinematicState(q[:, 7:], joint_vel, q[:, :3], q[:, 3:7], lin, ang, empty3, empty4, empty3, empty3)

    def send(self, cmd) -> None:
        """Apply a :class:`~humanoid_gpt.deploy.unitree.LowCmd` as the motors would: force = kp (q - q_now) +
        kd (dq - dq_now) + tau per enabled motor (clipped to the effort limit by the actuator), none when disabled."""
        from humanoid_gpt.deploy.unitree import MOTOR_ENABLE

        for i, m in enumerate(cmd.motor_cmd[: self.g1.num_joints]):
            on = m.mode == MOTOR_ENABLE
            kp, kd = (m.kp, m.kd) if on else (0.0, 0.0)
            self.model.actuator_gainprm[i, 0] = kp
            self.model.actuator_biasprm[i, :3] = [(m.tau + kd * m.dq) if on else 0.0, -kp, -kd]
            self.data.ctrl[i] = m.q
        self.last_cmd = cmd

    def damp(self, reason: str) -> None:
        """Send the damping command (zero stiffness: the robot sinks, slowed), counting why."""
        from humanoid_gpt.deploy.unitree import damping_cmd

        self.send(damping_cmd(self.g1, self.mode_machine))
        self.damped += 1
        self.last_refusal = reason

    def tick(self, ref_qpos: np.ndarray, times: StageTimes) -> None:
        """One control step towards the reference pose ``ref_qpos`` (36,): observe, act, command, simulate. An
        action the command builder refuses (not finite, wrong size) sends the damping command instead and restarts
        the policy's history (a NaN in its cache would poison every later step)."""
        import mujoco
        import torch

        from humanoid_gpt.deploy.unitree import low_cmd
        from humanoid_gpt.mdp.observations import student_observation

        start = time.perf_counter()
        robot = self._state(self.data.qpos, self.data.qvel)
        ref = self._state(ref_qpos, prev=self._prev_ref)
        obs = student_observation(robot, ref, self.action, self.consts)
        t1 = time.perf_counter()
        action = self.stream.step(obs.numpy())
        t2 = time.perf_counter()
        base = ref_qpos[7:] if self.relative else None
        try:
            cmd = low_cmd(self.g1, np.asarray(action, dtype=np.float64).reshape(-1), self.mode_machine, base)
        except ValueError as e:
            self.damp(f"policy action refused: {e}")
            self.refused_run += 1
            self.stream.reset()
            self.action.zero_()
        else:
            self.refused_run = 0
            self.action = torch.from_numpy(np.asarray(action, dtype=np.float32).reshape(1, -1))
            self.send(cmd)
        t3 = time.perf_counter()
        for _ in range(self.decimation):
            mujoco.mj_step(self.model, self.data)
        t4 = time.perf_counter()
        times.add("observe", t1 - start)
        times.add("policy", t2 - t1)
        times.add("command", t3 - t2)
        times.add("physics", t4 - t3)
        self._prev_ref = np.asarray(ref_qpos, dtype=np.float64)
        if self.data.qpos[2] < 0.35 or not np.isfinite(self.data.qpos).all():  # fell: start again at the reference
            self.falls += 1
            self.reset(ref_qpos)
