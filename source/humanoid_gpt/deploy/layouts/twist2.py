"""TWIST2's general motion-tracking student (amazon-far/TWIST2, MIT): one ONNX input ``input`` (B, 1432), one output
(B, 29), no metadata; recognised by that signature. Interface as its sim2sim script runs it
(``deploy_real/server_low_level_g1_sim.py`` and ``server_motion_lib.py`` of that repository):

- observation = current frame (127) + 10 past frames (oldest first, before the current one is appended) + the
  reference again (35); a frame = 35 reference values + 92 robot values;
- reference (the frame 0.02 s ahead): root linear velocity x, y and yaw rate, both in the reference root's own frame;
  root height; root roll, pitch; the 29 joint positions;
- robot: pelvis angular velocity (body frame) x 0.25; roll, pitch; joint positions minus its default pose; joint
  velocities x 0.05 with the four ankle entries zeroed; the previous raw action;
- action: target = default + clip(a, -10, 10) x 0.5; PD with its own gains, torques clipped to kp (N m) and the
  robot's effort limits. Its script runs PD at 1 kHz; the harness runs it at its own physics rate (MuJoCo's position
  servos, damping integrated implicitly): on the 28 windows of LAFAN1 subject 5, 200 Hz and 1 kHz give the same SR
  (85.7%) and MPKPE within 0.5 mm (docs/evidence/README.md, "Released trackers").

At an episode's first step the 10 past frames are copies of the current one, as its training environment fills
them. TWIST2 observes root velocity, never position: its path drifts by design, so compare it on heading-frame
errors and success.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.deploy.layouts.base import Layout, LayoutPolicy, OnnxSignature
from humanoid_gpt.robot.g1 import G1, Actuation
from humanoid_gpt.state import KinematicState

HISTORY = 10
REF_DIM = 35
FRAME_DIM = REF_DIM + 92
OBS_DIM = FRAME_DIM * (HISTORY + 1) + REF_DIM  # 1432
ACTION_CLIP = 10.0
ANKLES = [4, 5, 10, 11]  # left/right ankle pitch, roll in the G1 order

_LEG = (100, 100, 100, 150, 40, 40)
_ARM = (40, 40, 40, 40, 4, 4, 4)
KP = (*_LEG, *_LEG, 150, 150, 150, *_ARM, *_ARM)
_LEG_D = (2, 2, 2, 4, 2, 2)
_ARM_D = (5, 5, 5, 5, 0.2, 0.2, 0.2)
KD = (*_LEG_D, *_LEG_D, 4, 4, 4, *_ARM_D, *_ARM_D)
_LEG_Q = (-0.2, 0.0, 0.0, 0.4, -0.2, 0.0)
DEFAULT = (*_LEG_Q, *_LEG_Q, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0, 1.2, 0.0, 0.0, 0.0, 0.0, -0.4, 0.0, 1.2, 0.0, 0.0, 0.0)


def fits(sig: OnnxSignature) -> bool:
    ins, outs = list(sig.inputs.values()), list(sig.outputs.values())
    return len(ins) == 1 and ins[0][-1:] == (OBS_DIM,) and len(outs) == 1 and outs[0][-1:] == (29,)


def recognize(sig: OnnxSignature) -> bool:
    return fits(sig) and list(sig.inputs) == ["input"] and not sig.metadata


def actuation(path: Path, g1: G1) -> Actuation:
    effort = np.minimum(np.asarray(KP, dtype=float), g1.effort_limit)
    return Actuation("twist2", KP, KD, tuple(effort.tolist()), DEFAULT, (0.5,) * 29)


def reference_values(ref: KinematicState) -> torch.Tensor:
    """The 35 reference values of one frame."""
    q = ref.root_quat
    lin = R.quat_apply_inverse(q, ref.root_lin_vel)
    ang = R.quat_apply_inverse(q, ref.root_ang_vel)
    return torch.cat([lin[:, :2], ref.root_pos[:, 2:3], R.roll_pitch(q), ang[:, 2:3], ref.joint_pos], dim=-1)


def robot_values(robot: KinematicState, default: torch.Tensor, last_action: torch.Tensor) -> torch.Tensor:
    """The 92 robot values of one frame."""
    q = robot.root_quat
    joint_vel = robot.joint_vel * 0.05
    joint_vel[:, ANKLES] = 0.0
    ang = R.quat_apply_inverse(q, robot.root_ang_vel) * 0.25
    return torch.cat([ang, R.roll_pitch(q), robot.joint_pos - default, joint_vel, last_action], dim=-1)


class Twist2Policy(LayoutPolicy):
    """TWIST2's student in a harness env built with :func:`actuation` (actions about its default pose)."""

    def __init__(self, path: Path, env) -> None:
        from humanoid_gpt.deploy.runtime import ort_session

        super().__init__(env, 29)
        self.session = ort_session(path, threads=1, spinning=False)  # an MLP: one core; never spin beside physics
        self.input = self.session.get_inputs()[0].name
        self.history = torch.zeros(env.num_envs, HISTORY, FRAME_DIM)
        self.default = env.consts.default_joint_pos

    def __call__(self, obs) -> torch.Tensor:
        env = self.env
        start = self.starts()
        ref = reference_values(env.ref_next)
        frame = torch.cat([ref, robot_values(env.robot_state(), self.default, self.last_action)], dim=-1)
        self.history[start] = frame[start, None].expand(-1, HISTORY, -1)
        x = torch.cat([frame, self.history.flatten(1), ref], dim=-1).float().numpy()
        raw = torch.from_numpy(self.session.run(None, {self.input: x})[0]).float()
        self.history = torch.cat([self.history[:, 1:], frame[:, None]], dim=1)
        self.last_action = raw
        return raw.clamp(-ACTION_CLIP, ACTION_CLIP)


LAYOUT = Layout(
    name="twist2",
    summary="TWIST2 student: input 'input' (B, 1432), one output (B, 29), no metadata",
    recognize=recognize,
    fits=fits,
    actuation=actuation,
    task_settings={"action_relative_to_reference": False},
    make_policy=Twist2Policy,
)
