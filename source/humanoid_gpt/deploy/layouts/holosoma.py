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

import functools
import json
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.deploy.layouts import Layout, LayoutError, LayoutPolicy, OnnxSignature, onnx_signature
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.kinematics import forward_kinematics, quat_to_matrix
from humanoid_gpt.robot.g1 import G1, Actuation

OBS_DIM = 154
REF_BODY = "torso_link"
OUTPUT_SIZES = (29, 29, 29, 3, 4)  # actions, joint_pos, joint_vel, ref_pos_xyz, ref_quat_xyzw: the exporter's order
METADATA = ("dof_names", "kp", "kd")
ACTION_CLIP = 100.0
FPS = 50.0
DEFAULT = {
    **{
        f"{side}_{joint}_joint": value
        for side in ("left", "right")
        for joint, value in (("hip_pitch", -0.312), ("knee", 0.669), ("ankle_pitch", -0.363), ("shoulder_pitch", 0.2))
        + (("elbow", 0.6),)
    },
    "left_shoulder_roll_joint": 0.2,
    "right_shoulder_roll_joint": -0.2,
}
"""holosoma's G1 default pose by joint name (``default_joint_angles`` of its ``g1_29dof`` robot); other joints 0."""


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
    missing, unknown = sorted(set(g1.joint_names) - set(names)), sorted(set(names) - set(g1.joint_names))
    if missing or unknown or len(names) != g1.num_joints:
        raise LayoutError(
            f"{path}: metadata dof_names ({len(names)} names) are not the G1's 29 joints: missing {missing}, unknown "
            f"{unknown}; it must be a policy for the 29-DoF G1 with the MJCF's joint names"
        )
    gains = []
    for key in ("kp", "kd"):
        gain = np.asarray(values[key], dtype=float)
        if gain.shape != (len(names),) or not np.isfinite(gain).all() or (gain < 0).any():
            raise LayoutError(f"{path}: metadata {key!r} must hold {len(names)} finite gains >= 0, one per dof_name")
        gains.append(gain)
    return [g1.joint_names.index(n) for n in names], gains[0], gains[1]


def _in_g1_order(order: list[int], values: np.ndarray) -> np.ndarray:
    """Per-joint values (..., 29) from the policy's joint order to the G1's."""
    out = np.empty_like(values)
    out[..., order] = values
    return out


def actuation(path: Path, g1: G1) -> Actuation:
    order, kp, kd = policy_joints(path, g1)
    default = tuple(DEFAULT.get(n, 0.0) for n in g1.joint_names)
    effort = tuple(g1.effort_limit.tolist())
    return Actuation(
        "holosoma", tuple(_in_g1_order(order, kp)), tuple(_in_g1_order(order, kd)), effort, default, (1.0,) * 29
    )


def motion_length(path: Path) -> int:
    """N, the frames of the embedded motion: the rows of the tables the graph gathers its reference outputs from."""
    from onnx import numpy_helper

    from humanoid_gpt.deploy.onnx import load_onnx_graph

    graph = load_onnx_graph(path, LayoutError).graph
    tables = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tables[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).shape
    producers = {out: node for node in graph.node for out in node.output}
    rows = set()
    for output in graph.output[1:]:
        node = producers.get(output.name)
        shape = tables.get(node.input[0]) if node is not None and node.op_type == "Gather" else None
        rows.add(shape[0] if shape else None)
    if len(rows) != 1 or None in rows:
        raise LayoutError(
            f"{path}: cannot tell the embedded motion's length (its reference outputs are not gathered from one "
            "table, as holosoma's exporter writes them); export the policy with holosoma's exporter"
        )
    return int(rows.pop())


class _Graph:
    """The file's graph on one thread: its inputs told apart by size, its outputs in the exporter's order."""

    def __init__(self, path: Path) -> None:
        from humanoid_gpt.deploy.runtime import ort_session

        self.session = ort_session(path, threads=1, spinning=False)  # an MLP: one core; never spin beside physics
        inputs = {i.shape[-1]: i.name for i in self.session.get_inputs()}
        self.obs, self.time = inputs[OBS_DIM], inputs[1]

    def run(self, obs: np.ndarray, time_step: int) -> list[np.ndarray]:
        feeds = {self.obs: obs.reshape(1, OBS_DIM).astype(np.float32), self.time: np.array([[time_step]], np.float32)}
        return [y[0] for y in self.session.run(None, feeds)]


