"""Policy-check items only a motion export can tell (``hgpt sim2sim check``): mjlab / BeyondMimic files carry their
motion and rsl_rl's normaliser, holosoma's its reference; both are checked against the metadata and the robot (joint
and quaternion order by forward kinematics, the control rate from the motion's velocities, the observation order
against the normaliser, the default pose against the known G1 poses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.check_items import ATOL, Declared, PolicyCheck, differing, in_robot_order
from humanoid_gpt.deploy.layouts import mjlab as mjlab_layout
from humanoid_gpt.deploy.onnx import load_onnx_graph
from humanoid_gpt.robot.g1 import G1, KNEES_BENT_POSE

FK_TOLERANCE = 0.02
"""m: forward kinematics of the motion's joints from its anchor pose puts its bodies this close to body_pos_w."""
Z_LIMIT = 1.5
"""A term's observations on its own motion sit within this many of the normaliser's standard deviations."""


def layout_of(path: Path):
    """The layout that recognises the file, or None."""
    from humanoid_gpt.deploy.layouts import LayoutError, identify

    try:
        return identify(path)
    except LayoutError:
        return None


def check_motion_export(check: PolicyCheck, path: Path, g1: G1) -> None:
    """The items only an mjlab / BeyondMimic file's interface, motion and normaliser can tell."""
    from humanoid_gpt.deploy.layouts import LayoutError

    layout = layout_of(path)
    if layout is not None and layout.name == "holosoma":
        _check_holosoma_motion(check, path)
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


def check_foreign_default(check: PolicyCheck, declared: Declared, g1: G1) -> None:
    """A foreign policy acts about its own default pose (the harness drives it so): a known G1 pose is ok; a known
    pose written in another joint order than joint_names (the classic mistake) or an unknown pose is a mismatch."""
    from humanoid_gpt.motion.formats import joint_order_permutations

    values = declared.default_joint_pos
    poses = {"the robot's own": g1.default_joint_pos, "mjlab/BeyondMimic's knees-bent keyframe": None}
    poses["mjlab/BeyondMimic's knees-bent keyframe"] = np.array([KNEES_BENT_POSE.get(n, 0.0) for n in g1.joint_names])
    got = in_robot_order(declared, values, g1)
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
            "default pose", "mismatch", "outside the joint limits: " + differing(g1, got, got * 0), "export again"
        )
        return
    label, pose = min(poses.items(), key=lambda kv: np.abs(got - kv[1]).max())
    check.add(
        "default pose",
        "mismatch",
        f"not a known G1 pose; against {label}: " + differing(g1, got, pose),
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
    from humanoid_gpt.motion.formats import joint_order_permutations

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
    _check_rate(check, t.joint_pos, t.joint_vel, "csv_to_npz --output_fps 50")


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


def _check_rate(check: PolicyCheck, joint_pos: np.ndarray, joint_vel: np.ndarray, export_hint: str) -> None:
    """The embedded motion's rate: its joint velocities against differences of its joint positions. The graph
    advances one frame per control step, so a motion at another rate plays too fast or too slow."""
    fps = mjlab_layout.FPS
    dq, v = np.diff(joint_pos, axis=0), (joint_vel[1:] + joint_vel[:-1]) / 2
    if (v * v).sum() < 1e-6:
        check.add("control rate (motion)", "info", "the embedded motion is still: its rate cannot be told")
        return
    rate = float((v * v).sum() / (dq * v).sum())
    if abs(rate / fps - 1) < 0.1:
        check.add(
            "control rate (motion)", "ok", f"joint_vel matches joint_pos at {rate:.1f} Hz: one frame per 50 Hz step"
        )
    else:
        check.add(
            "control rate (motion)",
            "mismatch",
            f"the embedded motion's joint_vel matches its joint_pos at {rate:.0f} Hz; the graph advances one frame "
            f"per control step (time_step) and the G1 tasks step at {fps:g} Hz",
            f"export the motion at {fps:g} fps ({export_hint}), or run the policy at {rate:.0f} Hz",
        )


UPRIGHT = 0.5
"""The reference torso's up axis has a world z above this on most frames of a G1 motion (upright within 60 deg)."""


def _check_holosoma_motion(check: PolicyCheck, path: Path) -> None:
    """holosoma embeds joint positions and velocities and the torso's pose only (no pelvis, so no forward-kinematics
    test of the joint order): the rate from the joints, the quaternion order from the torso standing upright."""
    from humanoid_gpt.deploy.layouts import holosoma

    joint_pos, joint_vel, _, quat = holosoma.reference_tables(path)  # quat: ref_quat_xyzw read as x, y, z, w
    _check_rate(check, joint_pos, joint_vel, "holosoma's motion converter at 50 fps")
    up = lambda q: np.median(1 - 2 * (q[:, 1] ** 2 + q[:, 2] ** 2))  # noqa: E731  world z of the body z axis (w first)
    declared, w_first = up(quat), up(quat[:, [1, 2, 3, 0]])  # the raw output read as w, x, y, z
    if declared > UPRIGHT:
        check.add("quaternion order (motion)", "ok", "ref_quat_xyzw read as x, y, z, w keeps the torso upright")
    elif w_first > UPRIGHT:
        check.add(
            "quaternion order (motion)",
            "mismatch",
            f"ref_quat_xyzw read as x, y, z, w turns the torso over (median up-axis z {declared:+.2f}); read w "
            f"first it stands ({w_first:+.2f}): the file stores w, x, y, z under an x, y, z, w name",
            "export the reference quaternion as x, y, z, w (holosoma's exporter does), or rename the output",
        )
    else:
        check.add(
            "quaternion order (motion)",
            "warning",
            f"the reference torso is not upright in either order (median up-axis z {declared:+.2f} / {w_first:+.2f})",
            "check the motion inside the file",
        )
