"""mjlab's and BeyondMimic's tracking exports (mujocolab/mjlab, Apache-2.0; HybridRobotics/whole_body_tracking, MIT):
one interface, read from the file. mjlab re-implements BeyondMimic (its ``tracking_env_cfg.py`` says so) and both
exporters write the same graph and metadata; they differ in the joint order (BeyondMimic: Isaac Lab's breadth-first
order; mjlab: the MJCF's) and in a few metadata keys, all handled by name here:

- the motion exporter (``_OnnxMotionPolicyExporter`` / mjlab's ``_OnnxMotionModel``): inputs ``obs`` (1, D) and
  ``time_step`` (1, 1); outputs ``actions`` (1, 29) and the trained motion's row ``min(time_step, N - 1)``:
  ``joint_pos``, ``joint_vel`` (1, 29, the policy's joint order), ``body_pos_w``, ``body_quat_w`` (w, x, y, z),
  ``body_lin_vel_w``, ``body_ang_vel_w`` (1, B, .) for the B ``body_names``. The time step is one per control step
  (50 Hz). Without ``--motions`` the harness plays that motion; with ``--motions`` it feeds our clips instead;
- the plain exporter (``_OnnxPolicyExporter``): input ``obs``, output ``actions``; a tracking policy exported so runs
  on our clips. mjlab's velocity (locomotion) policies go through it too: they follow a velocity command, not a
  reference motion, and are refused (``command_names`` without ``motion``);
- metadata, comma-separated strings with three decimals: ``joint_names``, ``joint_stiffness``, ``joint_damping``,
  ``default_joint_pos``, ``action_scale`` (one per joint), ``command_names``, ``observation_names``,
  ``anchor_body_name``, ``body_names``; mjlab >= 1.x adds ``observation_terms_scale`` / ``_clip`` /
  ``_history_length`` (a per-term value, ``;`` inside an entry), BeyondMimic ``observation_history_lengths``;
- observation (``mdp/observations.py`` of either): the terms of ``observation_names`` concatenated in that order:
  ``command`` (the reference joint positions then velocities, 58), ``motion_anchor_pos_b`` (the reference anchor's
  position in the robot anchor's frame, 3), ``motion_anchor_ori_b`` (their relative rotation matrix's first two
  columns, flattened row by row: m00, m01, m10, m11, m20, m21), ``base_lin_vel``, ``base_ang_vel`` (the pelvis',
  body frame), ``joint_pos`` (minus the default pose), ``joint_vel``, ``actions`` (the previous raw action),
  ``projected_gravity``; the anchor is ``anchor_body_name`` (the torso on the G1), the reference is the frame at the
  robot's own time step;
- action: target = default + a x action_scale; PD with the file's gains at 200 Hz physics, torques clipped to the
  G1's motor limits (the exporters write no limits: their G1 configs use the same motors).

mjlab >= 1.x reads ``base_lin_vel`` from an IMU site 9 cm from the pelvis origin; the pelvis origin's velocity is
used here (their difference, |w x r|, is well inside the training noise of +-0.5 m/s on that term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

import humanoid_gpt.deploy.layouts.embedded as embedded
from humanoid_gpt import rotations as R
from humanoid_gpt.deploy.layouts.base import Layout, LayoutError, LayoutPolicy, OnnxSignature, onnx_signature
from humanoid_gpt.deploy.layouts.embedded import in_g1_order, joint_order
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1, Actuation

FPS = 50.0
METADATA = (
    "joint_names",
    "joint_stiffness",
    "joint_damping",
    "default_joint_pos",
    "action_scale",
    "observation_names",
)
"""What BeyondMimic's and mjlab's exporters both write (comma-separated strings); the checker reads them too."""
MOTION_OUTPUTS = ("actions", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
MOTION_SIZES = (29, 29, 29, 3, 4, 3, 3)
TERM_SIZES = {
    "command": 58,
    "motion_anchor_pos_b": 3,
    "motion_anchor_ori_b": 6,
    "base_lin_vel": 3,
    "base_ang_vel": 3,
    "joint_pos": 29,
    "joint_vel": 29,
    "actions": 29,
    "projected_gravity": 3,
}
"""Sizes of the G1 tracking task's observation terms (BeyondMimic / mjlab ``observation_names``)."""


def csv_values(value: str) -> list[str]:
    """A metadata list: the exporters' comma-separated string (some tools write JSON lists)."""
    import json

    value = value.strip()
    if value.startswith("["):
        return [str(v) for v in json.loads(value)]
    return [v.strip() for v in value.split(",") if v.strip()]


# Recognising the file -----------------------------------------------------------------------------------------------


def _has_motion(sig: OnnxSignature) -> bool:
    return list(sig.outputs) == list(MOTION_OUTPUTS) and set(sig.inputs) == {"obs", "time_step"}


