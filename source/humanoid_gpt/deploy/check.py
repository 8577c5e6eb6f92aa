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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.check_items import ATOL, RTOL, Declared, PolicyCheck, check_gain, differing, in_robot_order
from humanoid_gpt.deploy.check_motion import check_foreign_default, check_motion_export, layout_of
from humanoid_gpt.deploy.layouts import LayoutError
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


# Reading the file ---------------------------------------------------------------------------------------------------


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


def _declared_holosoma(path: Path, g1: G1) -> Declared:
    """holosoma's JSON metadata (``dof_names``, ``kp``, ``kd``); the rest of its interface is fixed by its exporter:
    actions about its knees-bent default pose with scale 1, the six observation terms in sorted name order."""
    from humanoid_gpt.deploy.layouts import holosoma

    order, kp, kd = holosoma.policy_joints(path, g1)
    names = [g1.joint_names[i] for i in order]
    return Declared(
        joint_names=names,
        kp=kp,
        kd=kd,
        observation=list(holosoma.OBSERVATION_TERMS),
        meta={"_layout": "holosoma"},
        fixed={
            "action_scale": "1.0 on every joint: holosoma's G1 tracking export (not in the file)",
            "default_joint_pos": "the knees-bent keyframe of holosoma's g1_29dof config (not in the file)",
        },
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
        layout = layout_of(path)
        if layout is not None and layout.name == "holosoma":
            check.source = layout.name
            try:
                declared = _declared_holosoma(path, g1)
            except LayoutError as e:
                check.add("metadata", "mismatch", str(e).removeprefix(f"{path}: "), "export the policy again")
                return check, None
            check.add("metadata", "ok", "holosoma's JSON dof_names / kp / kd")
        elif layout is not None:  # a layout without metadata (TWIST2, the release): its actuation is known
            check.source = layout.name
            check.add("metadata", "ok", f"none needed: recognised as {layout.name} ({layout.summary})")
            return check, Declared(list(g1.joint_names), meta={"_layout": layout.name})
        else:
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
        kp = in_robot_order(declared, declared.kp, g1)
        kd = in_robot_order(declared, declared.kd, g1)
        check_gain(check, "kp", kp, g1.kp, g1.kd, g1)
        check_gain(check, "kd", kd, g1.kd, g1.kp, g1)
        items = [("effort_limit", g1.effort_limit, "effort limit"), ("action_scale", g1.action_scale, "action scale")]
        if ours:
            items.append(("default_joint_pos", g1.default_joint_pos, "default pose"))
        elif "default_joint_pos" not in declared.fixed:
            check_foreign_default(check, declared, g1)
        for key, detail in declared.fixed.items():
            check.add(key.replace("_joint_pos", " pose").replace("_", " "), "info", detail)
        for key, want, what in items:
            if key in declared.fixed:
                continue
            got = in_robot_order(declared, getattr(declared, key), g1)
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
                check.add(what, "mismatch", differing(g1, got, want), fixes[what])
    _check_rates(check, declared)
    _check_quaternion(check, declared)
    feedable = _check_observation(check, declared, obs_size, ours)
    if not ours:
        check_motion_export(check, path, g1)
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
    kp, kd = in_robot_order(declared, declared.kp, g1), in_robot_order(declared, declared.kd, g1)
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
    elif check.source != "humanoid_gpt" and layout_of(path) is not None:
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
