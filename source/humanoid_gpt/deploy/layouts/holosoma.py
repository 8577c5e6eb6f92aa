"""holosoma's whole-body-tracking export (amazon-far/holosoma, Apache-2.0): a policy trained on one motion, which it
carries inside the file. ONNX inputs ``obs`` (1, 154) and ``time_step`` (1, 1); outputs ``actions`` (1, 29) and the
embedded reference at that time step, ``joint_pos``, ``joint_vel`` (1, 29), ``ref_pos_xyz`` (1, 3),
``ref_quat_xyzw`` (1, 4); JSON metadata ``dof_names``, ``kp``, ``kd`` (and the URDF). Interface as its source runs it
(``holosoma/utils/inference_helpers.py`` exports it, ``holosoma_inference/policies/wbt.py`` runs it, the observation
terms are ``holosoma/managers/observation/terms/wbt.py``):

- the graph returns row ``min(time_step, N - 1)`` of its motion tables: time steps are 50 Hz control steps from the
  motion's first frame, and the clamp is how the file says where the motion ends (N frames);
- ``ref_pos_xyz`` / ``ref_quat_xyzw`` are the world pose of the motion's reference body, ``torso_link`` (not the
  pelvis);
- observation (154) = its six terms concatenated in sorted name order (both its training observation manager and
  its inference code sort them), all scales 1, no history: ``actions`` (the previous raw action, 29),
  ``base_ang_vel`` (pelvis, body frame, 3), ``dof_pos`` (joint positions minus its default pose, 29), ``dof_vel``
  (29), ``motion_command`` (the reference joint positions then velocities, 58), ``motion_ref_ori_b`` (the reference
  torso's orientation in the robot torso's frame: the first two columns of that rotation matrix, row by row, 6);
  joints in ``dof_names`` order;
- action: target = default + clip(a, -100, 100) x 1.0. The G1 tracking experiments set the action scale to 1.0 (not
  the locomotion 0.25 x effort / kp: the FastSAC actor's bounds inside the graph are the joint ranges about the
  default pose divided by that scale, and they equal the ranges); PD with the file's kp / kd at 200 Hz, torques
  clipped to the motor limits; default pose its ``g1_29dof`` config's.

Its deployment code removes the yaw of the robot and of the motion captured when the policy starts; an episode here
starts on the reference, where the two yaws are equal and the correction is the identity. That code also feeds the
reference of the previous call (one step behind its training); this follows training: the reference at the robot's
current time step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import humanoid_gpt.deploy.layouts.embedded as embedded
from humanoid_gpt import rotations as R
from humanoid_gpt.deploy.layouts.base import Layout, LayoutError, LayoutPolicy, OnnxSignature, onnx_signature
from humanoid_gpt.deploy.layouts.embedded import in_g1_order, joint_order
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1, KNEES_BENT_POSE, Actuation

OBSERVATION_TERMS = (
    ("actions", 29),
    ("base_ang_vel", 3),
    ("dof_pos", 29),
    ("dof_vel", 29),
    ("motion_command", 58),
    ("motion_ref_ori_b", 6),
)
"""Its observation terms in the order its exporter concatenates them (sorted by name)."""
OBS_DIM = sum(size for _, size in OBSERVATION_TERMS)  # 154
REF_BODY = "torso_link"
OUTPUT_SIZES = (29, 29, 29, 3, 4)  # actions, joint_pos, joint_vel, ref_pos_xyz, ref_quat_xyzw: the exporter's order
METADATA = ("dof_names", "kp", "kd")
ACTION_CLIP = 100.0
FPS = 50.0


def fits(sig: OnnxSignature) -> bool:
    ins, outs = list(sig.inputs.values()), list(sig.outputs.values())
    inputs_ok = len(ins) == 2 and {s[-1:] for s in ins} == {(1,), (OBS_DIM,)}
    return inputs_ok and [o[-1:] for o in outs] == [(n,) for n in OUTPUT_SIZES]


def recognize(sig: OnnxSignature) -> bool:
    names_ok = set(sig.inputs) == {"obs", "time_step"} and {"actions", "ref_quat_xyzw"} <= set(sig.outputs)
    return names_ok and all(k in sig.metadata for k in METADATA) and fits(sig)


def policy_joints(path: Path, g1: G1) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The G1 index of each of the policy's joints (``dof_names``, matched by name: a permuted order is mapped, a
    foreign name refused) and its kp, kd in the policy's order."""
    meta = onnx_signature(path).metadata
    values = {}
    for key in METADATA:
        if key not in meta:
            found = ", ".join(sorted(meta)) or "none"
            raise LayoutError(
                f"{path}: metadata key {key!r} missing (found: {found}); holosoma's exporter writes dof_names, kp and "
                "kd as JSON: use the file as exported, or a copy with that metadata"
            )
        try:
            values[key] = json.loads(meta[key])
        except json.JSONDecodeError as e:
            raise LayoutError(f"{path}: metadata {key!r} is not JSON ({e}); export the policy again") from e
    names = [str(n) for n in values["dof_names"]]
    order = joint_order(path, names, g1, "dof_names")
    gains = []
    for key in ("kp", "kd"):
        gain = np.asarray(values[key], dtype=float)
        if gain.shape != (len(names),) or not np.isfinite(gain).all() or (gain < 0).any():
            raise LayoutError(f"{path}: metadata {key!r} must hold {len(names)} finite gains >= 0, one per dof_name")
        gains.append(gain)
    return order, gains[0], gains[1]


