"""The static items of a policy check (``hgpt sim2sim check``): the file's declarations
(:mod:`~humanoid_gpt.deploy.check_declared`) compared item by item with the robot
(:func:`humanoid_gpt.robot.load_g1`): joint order by name, kp and kd against the armature formula, effort limits and
action scale, default pose, control and physics rates, quaternion order, observation size and layout. Each item is ok,
or a mismatch with its fix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.check_declared import (
    BEYONDMIMIC_KEYS,
    declared_beyondmimic,
    declared_holosoma,
    declared_ours,
    io_sizes,
)
from humanoid_gpt.deploy.check_items import ATOL, RTOL, Declared, PolicyCheck, check_gain, differing, in_robot_order
from humanoid_gpt.deploy.check_motion import check_foreign_default, check_motion_export, layout_of
from humanoid_gpt.deploy.layouts import LayoutError
from humanoid_gpt.deploy.onnx import (
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    OnnxExternalDataError,
    OnnxMetadataError,
    load_onnx_graph,
    read_onnx_metadata,
)
from humanoid_gpt.robot.g1 import G1


def _check_joints(check: PolicyCheck, declared: Declared, g1: G1, ours: bool) -> str | None:
    """Joint names and order; returns the order's name ("unitree", "isaaclab") or None."""
    from humanoid_gpt.motion.formats import joint_order_permutations

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
    obs_size, action_size = io_sizes(model)
    if props.get("format") == ONNX_FORMAT:
        try:
            meta = read_onnx_metadata(path)
        except OnnxMetadataError as e:
            check.add("metadata", "mismatch", str(e), "export with this version of hgpt")
            return check, None
        check.source = "humanoid_gpt"
        declared = declared_ours(meta)
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
        declared = declared_beyondmimic(props)
    else:
        layout = layout_of(path)
        if layout is not None and layout.name == "holosoma":
            check.source = layout.name
            try:
                declared = declared_holosoma(path, g1)
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