def fits(sig: OnnxSignature) -> bool:
    ins, outs = list(sig.inputs.values()), list(sig.outputs.values())
    if len(ins) == 1:  # the plain exporter
        return len(ins[0]) == 2 and len(outs) == 1 and outs[0][-1:] == (29,)
    inputs_ok = len(ins) == 2 and sorted(len(s) for s in ins) == [2, 2] and (1,) in {s[-1:] for s in ins}
    return inputs_ok and [o[-1:] for o in outs] == [(n,) for n in MOTION_SIZES]


def recognize(sig: OnnxSignature) -> bool:
    plain = list(sig.inputs) == ["obs"] and list(sig.outputs) == ["actions"]
    return (plain or _has_motion(sig)) and all(k in sig.metadata for k in METADATA) and fits(sig)


# Reading the file's interface ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    """A file's interface, per joint in the policy's order (``order``: the G1 index of each of its joints)."""

    path: Path
    joint_names: list[str]
    order: list[int]
    kp: np.ndarray
    kd: np.ndarray
    default: np.ndarray
    scale: np.ndarray
    terms: list[tuple[str, int]]
    term_scales: list[np.ndarray]
    term_clips: list[tuple[float, float]]
    anchor: str
    body_names: list[str]
    obs_dim: int
    motion: bool
    """The file carries its motion (inputs ``obs`` and ``time_step``, the reference outputs)."""


def _floats(path: Path, meta: dict, key: str, n: int) -> np.ndarray:
    try:
        values = np.array([float(v) for v in csv_values(meta[key])])
    except ValueError as e:
        raise LayoutError(f"{path}: metadata {key!r} is not a list of numbers ({e}); export the policy again") from e
    if values.shape != (n,) or not np.isfinite(values).all():
        raise LayoutError(f"{path}: metadata {key!r} holds {len(values)} values for {n} joint_names; export again")
    return values


def _per_term(path: Path, meta: dict, key: str, n: int) -> list[list[float]] | None:
    """A per-term list (mjlab >= 1.x: ``;`` joins the values of one term); None when the file has none."""
    if key not in meta:
        return None
    entries = csv_values(meta[key])
    if len(entries) != n:
        raise LayoutError(f"{path}: metadata {key!r} has {len(entries)} entries for {n} observation_names")
    return [[float(v) for v in e.split(";")] for e in entries]


def _terms(path: Path, meta: dict, obs_dim: int) -> tuple[list[tuple[str, int]], list, list]:
    names = csv_values(meta["observation_names"])
    unknown = [n for n in names if n not in TERM_SIZES]
    if unknown:
        raise LayoutError(
            f"{path}: observation term(s) {unknown} are not G1 tracking terms (found: {', '.join(names)}); known: "
            f"{', '.join(TERM_SIZES)}. The harness builds only these; export a tracking policy with them"
        )
    terms = [(n, TERM_SIZES[n]) for n in names]
    # Before the size: a stacked history multiplies the sizes, and the refusal should name it.
    keys = ("observation_terms_history_length", "observation_history_lengths")
    history = [csv_values(meta[k]) for k in keys if k in meta and len(csv_values(meta[k])) == len(names)]
    if history and any(float(h.split(";")[0]) > 1 for h in history[0]):
        raise LayoutError(
            f"{path}: observation history lengths {history[0]}: stacked histories are not built here; export a "
            "policy without observation history"
        )
    total = sum(s for _, s in terms)
    if total != obs_dim:
        raise LayoutError(
            f"{path}: observation_names ({', '.join(names)}) make {total} values, the graph's obs input takes "
            f"{obs_dim}; the names or their order differ from the exported task: export again"
        )
    scales = _per_term(path, meta, "observation_terms_scale", len(names)) or [[1.0]] * len(names)
    clips = _per_term(path, meta, "observation_terms_clip", len(names)) or [[-math.inf, math.inf]] * len(names)
    return terms, [np.asarray(s, dtype=np.float32) for s in scales], [(c[0], c[-1]) for c in clips]