def actuation(path: Path, g1: G1) -> Actuation:
    order, kp, kd = policy_joints(path, g1)
    default = tuple(KNEES_BENT_POSE.get(n, 0.0) for n in g1.joint_names)  # its g1_29dof default
    effort = tuple(g1.effort_limit.tolist())
    return Actuation(
        "holosoma", tuple(in_g1_order(order, kp)), tuple(in_g1_order(order, kd)), effort, default, (1.0,) * 29
    )


def reference_tables(path: Path) -> tuple[np.ndarray, ...]:
    """The embedded reference, (N, ...) each, read-only: joint_pos, joint_vel (the policy's joint order), torso
    position, torso quaternion (w, x, y, z)."""
    joint_pos, joint_vel, pos, quat_xyzw = embedded.reference_tables(path, "holosoma")
    quat = R.xyzw_to_wxyz(torch.from_numpy(np.array(quat_xyzw))).numpy()
    quat.flags.writeable = False
    return joint_pos, joint_vel, pos, quat


def embedded_reference(path: Path, g1: G1) -> MotionClip:
    """The motion inside the file as a G1 clip at 50 fps. The file gives the torso's pose: the pelvis is placed so
    that forward kinematics puts the torso there (the waist chain of holosoma's URDF is the MJCF's)."""
    order = policy_joints(path, g1)[0]
    joint_pos, _, torso_pos, torso_quat = reference_tables(path)
    source = {"source": "holosoma", "path": str(path)}
    return embedded.clip_from_body_pose(
        g1, path.stem, in_g1_order(order, joint_pos), REF_BODY, torso_pos, torso_quat, FPS, source
    )


class HolosomaPolicy(LayoutPolicy):
    """holosoma's policy in a harness env built with :func:`actuation`, on clips of its embedded reference (the
    whole motion, or any part of it: each clip is located in the motion). The graph's ``time_step`` is the env's clock
    in control steps from the motion's start, so its internal reference is the harness's."""

    def __init__(self, path: Path, env) -> None:
        super().__init__(env, 29)
        self.graph = embedded.MotionGraph(path)
        order, _, _ = policy_joints(path, env.g1)
        self.order = torch.tensor(order)
        joint_pos, joint_vel, _, torso_quat = (torch.tensor(x, dtype=torch.float32) for x in reference_tables(path))
        self.command = torch.cat([joint_pos, joint_vel], dim=-1)
        self.torso_quat = torso_quat
        self.default = env.consts.default_joint_pos[self.order]
        self.torso = list(env.cfg.keypoints).index(REF_BODY)
        self.offsets = _clip_offsets(path, env, in_g1_order(order, joint_pos.numpy()))

    def __call__(self, obs) -> torch.Tensor:
        env = self.env
        self.starts()
        robot = env.robot_state()
        k = embedded.time_steps(env, self.offsets, len(self.command))
        ori = embedded.relative_rotation_6d(
            robot.body_quat[:, self.torso].double(), self.torso_quat[k].double()
        ).float()
        x = torch.cat(
            [
                self.last_action,
                R.quat_apply_inverse(robot.root_quat, robot.root_ang_vel),
                robot.joint_pos[:, self.order] - self.default,
                robot.joint_vel[:, self.order],
                self.command[k],
                ori,
            ],
            dim=-1,
        ).numpy()
        raw = embedded.run_rows(self.graph, x, k)
        self.last_action = raw
        actions = torch.empty_like(raw)
        actions[:, self.order] = raw.clamp(-ACTION_CLIP, ACTION_CLIP)
        return actions


def _clip_offsets(path: Path, env, joint_pos: np.ndarray) -> torch.Tensor:
    """Where each of the env's clips starts in the embedded motion (frames); a clip that is not a part of it is
    refused: the policy tracks its own motion only."""
    offsets = embedded.locate_clips(env, joint_pos, FPS)
    for name, offset in zip(env.library.names, offsets, strict=True):
        if offset is None:
            raise LayoutError(
                f"{path}: clip {name!r} is not a part of the policy's embedded motion at {FPS:g} fps; a holosoma "
                "policy tracks only the motion inside its file: play it with `hgpt sim2sim eval --policy FILE` "
                "without --motions"
            )
    return torch.tensor(offsets)


LAYOUT = Layout(
    name="holosoma",
    summary="holosoma whole-body tracking: inputs 'obs' (1, 154) and 'time_step' (1, 1), outputs 'actions' (1, 29) "
    "and the embedded reference ('ref_quat_xyzw' ...), JSON metadata dof_names / kp / kd",
    recognize=recognize,
    fits=fits,
    actuation=actuation,
    task_settings={"action_relative_to_reference": False},
    make_policy=HolosomaPolicy,
    embedded_reference=embedded_reference,
)
