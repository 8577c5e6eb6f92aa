"""Sim2sim parity check of a tracking policy file against the robot model, before it goes near hardware
(``hgpt sim2sim check POLICY.onnx``; docs/architecture.md, stage 5 and "The G1 facts the code rests on").

The file's metadata is read, ours (``humanoid_gpt.onnx``) or the BeyondMimic / mjlab exporter's (``joint_names``,
``joint_stiffness``, ``joint_damping``, ``default_joint_pos``, ``action_scale``, ``observation_names`` as
comma-separated strings), and compared item by item with the robot (:func:`humanoid_gpt.robot.load_g1`): joint order
by name, kp and kd against the armature formula, effort limits and action scale, default pose, control and physics
rates, quaternion order, observation size and layout. Each item is ok, or a mismatch with its fix.

Then a dynamic check: the policy tracks a slow standing reference (the default pose, arms swinging slowly) in the
MuJoCo harness for a few seconds. Our students get the student observation; a foreign policy's observation layout is
unknown here, so its dynamic check is reported as needing our layout. When the policy falls, the usual deployment
mistakes are tried in turn (Isaac Lab's breadth-first joint order instead of the G1's; kp and kd from the file,
swapped or scaled; another control rate) and the first that makes it stand is reported as the likely fix.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.layouts import mjlab as mjlab_layout
from humanoid_gpt.deploy.onnx import (
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    OnnxExternalDataError,
    OnnxMetadataError,
    load_onnx_graph,
    read_onnx_metadata,
)
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1

BEYONDMIMIC_KEYS = mjlab_layout.METADATA
"""What BeyondMimic's and mjlab's exporters write into ONNX metadata (comma-separated strings)."""
BEYONDMIMIC_TERM_SIZES = mjlab_layout.TERM_SIZES
"""Sizes of the observation terms of the BeyondMimic / mjlab G1 tracking task (160 values in all)."""

STATUSES = ("ok", "mismatch", "warning", "info", "skipped")
RTOL, ATOL = 2e-3, 2e-3
"""BeyondMimic writes three decimals: values agree to them."""


@dataclass
class CheckItem:
    name: str
    status: str  # one of STATUSES
    detail: str
    fix: str = ""


@dataclass
class PolicyCheck:
    """The items checked for one file; ``dynamic`` holds the standing trials (None when not run)."""

    path: str
    robot: str
    source: str  # "humanoid_gpt", "beyondmimic" or "unknown"
    items: list[CheckItem] = field(default_factory=list)
    dynamic: dict | None = None

    @property
    def ok(self) -> bool:
        return not any(i.status == "mismatch" for i in self.items)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.items.append(CheckItem(name, status, detail, fix))

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "robot": self.robot,
            "source": self.source,
            "ok": self.ok,
            "items": [asdict(i) for i in self.items],
            "dynamic": self.dynamic,
        }


# Reading the file ---------------------------------------------------------------------------------------------------


@dataclass
class Declared:
    """What a policy file says about the robot it was made for, in the file's own joint order."""

    joint_names: list[str]
    kp: np.ndarray | None = None
    kd: np.ndarray | None = None
    action_scale: np.ndarray | None = None
    effort_limit: np.ndarray | None = None
    default_joint_pos: np.ndarray | None = None
    control_dt: float | None = None
    physics_dt: float | None = None
    quaternion: str | None = None
    observation: list[tuple[str, int | None]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


_csv = mjlab_layout.csv_values


def _floats(props: dict, key: str) -> np.ndarray | None:
    if key not in props:
        return None
    return np.array([float(v) for v in _csv(props[key])])


def _declared_ours(meta: dict) -> Declared:
    arr = lambda key: np.asarray(meta[key], dtype=float) if key in meta else None  # noqa: E731
    return Declared(
        joint_names=list(meta.get("joint_names", [])),
        kp=arr("kp"),
        kd=arr("kd"),
        action_scale=arr("action_scale"),
        effort_limit=arr("effort_limit"),
        default_joint_pos=arr("default_joint_pos"),
        control_dt=meta.get("control_dt"),
        physics_dt=meta.get("physics_dt"),
        quaternion=meta.get("quaternion"),
        observation=[(str(n), int(s)) for n, s in meta.get("obs_layout", [])],
        meta=meta,
    )


def _declared_beyondmimic(props: dict) -> Declared:
    names = _csv(props["observation_names"]) if "observation_names" in props else []
    return Declared(
        joint_names=_csv(props.get("joint_names", "")),
        kp=_floats(props, "joint_stiffness"),
        kd=_floats(props, "joint_damping"),
        action_scale=_floats(props, "action_scale"),
        default_joint_pos=_floats(props, "default_joint_pos"),
        quaternion=props.get("quaternion_order") or props.get("quat_order"),
        observation=[(n, BEYONDMIMIC_TERM_SIZES.get(n)) for n in names],
        meta=dict(props),
    )


def _io_sizes(model) -> tuple[int | None, int | None]:
    """The last dimension of the graph's first 2-D input (the observation) and of its first output (the action)."""

    def last(value_info) -> tuple[int, int | None]:
        dims = value_info.type.tensor_type.shape.dim
        return len(dims), (dims[-1].dim_value or None) if dims else None

    obs = next((last(i)[1] for i in model.graph.input if last(i)[0] == 2), None)
    action = last(model.graph.output[0])[1] if model.graph.output else None
    return obs, action


# Comparisons --------------------------------------------------------------------------------------------------------


def _in_robot_order(declared: Declared, values: np.ndarray | None, g1: G1) -> np.ndarray | None:
    if values is None or len(values) != len(declared.joint_names):
        return None
    index = {n: i for i, n in enumerate(declared.joint_names)}
    if any(n not in index for n in g1.joint_names):
        return None
    return np.array([values[index[n]] for n in g1.joint_names])


def _differing(g1: G1, got: np.ndarray, want: np.ndarray) -> str:
    bad = np.flatnonzero(~np.isclose(got, want, rtol=RTOL, atol=ATOL))
    shown = ", ".join(f"{g1.joint_names[i]} {got[i]:.4g} (robot {want[i]:.4g})" for i in bad[:4])
    return f"{len(bad)} joints differ: {shown}{', ...' if len(bad) > 4 else ''}"


def _check_gain(check: PolicyCheck, name: str, got, want, other, g1: G1) -> None:
    """kp or kd: equal, swapped with the other gain, uniformly scaled, or different per joint."""
    formula = "armature (2 pi 10 Hz)^2" if name == "kp" else "2 * 2 * armature * 2 pi 10 Hz"
    if got is None:
        check.add(name, "mismatch", "not in the file (or not for every joint)", "export the gains with the policy")
        return
    if np.allclose(got, want, rtol=RTOL, atol=ATOL):
        check.add(name, "ok", f"{name} = {formula} on all 29 joints (by name)")
        return
    if np.allclose(got, other, rtol=RTOL, atol=ATOL):
        check.add(name, "mismatch", "kp and kd are swapped", "swap joint_stiffness and joint_damping back")
        return
    ratio = got / want
    if np.allclose(ratio, ratio.mean(), rtol=RTOL):
        detail = f"{name} is {ratio.mean():.3g}x the robot's on every joint"
    else:
        detail = _differing(g1, got, want)
    check.add(
        name, "mismatch", detail, f"{name} must be {formula} per joint (hgpt robot info); retrain or export again"
    )


def _check_joints(check: PolicyCheck, declared: Declared, g1: G1, ours: bool) -> str | None:
    """Joint names and order; returns the order's name ("unitree", "isaaclab") or None."""
    from humanoid_gpt.motion.io import joint_order_permutations

    names = declared.joint_names
    if sorted(names) != sorted(g1.joint_names):
        missing = sorted(set(g1.joint_names) - set(names))
        extra = sorted(set(names) - set(g1.joint_names))
        check.add(
            "joint names",
            "mismatch",
            f"{len(names)} names; missing {missing[:3]}, unknown {extra[:3]}",
            "export the policy for the G1 29-DoF (names as in the robot's MJCF)",
        )
        return None
    orders = {k: [g1.joint_names[i] for i in perm] for k, perm in joint_order_permutations(g1).items()}
    order = next((k for k, v in orders.items() if v == names), None)
    if order == "unitree":
        check.add("joint order", "ok", "the G1's own order (MJCF, depth-first)")
    elif order == "isaaclab" and not ours:
        check.add("joint order", "ok", "Isaac Lab's breadth-first order: the deployment must map joints by name")
    elif order == "isaaclab":
        check.add(
            "joint order",
            "mismatch",
            "Isaac Lab's breadth-first order, but our runtime feeds joints in the G1's order",
            "export from a student trained on the G1 order (hgpt export onnx)",
        )
    else:
        check.add(
            "joint order",
            "mismatch",
            "neither the G1's order nor Isaac Lab's breadth-first order",
            "check joint_names against the exporter's joint order; values are matched to joints by these names",
        )
    return order


def _check_rates(check: PolicyCheck, declared: Declared) -> None:
    from humanoid_gpt.mdp.config import TrackingConfig

    task = TrackingConfig()
    for key, want, what in (("control_dt", task.control_dt, "control"), ("physics_dt", task.physics_dt, "physics")):
        got = getattr(declared, key)
        name = f"{what} rate"
        if got is None:
            check.add(name, "info", f"not in the file; the G1 tasks run {1 / want:g} Hz")
        elif math.isclose(got, want, rel_tol=1e-6):
            check.add(name, "ok", f"{1 / got:g} Hz")
        else:
            check.add(
                name,
                "mismatch",
                f"{1 / got:g} Hz, the robot's tasks run {1 / want:g} Hz",
                f"run the policy at {1 / got:g} Hz or retrain",
            )


def _check_quaternion(check: PolicyCheck, declared: Declared) -> None:
    names = [n for n, _ in declared.observation]
    quats = [n for n in names if "quat" in n.lower()]
    if declared.quaternion is not None:
        if declared.quaternion.lower() == "wxyz":
            check.add("quaternion order", "ok", "w, x, y, z (MuJoCo and Isaac Lab order)")
        else:
            check.add(
                "quaternion order",
                "mismatch",
                f"{declared.quaternion}; MuJoCo and Isaac Lab give w, x, y, z",
                "reorder quaternions to w, x, y, z before the policy",
            )
    elif quats:
        check.add(
            "quaternion order",
            "warning",
            f"terms {quats} carry a quaternion of undeclared order",
            "check it is w, x, y, z",
        )
    else:
        check.add(
            "quaternion order", "info", "no quaternion among the observation terms (rotations as gravity/matrices)"
        )


def _check_observation(check: PolicyCheck, declared: Declared, obs_size: int | None, ours: bool) -> bool:
    """Observation size and layout; True when our runtime can feed it (our layout, right size)."""
    from humanoid_gpt.mdp.observations import STUDENT_LAYOUT

    if ours:
        layout = [tuple(p) for p in declared.observation]
        total = sum(s for _, s in layout)
        if obs_size is not None and total != obs_size:
            check.add(
                "observation",
                "mismatch",
                f"the graph takes {obs_size} values, its layout sums to {total}",
                "export again: the file's graph and metadata disagree",
            )
            return False
        if layout != list(STUDENT_LAYOUT):
            check.add(
                "observation",
                "mismatch",
                f"layout of {total} values differs from this code's STUDENT_LAYOUT ({len(STUDENT_LAYOUT)} terms)",
                "retrain or export with this version's observation",
            )
            return False
        check.add("observation", "ok", f"the student observation, {total} values in STUDENT_LAYOUT order")
        return True
    if not declared.observation:
        check.add("observation", "warning", f"no observation_names; the graph takes {obs_size} values")
        return False
    sizes = [s for _, s in declared.observation]
    names = ", ".join(n for n, _ in declared.observation)
    if None in sizes:
        unknown = [n for n, s in declared.observation if s is None]
        check.add("observation", "info", f"{obs_size} values; sizes of terms {unknown} unknown here ({names})")
    elif obs_size is not None and sum(sizes) != obs_size:
        check.add(
            "observation",
            "mismatch",
            f"the graph takes {obs_size} values, the G1 tracking terms ({names}) make {sum(sizes)}",
            "the observation terms or their order differ from the exporter's task: check the observation config",
        )
    else:
        check.add("observation", "ok", f"{sum(sizes)} values: {names}")
    return False


def check_static(path: str | Path, g1: G1) -> tuple[PolicyCheck, Declared | None]:
    """Every item that can be read from the file; also the file's declarations (None when unreadable)."""
    import onnx

    from humanoid_gpt.runs import robot_hash

    path = Path(path)
    check = PolicyCheck(str(path), str(g1.xml_path), "unknown")
    try:
        model = load_onnx_graph(path)
        onnx.checker.check_model(model)
    except OnnxExternalDataError as e:
        check.add("file", "mismatch", str(e), "keep the model's data files beside it, named relative to it")
        return check, None
    except Exception as e:  # onnx raises DecodeError, ValidationError and others for a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        check.add("file", "mismatch", f"not a readable ONNX model ({first})", "export the policy again (truncated?)")
        return check, None
    props = {p.key: p.value for p in model.metadata_props}
    obs_size, action_size = _io_sizes(model)
    if props.get("format") == ONNX_FORMAT:
        try:
            meta = read_onnx_metadata(path)
        except OnnxMetadataError as e:
            check.add("metadata", "mismatch", str(e), "export with this version of hgpt")
            return check, None
        check.source = "humanoid_gpt"
        declared = _declared_ours(meta)
        check.add(
            "metadata",
            "ok",
            f"humanoid_gpt v{meta['format_version']} (<= {ONNX_FORMAT_VERSION}), {meta.get('model')} student, "
            f"{meta.get('graph')} graph",
        )
    elif any(k in props for k in BEYONDMIMIC_KEYS):
        missing = [k for k in BEYONDMIMIC_KEYS if k not in props]
        check.source = "beyondmimic"
        if missing:
            check.add("metadata", "mismatch", f"BeyondMimic-style, without {missing}", "export with the missing keys")
        else:
            check.add("metadata", "ok", "BeyondMimic / mjlab exporter keys")
        declared = _declared_beyondmimic(props)
    else:
        layout = _layout_of(path)
        if layout is not None:  # a layout without metadata (TWIST2, the Humanoid-GPT release): its actuation is known
            check.source = layout.name
            check.add("metadata", "ok", f"none needed: recognised as {layout.name} ({layout.summary})")
            return check, Declared(list(g1.joint_names), meta={"_layout": layout.name})
        check.add(
            "metadata",
            "mismatch",
            "no deployment metadata (neither humanoid_gpt's nor BeyondMimic's keys)",
            "export with `hgpt export onnx` (or BeyondMimic's / mjlab's exporter): gains and order travel with it",
        )
        return check, None
    ours = check.source == "humanoid_gpt"
    order = _check_joints(check, declared, g1, ours)
    if order is not None or sorted(declared.joint_names) == sorted(g1.joint_names):
        kp = _in_robot_order(declared, declared.kp, g1)
        kd = _in_robot_order(declared, declared.kd, g1)
        _check_gain(check, "kp", kp, g1.kp, g1.kd, g1)
        _check_gain(check, "kd", kd, g1.kd, g1.kp, g1)
        items = [("effort_limit", g1.effort_limit, "effort limit"), ("action_scale", g1.action_scale, "action scale")]
        if ours:
            items.append(("default_joint_pos", g1.default_joint_pos, "default pose"))
        else:
            _check_foreign_default(check, declared, g1)
        for key, want, what in items:
            got = _in_robot_order(declared, getattr(declared, key), g1)
            if getattr(declared, key) is None:
                status = "mismatch" if key in ("action_scale", "default_joint_pos") else "info"
                check.add(what, status, "not in the file", "export it with the policy" if status == "mismatch" else "")
            elif got is None:
                check.add(what, "mismatch", f"{len(getattr(declared, key))} values for 29 joints", "export again")
            elif np.allclose(got, want, rtol=RTOL, atol=ATOL):
                rule = {"action scale": " = 0.25 effort / kp", "effort limit": "", "default pose": ""}[what]
                check.add(what, "ok", f"the robot's{rule} on all 29 joints")
            else:
                fixes = {
                    "effort limit": "use the G1's motor effort limits (hgpt robot info)",
                    "action scale": "action scale must be 0.25 effort / kp per joint: actions would move joints "
                    "by the wrong amount",
                    "default pose": "actions are offsets from the default pose: use the G1's (pelvis 0.78 m, "
                    "hip pitch -0.1, knee 0.3, ankle -0.2, shoulder 0.2 / +-0.3, elbow 1.28)",
                }
                check.add(what, "mismatch", _differing(g1, got, want), fixes[what])
    _check_rates(check, declared)
    _check_quaternion(check, declared)
    feedable = _check_observation(check, declared, obs_size, ours)
    if not ours:
        _check_motion_export(check, path, g1)
    if action_size is not None and action_size != g1.num_joints:
        check.add("actions", "mismatch", f"{action_size} actions per step for {g1.num_joints} joints", "export again")
    else:
        check.add("actions", "ok", f"{g1.num_joints} joint position actions")
    if ours:
        made_for = declared.meta.get("robot")
        if made_for != robot_hash(g1.xml_path):
            check.add(
                "robot model",
                "warning",
                f"made for robot model {made_for}, checking against {g1.xml_path.name} ({robot_hash(g1.xml_path)})",
                "check the MJCF variant (wrist motors, waist lock) matches the robot's",
            )
        relative = declared.meta.get("action_relative_to_reference")
        check.add("action convention", "info", "q = q_ref + a scale" if relative else "q = q_default + a scale")
        declared.meta["_feedable"] = feedable and declared.meta.get("graph") == "streaming"
    return check, declared


# Motion exports (mjlab / BeyondMimic): the embedded motion and the normaliser against the metadata -----------------

KNEES_BENT = {
    **{
        f"{side}_{joint}_joint": v
        for side in ("left", "right")
        for joint, v in (("hip_pitch", -0.312), ("knee", 0.669))
    },
    **{f"{side}_{joint}_joint": v for side in ("left", "right") for joint, v in (("ankle_pitch", -0.363),)},
    **{
        f"{side}_{joint}_joint": v
        for side in ("left", "right")
        for joint, v in (("elbow", 0.6), ("shoulder_pitch", 0.2))
    },
    "left_shoulder_roll_joint": 0.2,
    "right_shoulder_roll_joint": -0.2,
}
"""The knees-bent keyframe mjlab's and BeyondMimic's G1 tracking configs train about (``KNEES_BENT_KEYFRAME``)."""
FK_TOLERANCE = 0.02
"""m: forward kinematics of the motion's joints from its anchor pose puts its bodies this close to body_pos_w."""
Z_LIMIT = 1.5
"""A term's observations on its own motion sit within this many of the normaliser's standard deviations."""


def _layout_of(path: Path):
    """The layout that recognises the file, or None."""
    from humanoid_gpt.deploy.layouts import LayoutError, identify

    try:
        return identify(path)
    except LayoutError:
        return None


def _check_motion_export(check: PolicyCheck, path: Path, g1: G1) -> None:
    """The items only an mjlab / BeyondMimic file's interface, motion and normaliser can tell."""
    from humanoid_gpt.deploy.layouts import LayoutError

    layout = _layout_of(path)
    if layout is None or layout.name != "mjlab":
        return
    try:
        f = mjlab_layout.read_interface(path, g1)
    except LayoutError as e:
        check.add("interface", "mismatch", str(e).removeprefix(f"{path}: "), "export the policy again")
        return
    check.add("interface", "ok", f"the mjlab layout{' with its motion inside' if f.motion else ' (plain export)'}")
    if f.motion:
        _check_motion(check, f, g1)
        _check_observation_order(check, f)


def _check_foreign_default(check: PolicyCheck, declared: Declared, g1: G1) -> None:
    """A foreign policy acts about its own default pose (the harness drives it so): a known G1 pose is ok; a known
    pose written in another joint order than joint_names (the classic mistake) or an unknown pose is a mismatch."""
    from humanoid_gpt.motion.io import joint_order_permutations

    values = declared.default_joint_pos
    poses = {"the robot's own": g1.default_joint_pos, "mjlab/BeyondMimic's knees-bent keyframe": None}
    poses["mjlab/BeyondMimic's knees-bent keyframe"] = np.array([KNEES_BENT.get(n, 0.0) for n in g1.joint_names])
    got = _in_robot_order(declared, values, g1)
    if values is None or got is None:
        check.add("default pose", "mismatch", "not in the file (or not one per joint)", "export it with the policy")
        return
    for label, pose in poses.items():
        if np.allclose(got, pose, atol=ATOL):
            check.add("default pose", "ok", f"{label} pose (the harness drives the policy about it)")
            return
    for label, pose in poses.items():
        for order, perm in joint_order_permutations(g1).items():
            if np.allclose(values, pose[perm], atol=ATOL):
                check.add(
                    "default pose",
                    "mismatch",
                    f"default_joint_pos is {label} pose in the {order} joint order, not in joint_names' order",
                    "write default_joint_pos in the order of joint_names (the exporter's robot joint order)",
                )
                return
    if (got < g1.joint_limits[:, 0] - ATOL).any() or (got > g1.joint_limits[:, 1] + ATOL).any():
        check.add(
            "default pose", "mismatch", "outside the joint limits: " + _differing(g1, got, got * 0), "export again"
        )
        return
    label, pose = min(poses.items(), key=lambda kv: np.abs(got - kv[1]).max())
    check.add(
        "default pose",
        "mismatch",
        f"not a known G1 pose; against {label}: " + _differing(g1, got, pose),
        "default_joint_pos must be the pose the policy was trained about (the robot's, or mjlab/BeyondMimic's "
        "knees-bent keyframe), in joint_names' order",
    )


def _fk_error(g1: G1, f, t, order: list[int], xyzw: bool) -> float:
    """Mean distance (m) between body_pos_w and forward kinematics of the motion's joints (read in ``order``) from its
    anchor pose (read as w, x, y, z, or x, y, z, w)."""
    from humanoid_gpt.deploy.layouts.embedded import clip_from_body_pose, in_g1_order
    from humanoid_gpt.motion.kinematics import forward_kinematics

    frames = np.linspace(0, len(t.joint_pos) - 1, min(len(t.joint_pos), 40)).astype(int)
    a = f.body_names.index(f.anchor)
    quat = t.body_quat[frames, a]
    quat = quat[:, [3, 0, 1, 2]] if xyzw else quat
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    joints = in_g1_order(order, t.joint_pos[frames])
    clip = clip_from_body_pose(g1, "check", joints, f.anchor, t.body_pos[frames, a], quat, 50.0, {})
    qpos = np.concatenate([clip.root_pos, clip.root_quat, clip.joint_pos], axis=1)
    pos = forward_kinematics(g1, qpos, bodies=tuple(f.body_names)).pos
    return float(np.linalg.norm(pos - t.body_pos[frames], axis=-1).mean())


def _check_motion(check: PolicyCheck, f, g1: G1) -> None:
    """The embedded motion against the metadata: joint order and quaternion order by forward kinematics (the
    stored bodies must sit where the stored joints put them), the rate from joint_vel against joint_pos."""
    from humanoid_gpt.motion.io import joint_order_permutations

    t = mjlab_layout.motion_tables(f.path)
    declared = _fk_error(g1, f, t, f.order, False)
    if declared < FK_TOLERANCE:
        check.add(
            "motion kinematics",
            "ok",
            f"body_pos_w within {declared * 1000:.0f} mm of forward kinematics of "
            "joint_pos in joint_names' order from the anchor pose (quaternions w, x, y, z)",
        )
    else:
        tried = {
            (order, xyzw): _fk_error(g1, f, t, [int(i) for i in perm], xyzw)
            for order, perm in {"joint_names'": f.order, **joint_order_permutations(g1)}.items()
            for xyzw in (False, True)
        }
        tried[("joint_names'", False)] = declared
        (order, xyzw), best = min(tried.items(), key=lambda kv: kv[1])
        if best >= FK_TOLERANCE:
            check.add(
                "motion kinematics",
                "mismatch",
                f"body_pos_w is {declared * 1000:.0f} mm from forward "
                "kinematics of joint_pos, in every joint and quaternion order tried",
                "the motion was made for another robot model: export it from the G1's MJCF",
            )
        elif xyzw:
            check.add(
                "quaternion order (motion)",
                "mismatch",
                f"body_quat_w is x, y, z, w: forward kinematics fits "
                f"({best * 1000:.0f} mm, {declared * 1000:.0f} mm as w, x, y, z)",
                "store body_quat_w as w, x, y, z (Isaac Lab and MuJoCo order)",
            )
        else:
            check.add(
                "joint order (motion)",
                "mismatch",
                f"joint_pos is in the {order} order, not joint_names' "
                f"(forward kinematics {best * 1000:.0f} mm against {declared * 1000:.0f} mm)",
                "write joint_names in the order the policy's joints (and its motion) are in",
            )
    dq, v = np.diff(t.joint_pos, axis=0), (t.joint_vel[1:] + t.joint_vel[:-1]) / 2
    if (v * v).sum() < 1e-6:
        check.add("control rate (motion)", "info", "the embedded motion is still: its rate cannot be told")
        return
    rate = float((v * v).sum() / (dq * v).sum())
    if abs(rate / mjlab_layout.FPS - 1) < 0.1:
        check.add(
            "control rate (motion)", "ok", f"joint_vel matches joint_pos at {rate:.1f} Hz: one frame per 50 Hz step"
        )
    else:
        check.add(
            "control rate (motion)",
            "mismatch",
            f"the embedded motion's joint_vel matches its joint_pos at {rate:.0f} Hz; the graph advances one frame "
            f"per control step (time_step) and the G1 tasks step at {mjlab_layout.FPS:g} Hz",
            f"export the motion at {mjlab_layout.FPS:g} fps (csv_to_npz --output_fps 50), or run the policy at "
            f"{rate:.0f} Hz",
        )


def _normalizer(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """rsl_rl's empirical normaliser at the graph's input, (x - mean) / (std + eps): its mean and std + eps; None
    when the graph has none."""
    from onnx import numpy_helper

    graph = load_onnx_graph(path).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    by_input = {}
    for node in graph.node:
        for name in node.input:
            by_input.setdefault(name, []).append(node)
    value = lambda name: consts.get(name) if consts.get(name) is not None and consts[name].size == dim else None  # noqa: E731
    for sub in by_input.get("obs", []):
        if sub.op_type != "Sub" or value(sub.input[1]) is None:
            continue
        for div in by_input.get(sub.output[0], []):
            if div.op_type == "Div" and value(div.input[1]) is not None:
                return value(sub.input[1]).reshape(-1), value(div.input[1]).reshape(-1)
    return None


def _term_score(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """How far observations ``x`` (T, n) sit from a normaliser's statistics: the median over entries of the mean's
    z-score plus the log of how much wider they spread (training noise and other motions only widen the
    normaliser's spread: a narrower spread says nothing)."""
    mh, sh = x.mean(0), x.std(0)
    return float(np.median(np.abs(mh - mean) / std + np.maximum(0.0, np.log(np.maximum(sh, 1e-9) / std))))


def _check_observation_order(check: PolicyCheck, f) -> None:
    """Observation order against the graph's normaliser: the observation of the robot on its own motion, term by
    term in the declared order, must sit within the normaliser's statistics; when another order of the same terms
    fits and the declared one does not, the order is wrong."""
    import itertools

    stats = _normalizer(f.path, f.obs_dim)
    if stats is None or not f.motion:
        check.add("observation order", "info", "no embedded motion or normaliser in the graph: order not checked")
        return
    mean, std = stats
    obs = _replay_observations(f)
    offsets = np.cumsum([0] + [s for _, s in f.terms])[:-1]
    per_term = {n: obs[:, o : o + s] for (n, s), o in zip(f.terms, offsets, strict=True)}
    cache: dict[tuple[str, int], float] = {}

    def score(order) -> list[float]:
        out, offset = [], 0
        for name, size in order:
            if (name, offset) not in cache:
                cache[(name, offset)] = _term_score(
                    per_term[name], mean[offset : offset + size], std[offset : offset + size]
                )
            out.append(cache[(name, offset)])
            offset += size
        return out

    declared = score(f.terms)
    worst = max(declared)
    if worst < Z_LIMIT:
        check.add(
            "observation order",
            "ok",
            f"each term on its own motion within the normaliser's statistics (worst {worst:.2f} sd)",
        )
        return
    best = min(itertools.permutations(f.terms), key=lambda order: max(score(order)))
    off = [n for (n, _), z in zip(f.terms, declared, strict=True) if z >= Z_LIMIT]
    if max(score(best)) < Z_LIMIT:
        check.add(
            "observation order",
            "mismatch",
            f"terms {off} sit {worst:.1f} sd from the graph's normaliser; the order {', '.join(n for n, _ in best)} "
            "fits it",
            "write observation_names in the order the policy was trained on (the observation config's term order)",
        )
    else:
        check.add(
            "observation order",
            "warning",
            f"terms {off} sit up to {worst:.1f} sd from the graph's normaliser on the policy's own motion",
            "check the observation terms and their order",
        )


def _replay_observations(f) -> np.ndarray:
    """The policy's observations (T, D) with the robot on its motion frame by frame, its actions fed back."""
    import torch

    from humanoid_gpt.deploy.layouts.embedded import MotionGraph

    t = mjlab_layout.motion_tables(f.path)
    robot, ref = mjlab_layout.reference_robot(f, t)
    graph, last, rows = MotionGraph(f.path), torch.zeros(1, 29), []
    for k in range(min(len(t.joint_pos), 500)):
        state = mjlab_layout.Robot(*(v[k : k + 1] for v in robot))
        frame = mjlab_layout.Reference(*(v[k : k + 1] for v in ref))
        x = mjlab_layout.assemble(f, mjlab_layout.observation_terms(state, frame, last))
        rows.append(x[0])
        last = torch.from_numpy(graph.run(x[0], k)[0][None]).float()
    return np.stack(rows)


# Dynamic check ------------------------------------------------------------------------------------------------------


def standing_clip(g1: G1, seconds: float = 4.0, fps: float = 50.0) -> MotionClip:
    """The default pose with the feet on the floor, arms swinging slowly (0.25 Hz, 0.15 rad at the shoulders)."""
    import mujoco

    model = g1.model(actuators="none", floor=False)
    data = mujoco.MjData(model)
    data.qpos[:] = g1.default_qpos()
    mujoco.mj_forward(model, data)
    low = np.inf
    for g in range(model.ngeom):
        if model.geom_contype[g] or model.geom_conaffinity[g]:
            rot = data.geom_xmat[g].reshape(3, 3)
            centre = data.geom_xpos[g] + rot @ model.geom_aabb[g, :3]
            low = min(low, centre[2] - np.abs(rot[2]) @ model.geom_aabb[g, 3:])
    n = int(round(seconds * fps)) + 1
    t = np.arange(n) / fps
    joints = np.tile(g1.default_joint_pos, (n, 1))
    for side in ("left", "right"):
        joints[:, g1.joint_names.index(f"{side}_shoulder_pitch_joint")] += 0.15 * np.sin(2 * np.pi * 0.25 * t)
    root = np.tile([0.0, 0.0, g1.default_root_height - low], (n, 1))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    return MotionClip("standing", fps, root, quat, joints, {"source": "hgpt sim2sim check"})


@dataclass
class Hypothesis:
    """A deployment mistake to undo in a trial."""

    name: str
    fix: str = ""
    order: np.ndarray | None = None  # the policy's joint order, as G1 indices
    kp: np.ndarray | None = None  # gains to simulate with (G1 order)
    kd: np.ndarray | None = None
    control_dt: float | None = None


class _TrialPolicy:
    """A streaming student in the harness under a hypothesis: observations and actions reordered, gains replaced."""

    def __init__(self, path: Path, env, hypothesis: Hypothesis) -> None:
        from humanoid_gpt.deploy.runtime import OnnxStream
        from humanoid_gpt.mdp.observations import STUDENT_LAYOUT

        self.env, self.h = env, hypothesis
        self.stream = OnnxStream(path, env.num_envs)
        offsets = np.cumsum([0] + [s for _, s in STUDENT_LAYOUT])
        per_joint = ("joint_pos_rel", "joint_vel", "last_action", "ref_joint_pos_rel")
        self.blocks = [offsets[i] for i, (n, _) in enumerate(STUDENT_LAYOUT) if n in per_joint]
        if hypothesis.kp is not None:
            worlds = getattr(env, "worlds", None)
            if worlds is None:
                raise OnnxMetadataError("this backend's env does not expose its MuJoCo models: gains cannot be tried")
            for model in {id(m): m for m in worlds.models}.values():
                model.actuator_gainprm[:, 0] = hypothesis.kp
                model.actuator_biasprm[:, 1] = -hypothesis.kp
                model.actuator_biasprm[:, 2] = -hypothesis.kd

    def __call__(self, obs):
        import torch

        self.stream.reset((self.env.episode_length_buf == 0).numpy())
        x = obs["student"].numpy().astype(np.float32)
        order = self.h.order
        if order is not None:
            x = x.copy()
            for start in self.blocks:
                x[:, start : start + len(order)] = x[:, start + order]
        action = self.stream.step(x)
        if order is not None:
            action_g1 = np.empty_like(action)
            action_g1[:, order] = action
            action = action_g1
        return torch.from_numpy(action)


def _trial(path: Path, g1: G1, declared: Declared, hypothesis: Hypothesis, seconds: float, backend) -> dict:
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig

    tracking = TrackingConfig(
        control_dt=hypothesis.control_dt or declared.control_dt or 0.02,
        physics_dt=declared.physics_dt or 0.005,
        action_relative_to_reference=bool(declared.meta.get("action_relative_to_reference")),
        randomization=RandomizationConfig.off(),
    )
    clip = standing_clip(g1, seconds)
    result = backend.evaluate(
        [clip], lambda env: _TrialPolicy(path, env, hypothesis), tracking, num_envs=1, seed=0, progress=False
    )
    agg = result["aggregate"]
    held = float(agg.get("mean_episode_s", 0.0))
    stood = agg.get("sr_percent", 0.0) >= 100.0 and held >= seconds - 2 * tracking.control_dt
    return {
        "hypothesis": hypothesis.name,
        "stood": bool(stood),
        "seconds": held,
        "mpjpe": float(agg.get("mpjpe", float("nan"))),
        "mpkpe_mm": float(agg.get("mpkpe_mm", float("nan"))),
    }


def hypotheses(g1: G1, declared: Declared) -> list[Hypothesis]:
    """The usual deployment mistakes, most likely first."""
    from humanoid_gpt.motion.io import joint_order_permutations

    out = [
        Hypothesis(
            "joint order: Isaac Lab breadth-first",
            "the policy was trained in Isaac Lab's joint order: reorder observations and actions by joint name",
            order=joint_order_permutations(g1)["isaaclab"],
        )
    ]
    kp, kd = _in_robot_order(declared, declared.kp, g1), _in_robot_order(declared, declared.kd, g1)
    if kp is not None and kd is not None and not (np.allclose(kp, g1.kp) and np.allclose(kd, g1.kd)):
        out.append(Hypothesis("gains from the file", "set the robot's kp / kd to the file's", kp=kp, kd=kd))
    out += [
        Hypothesis("kp and kd swapped", "the policy was trained with kp and kd swapped", kp=g1.kd, kd=g1.kp),
        Hypothesis("gains x2", "the policy was trained with twice the gains", kp=2 * g1.kp, kd=2 * g1.kd),
        Hypothesis("gains x0.5", "the policy was trained with half the gains", kp=0.5 * g1.kp, kd=0.5 * g1.kd),
    ]
    rate = declared.control_dt or 0.02
    for factor in (0.5, 2.0):
        dt = rate * factor
        out.append(Hypothesis(f"control at {1 / dt:g} Hz", f"run the policy at {1 / dt:g} Hz", control_dt=dt))
    return out


def check_dynamic(path: Path, g1: G1, declared: Declared, seconds: float = 4.0, backend=None) -> dict:
    """Stand on the slow standing reference; on a fall, retry the usual mistakes. Returns the trials and the fix."""
    from humanoid_gpt.backends import load_backend

    backend = backend or load_backend("mujoco", g1=g1, threads=1)
    trials = [_trial(path, g1, declared, Hypothesis("as declared"), seconds, backend)]
    fix = None
    if not trials[0]["stood"]:
        for hypothesis in hypotheses(g1, declared):
            trials.append(_trial(path, g1, declared, hypothesis, seconds, backend))
            if trials[-1]["stood"]:
                fix = {"hypothesis": hypothesis.name, "fix": hypothesis.fix}
                break
    return {"status": "stood" if trials[0]["stood"] else "fell", "seconds": seconds, "trials": trials, "fix": fix}


def check_policy(
    path: str | Path, g1: G1 | None = None, dynamic: bool = True, seconds: float = 4.0, backend=None
) -> PolicyCheck:
    """Check a tracking policy file against the robot: metadata items, then (for our streaming students) the
    standing trial. ``check.ok`` is False on any mismatch."""
    from humanoid_gpt.robot import load_g1

    g1 = g1 or load_g1()
    path = Path(path)
    check, declared = check_static(path, g1)
    name = f"dynamic: standing {seconds:g} s"
    if not dynamic:
        return check
    if declared is None:
        check.add(name, "skipped", "the file could not be read")
    elif check.source != "humanoid_gpt" and _layout_of(path) is not None:
        _check_layout_dynamic(check, path, g1, seconds)
    elif check.source != "humanoid_gpt":
        check.add(
            name,
            "skipped",
            "needs our observation layout (STUDENT_LAYOUT) or a known layout; this policy's observation is "
            + (", ".join(n for n, _ in declared.observation) or "undeclared"),
            "run it in its own framework's sim2sim, or distill it into a humanoid_gpt student",
        )
    elif not declared.meta.get("_feedable"):
        check.add(name, "skipped", "only a streaming graph with our observation layout can be run here")
    else:
        result = check_dynamic(path, g1, declared, seconds, backend)
        check.dynamic = result
        first = result["trials"][0]
        if result["status"] == "stood":
            check.add(name, "ok", f"tracked {first['seconds']:.1f} s, MPJPE {first['mpjpe']:.3f} rad")
        elif result["fix"] is not None:
            check.add(
                name,
                "mismatch",
                f"fell after {first['seconds']:.1f} s as declared; stands with: {result['fix']['hypothesis']}",
                result["fix"]["fix"],
            )
        else:
            tried = ", ".join(t["hypothesis"] for t in result["trials"][1:])
            check.add(
                name,
                "mismatch",
                f"fell after {first['seconds']:.1f} s; none of the usual mistakes makes it stand ({tried})",
                "the policy itself does not balance: check its training",
            )
    return check


def _check_layout_dynamic(check: PolicyCheck, path: Path, g1: G1, seconds: float) -> None:
    """Another lab's policy run as its layout (its actuation, its observation): on the first seconds of the motion
    inside the file, or on the standing reference for a policy that tracks ours."""
    from humanoid_gpt.backends import load_backend
    from humanoid_gpt.deploy.layouts import LayoutError
    from humanoid_gpt.deploy.policies import policy_setup
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig

    setup = policy_setup(str(path), g1)
    try:
        reference = setup.reference() if setup.reference is not None else None
    except LayoutError:  # a plain export: no motion of its own
        reference = None
    if reference is not None:
        clip, what = reference.slice(0, int(seconds * reference.fps) + 1), "its embedded motion"
    else:
        clip, what = standing_clip(g1, seconds), "standing"
    name = f"dynamic: {what} {seconds:g} s"
    tracking = TrackingConfig(randomization=RandomizationConfig.off(), **setup.task_settings)
    backend = load_backend("mujoco", g1=setup.g1, threads=1)  # the layout's actuation, whatever backend was passed
    agg = backend.evaluate([clip], setup.make, tracking, num_envs=1, seed=0, progress=False)["aggregate"]
    held = float(agg.get("mean_episode_s", 0.0))
    check.dynamic = {"status": "stood" if agg.get("sr_percent", 0.0) >= 100 else "fell", "seconds": held, **agg}
    if check.dynamic["status"] == "stood":
        check.add(name, "ok", f"tracked {held:.1f} s as the {setup.layout} layout, MPKPE {agg['mpkpe_mm']:.0f} mm")
    else:
        check.add(
            name,
            "mismatch",
            f"fell after {held:.1f} s as the {setup.layout} layout (MPKPE {agg.get('mpkpe_mm', float('nan')):.0f} mm)",
            "check the items above; a policy that tracks its motion in its own simulator should here too",
        )


def print_policy_check(check: PolicyCheck) -> None:
    """A table of the items on the terminal, mismatches in red with their fix."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"{Path(check.path).name} ({check.source}) against {Path(check.robot).name}")
    for col in ("item", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    style = {"ok": "green", "mismatch": "red", "warning": "yellow", "info": "cyan", "skipped": "dim"}
    for item in check.items:
        table.add_row(item.name, f"[{style[item.status]}]{item.status}[/]", item.detail, item.fix)
    console().print(table)
    verdict = "ok" if check.ok else f"{sum(i.status == 'mismatch' for i in check.items)} mismatch(es)"
    console().print(f"{check.path}: {verdict}")


def run_check(
    policy: str | Path,
    robot: str | Path | None = None,
    json_path: str | Path | None = None,
    dynamic: bool = True,
    seconds: float = 4.0,
) -> int:
    """``hgpt sim2sim check``: check, print the table, write the JSON report; the exit code (1 on any mismatch)."""
    from humanoid_gpt.io_utils import write_text_atomic
    from humanoid_gpt.robot import load_g1

    check = check_policy(policy, load_g1(robot), dynamic, seconds)
    print_policy_check(check)
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(check.to_dict(), indent=1))
    return 0 if check.ok else 1