def read_interface(path: Path, g1: G1) -> Interface:
    """The file's interface, every field checked, refusals naming the file, the field and the fix."""
    sig = onnx_signature(path)
    meta = sig.metadata
    missing = [k for k in METADATA if k not in meta]
    if missing:
        raise LayoutError(
            f"{path}: metadata {missing} missing (found: {', '.join(sorted(meta)) or 'none'}); mjlab's and "
            f"BeyondMimic's exporters write {', '.join(METADATA)}: use the file as exported"
        )
    commands = csv_values(meta.get("command_names", "motion"))
    if "motion" not in commands:
        raise LayoutError(
            f"{path}: command_names {commands} has no 'motion' term: a velocity (locomotion) policy follows a "
            "velocity command, not a reference motion, and the harness scores trackers; export a tracking policy"
        )
    names = csv_values(meta["joint_names"])
    order = joint_order(path, names, g1, "joint_names")
    kp, kd, default, scale = (
        _floats(path, meta, k, len(names))
        for k in ("joint_stiffness", "joint_damping", "default_joint_pos", "action_scale")
    )
    obs_dim = next(s[-1] for n, s in sig.inputs.items() if n == "obs" or len(sig.inputs) == 1)
    terms, term_scales, term_clips = _terms(path, meta, obs_dim)
    anchor = meta.get("anchor_body_name", "torso_link")
    body_names = csv_values(meta.get("body_names", anchor))
    if anchor not in body_names or anchor not in g1.keypoint_names:
        raise LayoutError(
            f"{path}: anchor_body_name {anchor!r} must be one of body_names ({len(body_names)}) and a G1 keypoint "
            f"({', '.join(g1.keypoint_names)}); export a G1 tracking policy"
        )
    motion = _has_motion(sig)
    if motion and sig.outputs["body_pos_w"][-2:-1] not in ((len(body_names),), (None,)):
        raise LayoutError(f"{path}: body_pos_w holds {sig.outputs['body_pos_w']}, body_names {len(body_names)}")
    return Interface(
        path, names, order, kp, kd, default, scale, terms, term_scales, term_clips, anchor, body_names, obs_dim, motion
    )


def actuation(path: Path, g1: G1) -> Actuation:
    f = read_interface(path, g1)
    g = lambda x: tuple(in_g1_order(f.order, x).tolist())  # noqa: E731
    return Actuation("mjlab", g(f.kp), g(f.kd), tuple(g1.effort_limit.tolist()), g(f.default), g(f.scale))


# The embedded motion ------------------------------------------------------------------------------------------------


class MotionTables(NamedTuple):
    """The motion inside a file, (N, ...) each: joints in the policy's order, bodies in ``body_names`` order,
    quaternions w, x, y, z as the file stores them."""

    joint_pos: np.ndarray
    joint_vel: np.ndarray
    body_pos: np.ndarray
    body_quat: np.ndarray
    body_lin_vel: np.ndarray
    body_ang_vel: np.ndarray


def motion_tables(path: Path) -> MotionTables:
    return MotionTables(*embedded.reference_tables(path, "mjlab/BeyondMimic"))


def embedded_reference(path: Path, g1: G1) -> MotionClip:
    """The motion inside the file as a G1 clip at 50 fps (one frame per control step), the pelvis placed from the
    anchor body's pose by forward kinematics."""
    f = read_interface(path, g1)
    if not f.motion:
        raise LayoutError(f"{path}: a plain export carries no motion of its own; pass --motions FILES")
    t = motion_tables(path)
    a = f.body_names.index(f.anchor)
    source = {"source": "mjlab/BeyondMimic export", "path": str(path)}
    return embedded.clip_from_body_pose(
        g1, path.stem, in_g1_order(f.order, t.joint_pos), f.anchor, t.body_pos[:, a], t.body_quat[:, a], FPS, source
    )


# The observation ----------------------------------------------------------------------------------------------------


class Reference(NamedTuple):
    """The reference one observation needs: joints in the policy's order, the anchor's world pose (w, x, y, z)."""

    joint_pos: torch.Tensor
    joint_vel: torch.Tensor
    anchor_pos: torch.Tensor
    anchor_quat: torch.Tensor


class Robot(NamedTuple):
    """The robot state one observation needs: joints in the policy's order minus its default pose, the anchor's
    world pose, the pelvis' orientation and world velocities."""

    joint_pos_rel: torch.Tensor
    joint_vel: torch.Tensor
    anchor_pos: torch.Tensor
    anchor_quat: torch.Tensor
    root_quat: torch.Tensor
    root_lin_vel: torch.Tensor
    root_ang_vel: torch.Tensor