def reference_tables(path: Path) -> tuple[np.ndarray, ...]:
    """The embedded reference, (N, ...) each, read-only: joint_pos, joint_vel (the policy's joint order), torso
    position, torso quaternion (w, x, y, z). Read by running the graph at every time step (a zero observation: the
    reference does not depend on it); kept for the file's version, as the harness and the policy both need it."""
    stat = path.stat()
    return _reference_tables(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _reference_tables(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, ...]:
    graph, zero = _Graph(Path(path)), np.zeros(OBS_DIM, np.float32)
    rows = [graph.run(zero, t)[1:] for t in range(motion_length(Path(path)))]
    joint_pos, joint_vel, pos, quat_xyzw = (np.stack(col).astype(np.float64) for col in zip(*rows, strict=True))
    tables = (joint_pos, joint_vel, pos, R.xyzw_to_wxyz(torch.from_numpy(quat_xyzw)).numpy())
    for table in tables:
        table.flags.writeable = False
    return tables


def embedded_reference(path: Path, g1: G1) -> MotionClip:
    """The motion inside the file as a G1 clip at 50 fps. The file gives the torso's pose: the pelvis is placed so
    that forward kinematics puts the torso there (the waist chain of holosoma's URDF is the MJCF's)."""
    order = policy_joints(path, g1)[0]
    joint_pos, _, torso_pos, torso_quat = reference_tables(path)
    joint_pos = _in_g1_order(order, joint_pos)
    n = len(joint_pos)
    qpos = np.concatenate([np.zeros((n, 3)), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), joint_pos], axis=1)
    local = forward_kinematics(g1, qpos, bodies=(REF_BODY,))  # the torso in the pelvis frame
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    root_quat = R.quat_normalize(R.quat_mul(t(torso_quat), R.quat_conjugate(t(local.quat[:, 0]))))
    root_pos = t(torso_pos) - R.quat_apply(root_quat, t(local.pos[:, 0]))
    provenance = {"source": "holosoma", "path": str(path), "tags": ["embedded reference"]}
    return MotionClip(path.stem, FPS, root_pos.numpy(), root_quat.numpy(), joint_pos, provenance)


class HolosomaPolicy(LayoutPolicy):
    """holosoma's policy in a harness env built with :func:`actuation`, on clips of its embedded reference (the
    whole motion, or any part of it: each clip is located in the motion). The graph's ``time_step`` is the env's clock
    in control steps from the motion's start, so its internal reference is the harness's."""

    def __init__(self, path: Path, env) -> None:
        super().__init__(env, 29)
        self.graph = _Graph(path)
        order, _, _ = policy_joints(path, env.g1)
        self.order = torch.tensor(order)
        joint_pos, joint_vel, _, torso_quat = (torch.tensor(x, dtype=torch.float32) for x in reference_tables(path))
        self.command = torch.cat([joint_pos, joint_vel], dim=-1)
        self.torso_quat = torso_quat
        self.default = env.consts.default_joint_pos[self.order]
        self.torso = list(env.cfg.keypoints).index(REF_BODY)
        self.offsets = _clip_offsets(path, env, _in_g1_order(order, joint_pos.numpy()))

    def __call__(self, obs) -> torch.Tensor:
        env = self.env
        self.starts()
        robot = env.robot_state()
        steps = torch.round(env.clock.motion_time / env.dt).long()
        k = (self.offsets[env.clock.clip_ids] + steps).clamp(max=len(self.command) - 1)
        rel = R.quat_mul(R.quat_conjugate(robot.body_quat[:, self.torso]), self.torso_quat[k])
        ori = torch.from_numpy(quat_to_matrix(rel.double().numpy())[..., :2].reshape(-1, 6)).float()
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
        raw = torch.from_numpy(np.stack([self.graph.run(x[i], int(k[i]))[0] for i in range(len(x))])).float()
        self.last_action = raw
        actions = torch.empty_like(raw)
        actions[:, self.order] = raw.clamp(-ACTION_CLIP, ACTION_CLIP)
        return actions


def _clip_offsets(path: Path, env, joint_pos: np.ndarray) -> torch.Tensor:
    """Where each of the env's clips starts in the embedded motion (frames); a clip that is not a part of it is
    refused: the policy tracks its own motion only."""
    lib, offsets = env.library, []
    for c, name in enumerate(lib.names):
        n, fps = int(lib.num_frames[c]), float(lib.fps[c])
        clip = lib.frames(torch.full((n,), c), torch.arange(n, dtype=torch.float64) / fps).joint_pos.double().numpy()
        # The library reads frames at float32 times: 1e-3 rad absorbs that, and no other motion comes this close.
        close = lambda a, b: np.abs(a - b).max() < 1e-3  # noqa: E731
        starts = [
            s
            for s in np.flatnonzero(np.abs(joint_pos - clip[0]).max(-1) < 1e-3)
            if np.isclose(fps, FPS) and s + n <= len(joint_pos) and close(joint_pos[s : s + n], clip)
        ]
        if not starts:
            raise LayoutError(
                f"{path}: clip {name!r} is not a part of the policy's embedded motion at {FPS:g} fps; a holosoma "
                "policy tracks only the motion inside its file: play it with `hgpt sim2sim eval --policy FILE` "
                "without --motions"
            )
        offsets.append(int(starts[0]))
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