def observation_terms(robot: Robot, ref: Reference, last_action: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every G1 tracking term, by name, as their ``mdp`` computes it."""
    gravity = torch.tensor([0.0, 0.0, -1.0], dtype=robot.root_quat.dtype).expand_as(robot.root_lin_vel)
    return {
        "command": torch.cat([ref.joint_pos, ref.joint_vel], dim=-1),
        "motion_anchor_pos_b": R.quat_apply_inverse(robot.anchor_quat, ref.anchor_pos - robot.anchor_pos),
        "motion_anchor_ori_b": embedded.relative_rotation_6d(robot.anchor_quat, ref.anchor_quat),
        "base_lin_vel": R.quat_apply_inverse(robot.root_quat, robot.root_lin_vel),
        "base_ang_vel": R.quat_apply_inverse(robot.root_quat, robot.root_ang_vel),
        "joint_pos": robot.joint_pos_rel,
        "joint_vel": robot.joint_vel,
        "actions": last_action,
        "projected_gravity": R.quat_apply_inverse(robot.root_quat, gravity),
    }


def assemble(f: Interface, terms: dict[str, torch.Tensor]) -> np.ndarray:
    """The observation vector: the file's terms in its order, each scaled and clipped as its metadata says."""
    parts = []
    for (name, _), scale, (lo, hi) in zip(f.terms, f.term_scales, f.term_clips, strict=True):
        parts.append((terms[name].float() * torch.from_numpy(scale)).clamp(lo, hi))
    return torch.cat(parts, dim=-1).numpy()


def reference_robot(f: Interface, t: MotionTables) -> tuple[Robot, Reference]:
    """The robot on its reference, frame by frame (the state a perfect tracker would be in) and that reference."""
    x = lambda a: torch.from_numpy(np.array(a)).float()  # noqa: E731
    a, root = f.body_names.index(f.anchor), f.body_names.index("pelvis") if "pelvis" in f.body_names else None
    if root is None:
        raise LayoutError(f"{f.path}: body_names lack 'pelvis'; the base velocity terms cannot be replayed")
    ref = Reference(x(t.joint_pos), x(t.joint_vel), x(t.body_pos[:, a]), x(t.body_quat[:, a]))
    robot = Robot(
        x(t.joint_pos - f.default),
        x(t.joint_vel),
        x(t.body_pos[:, a]),
        x(t.body_quat[:, a]),
        x(t.body_quat[:, root]),
        x(t.body_lin_vel[:, root]),
        x(t.body_ang_vel[:, root]),
    )
    return robot, ref


# The policy ---------------------------------------------------------------------------------------------------------


class MjlabPolicy(LayoutPolicy):
    """An mjlab / BeyondMimic tracker in a harness env built with :func:`actuation`. Clips that are parts of the
    file's motion are tracked on the file's own tables (``time_step`` = the clip's offset plus the env's clock in
    control steps); other clips (``--motions``) are fed from the env's reference, in the policy's joint order."""

    def __init__(self, path: Path, env) -> None:
        super().__init__(env, 29)
        self.f = f = read_interface(path, env.g1)
        self.graph = embedded.MotionGraph(path)
        self.order = torch.tensor(f.order)
        self.default = torch.from_numpy(f.default).float()
        self.anchor = list(env.cfg.keypoints).index(f.anchor)
        self.tables, self.offsets = None, None
        if f.motion:
            t = motion_tables(path)
            offsets = embedded.locate_clips(env, in_g1_order(f.order, t.joint_pos), FPS)
            if None not in offsets:
                a = f.body_names.index(f.anchor)
                x = lambda v: torch.from_numpy(np.array(v)).float()  # noqa: E731
                self.tables = Reference(x(t.joint_pos), x(t.joint_vel), x(t.body_pos[:, a]), x(t.body_quat[:, a]))
                self.offsets = torch.tensor(offsets)

    def reference(self) -> tuple[Reference, torch.Tensor]:
        """The reference at each env's current time step, and the time step fed to the graph."""
        env = self.env
        if self.tables is not None:
            k = embedded.time_steps(env, self.offsets, len(self.tables.joint_pos))
            return Reference(*(v[k] for v in self.tables)), k
        ref = env.clock.reference(0.0)
        k = torch.round(env.clock.motion_time / env.dt).long()
        p = self.order
        anchor_pos, anchor_quat = ref.body_pos[:, self.anchor], ref.body_quat[:, self.anchor]
        return Reference(ref.joint_pos[:, p], ref.joint_vel[:, p], anchor_pos, anchor_quat), k

    def __call__(self, obs) -> torch.Tensor:
        self.starts()
        s = self.env.robot_state()
        ref, k = self.reference()
        robot = Robot(
            s.joint_pos[:, self.order] - self.default,
            s.joint_vel[:, self.order],
            s.body_pos[:, self.anchor],
            s.body_quat[:, self.anchor],
            s.root_quat,
            s.root_lin_vel,
            s.root_ang_vel,
        )
        x = assemble(self.f, observation_terms(robot, ref, self.last_action))
        raw = embedded.run_rows(self.graph, x, k)
        self.last_action = raw
        actions = torch.empty_like(raw)
        actions[:, self.order] = raw
        return actions


LAYOUT = Layout(
    name="mjlab",
    summary="mjlab / BeyondMimic tracking: inputs 'obs' (1, D) and 'time_step' (1, 1), outputs 'actions' (1, 29) "
    "and the embedded motion ('joint_pos' ... 'body_ang_vel_w'), or 'obs' -> 'actions' alone; comma-separated "
    f"metadata {', '.join(METADATA)}",
    recognize=recognize,
    fits=fits,
    actuation=actuation,
    task_settings={"action_relative_to_reference": False},
    make_policy=MjlabPolicy,
    embedded_reference=embedded_reference,
)
