"""Other projects' G1 motion layouts (:mod:`humanoid_gpt.motion.io` dispatches to them): BeyondMimic NPZ, holosoma
retargeting and whole-body-tracking NPZ, AMASS-retargeted-to-G1 Isaac Lab NPZ and G1 ``.npy``; joint and body orders
are read by name, quaternion orders and relative root heights detected, and every clip is validated by the reader
that calls these."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import MotionFormatError
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.file_checks import CSV_COLUMNS, check_shape, load_npz, require_keys
from humanoid_gpt.motion.kinematics import lowest_foot_points
from humanoid_gpt.motion.rates import (
    MotionWarning,
    infer_provenance,
    npz_rate,
    resolve_fps,
)
from humanoid_gpt.motion.validate import (
    QUAT_ORDERS,
    as_wxyz,
    quaternion_order_verdict,
)
from humanoid_gpt.robot.g1 import G1, G1_JOINT_NAMES, ROOT_BODY, load_g1

BEYONDMIMIC_KEYS = ("fps", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
RELATIVE_HEIGHT_SINK = 0.25
"""m: feet this far below the floor (forward kinematics) mean a root height relative to the start, not absolute."""


def breadth_first_bodies(g1: G1) -> tuple[str, ...]:
    """The G1's bodies breadth-first over the kinematic tree (children in model order): Isaac Lab's articulation
    order, and so the order of BeyondMimic NPZs made in Isaac Lab. Derived from the model, not hard-coded."""
    model = g1.model(actuators="none", floor=False)
    order, queue = [], [0]
    while queue:
        children = [b for b in range(1, model.nbody) if model.body_parentid[b] == queue[0]]
        queue = queue[1:] + children
        order += children
    return tuple(model.body(b).name for b in order)


def joint_order_permutations(g1: G1) -> dict[str, np.ndarray]:
    """Joint orders other tools store G1 joints in, as indices into :data:`G1_JOINT_NAMES`.

    ``unitree``: the G1's own order (MuJoCo's depth-first tree order). ``isaaclab``: breadth-first over the tree
    (see :func:`breadth_first_bodies`); each G1 body below the pelvis carries one joint.
    """
    model = g1.model(actuators="none", floor=False)
    rank = {name: i for i, name in enumerate(breadth_first_bodies(g1))}
    bfs = sorted(g1.joint_names, key=lambda j: rank[model.body(model.jnt_bodyid[model.joint(j).id]).name])
    return {
        "unitree": np.arange(len(g1.joint_names)),
        "isaaclab": np.array([g1.joint_names.index(j) for j in bfs]),
    }


def read_beyondmimic_npz(
    path: str | Path, g1: G1 | None = None, joint_order: str = "auto", fps: float | None = None
) -> MotionClip:
    """A BeyondMimic NPZ: root pose from body 0 (the pelvis), joints from ``joint_pos``.

    BeyondMimic stores joints in its simulator's order and no names. ``joint_order="auto"`` tries the known orders
    (see :func:`joint_order_permutations`) and keeps the one whose forward kinematics reproduces the stored body
    positions (bodies matched by position, as the file has no body names).
    """
    path = Path(path)
    data = load_npz(path)
    require_keys(data, path, BEYONDMIMIC_KEYS[:5], "a BeyondMimic NPZ")
    joint_pos = np.asarray(data["joint_pos"], dtype=np.float64)
    body_pos = np.asarray(data["body_pos_w"], dtype=np.float64)
    body_quat = np.asarray(data["body_quat_w"], dtype=np.float64)
    check_shape(joint_pos, path, "joint_pos", (None, len(G1_JOINT_NAMES)))
    check_shape(body_pos, path, "body_pos_w", (joint_pos.shape[0], None, 3))
    check_shape(body_quat, path, "body_quat_w", (joint_pos.shape[0], body_pos.shape[1], 4))
    g1 = g1 or load_g1()
    perms = joint_order_permutations(g1)
    if joint_order != "auto":
        if joint_order not in perms:
            raise ValueError(f"joint_order must be 'auto' or one of {sorted(perms)}, got {joint_order!r}")
        perms = {joint_order: perms[joint_order]}
    rate = npz_rate(data, path, fps)
    errors = {}
    for name, perm in perms.items():
        q = np.empty_like(joint_pos)
        q[:, perm] = joint_pos
        clip = MotionClip(
            path.stem,
            rate.fps,
            body_pos[:, 0],
            body_quat[:, 0],
            q,
            {**infer_provenance(path), "source_format": "beyondmimic", "joint_order": name, **rate.provenance()},
        )
        errors[name] = _body_match_error(g1, clip, body_pos)
        if errors[name] < 0.01 or len(perms) == 1:
            return clip
    raise MotionFormatError(
        f"{path}: no known joint order reproduces the stored body positions (max error per order: "
        + ", ".join(f"{k} {v * 1000:.0f} mm" for k, v in errors.items())
        + "); the file is not a G1 29-DoF motion, or pass joint_order explicitly"
    )


def _body_match_error(g1: G1, clip: MotionClip, body_pos: np.ndarray, frames: int = 5) -> float:
    """Worst distance between stored bodies and their nearest FK body, over a few frames spread through the clip."""
    from humanoid_gpt.motion.kinematics import forward_kinematics

    idx = np.unique(np.linspace(0, clip.num_frames - 1, frames).astype(int))
    fk = forward_kinematics(g1, clip.qpos()[idx]).pos  # (f, B, 3)
    dist = np.linalg.norm(body_pos[idx][:, :, None, :] - fk[:, None, :, :], axis=-1)  # (f, stored, fk)
    return float(dist.min(axis=2).max())


def read_holosoma_npz(path: str | Path, fps: float | None = None) -> MotionClip:
    """A holosoma retargeting NPZ: ``qpos`` (T, 36) = root position, root quaternion (w, x, y, z), 29 joints.

    The rate: ``fps`` option, else the file's ``fps`` key, else its name or a manifest (:func:`resolve_fps`); never
    assumed."""
    path = Path(path)
    data = load_npz(path)
    require_keys(data, path, ["qpos"], "a holosoma NPZ")
    qpos = np.asarray(data["qpos"], dtype=np.float64)
    check_shape(qpos, path, "qpos", (None, CSV_COLUMNS))
    rate = npz_rate(data, path, fps)
    prov = {**infer_provenance(path), "source_format": "holosoma", **rate.provenance()}
    return MotionClip(path.stem, rate.fps, qpos[:, :3], qpos[:, 3:7], qpos[:, 7:], prov)


def _joint_base(name: str) -> str:
    name = name.strip().lower()
    return name[: -len("_joint")] if name.endswith("_joint") else name


def g1_joint_columns(names: Iterable, path: Path, key: str) -> tuple[np.ndarray, list[str]]:
    """Match stored joint ``names`` (with or without the ``_joint`` suffix) to the G1's 29 joints.

    Returns ``cols`` such that ``block[:, cols]`` is in :data:`G1_JOINT_NAMES` order, where ``block`` holds the 29
    joint columns in the stored order, and the names that are not G1 joints (a root or object joint listed before or
    after the 29). Anything else (a missing, repeated or foreign joint among them) is a :class:`MotionFormatError`.
    """
    names = [str(n) for n in np.asarray(names).reshape(-1)]
    g1_index = {_joint_base(j): i for i, j in enumerate(G1_JOINT_NAMES)}
    index = [g1_index.get(_joint_base(n)) for n in names]
    hits = [i for i, j in enumerate(index) if j is not None]
    found = [index[i] for i in hits]
    missing = [G1_JOINT_NAMES[j] for j in range(len(G1_JOINT_NAMES)) if j not in found]
    repeated = sorted({names[i] for i in hits if found.count(index[i]) > 1})
    foreign = [n for n, j in zip(names, index, strict=True) if j is None]
    if missing or repeated or hits != list(range(hits[0], hits[0] + len(hits))):
        problems = []
        if missing:
            problems.append(f"missing {missing[:4]}{'...' if len(missing) > 4 else ''} ({len(missing)} joints)")
        if repeated:
            problems.append(f"repeated {repeated[:4]}")
        if foreign:
            problems.append(f"not G1 joints {foreign[:4]}{'...' if len(foreign) > 4 else ''}")
        raise MotionFormatError(
            f"{path}: '{key}' does not name the Unitree G1's 29 joints ({'; '.join(problems) or 'not one block'}); "
            f"this reader takes G1 29-DoF motions only (joints {G1_JOINT_NAMES[0]}, ..., with or without '_joint')"
        )
    cols = np.empty(len(G1_JOINT_NAMES), dtype=np.int64)
    for column, i in enumerate(hits):
        cols[index[i]] = column
    return cols, foreign


def _body_index(names: Iterable, path: Path, key: str, body: str = ROOT_BODY) -> int:
    names = [str(n).strip().lower() for n in np.asarray(names).reshape(-1)]
    if body not in names:
        raise MotionFormatError(
            f"{path}: no '{body}' in '{key}' ({names[:4]}...); the root pose is read from the G1's pelvis body"
        )
    return names.index(body)


def read_holosoma_wbt_npz(path: str | Path, fps: float | None = None) -> MotionClip:
    """A holosoma whole-body-tracking NPZ (the output of holosoma's ``convert_data_format_mj``).

    ``joint_pos`` (N, 36) = root position, root quaternion (w, x, y, z), 29 joints (or (N, 29) joints only, the
    root then taken from the ``pelvis`` body of ``body_pos_w`` / ``body_quat_w``); ``joint_vel`` (N, 35);
    ``body_pos_w``, ``body_quat_w``, ``body_lin_vel_w``, ``body_ang_vel_w`` (N, B, .); ``joint_names`` (the 29,
    possibly after root names); ``body_names`` (``world`` first); ``fps``; optional ``object_*`` arrays of an object
    the motion interacts with. Joints are put in the G1 order by ``joint_names``; ``provenance["has_objects"]``
    records whether the motion involves an object (the corpus filter drops those).
    """
    path = Path(path)
    data = load_npz(path)
    fmt = "a holosoma whole-body-tracking NPZ"
    require_keys(data, path, ["joint_pos"], fmt)
    joint_pos = np.asarray(data["joint_pos"], dtype=np.float64)
    if joint_pos.ndim != 2 or joint_pos.shape[1] not in (CSV_COLUMNS, len(G1_JOINT_NAMES)):
        raise MotionFormatError(
            f"{path}: 'joint_pos' has shape {joint_pos.shape}, expected (N, {CSV_COLUMNS}) (root position, root "
            f"quaternion w, x, y, z, 29 joints) or (N, {len(G1_JOINT_NAMES)}) with the pelvis in body_pos_w"
        )
    if joint_pos.shape[1] == CSV_COLUMNS:
        root_pos, root_quat, joints = joint_pos[:, :3], joint_pos[:, 3:7], joint_pos[:, 7:]
        root_from = "joint_pos[:, :7]"
    else:
        require_keys(data, path, ["body_names", "body_pos_w", "body_quat_w"], fmt + " with (N, 29) joint_pos")
        body = _body_index(data["body_names"], path, "body_names")
        body_pos = np.asarray(data["body_pos_w"], dtype=np.float64)
        body_quat = np.asarray(data["body_quat_w"], dtype=np.float64)
        check_shape(body_pos, path, "body_pos_w", (joint_pos.shape[0], None, 3))
        check_shape(body_quat, path, "body_quat_w", (joint_pos.shape[0], body_pos.shape[1], 4))
        root_pos, root_quat, joints = body_pos[:, body], body_quat[:, body], joint_pos
        root_from = f"body_pos_w / body_quat_w of body {body} (pelvis)"
    if "joint_names" in data:
        cols, extra = g1_joint_columns(data["joint_names"], path, "joint_names")
        joints, joint_order = joints[:, cols], "by joint_names"
    else:
        extra, joint_order = [], "G1 order (no joint_names)"
    rate = npz_rate(data, path, fps)
    objects = sorted(k for k in data if k.startswith("object_"))
    prov = {
        **infer_provenance(path),
        "source_format": "holosoma_wbt",
        "joint_order": joint_order,
        "root_from": root_from,
        "has_objects": bool(objects),
        "object_keys": objects,
        **rate.provenance(),
    }
    if extra:
        prov["other_joint_names"] = extra
    return MotionClip(path.stem, rate.fps, root_pos, root_quat, joints, prov)


AMASS_ISAACLAB_KEYS = ("dof_names", "dof_positions", "body_names", "body_positions", "body_rotations")


def read_amass_isaaclab_npz(path: str | Path, fps: float | None = None) -> MotionClip:
    """AMASS retargeted to the G1 in the Isaac Lab motion-loader NPZ layout: ``fps``, ``dof_names``,
    ``dof_positions`` (N, 29), ``body_names``, ``body_positions`` (N, B, 3), ``body_rotations`` (N, B, 4) w, x, y, z,
    and velocities (``dof_velocities``, ``body_linear_velocities``, ``body_angular_velocities``; recomputed, not
    read). The root pose is the ``pelvis`` body's, joints are put in the G1 order by ``dof_names``. AMASS-derived
    motion inherits AMASS's non-commercial licence whatever the copy's own tags say: recorded in the provenance.
    """
    path = Path(path)
    data = load_npz(path)
    require_keys(data, path, AMASS_ISAACLAB_KEYS, "an AMASS-for-G1 Isaac Lab NPZ")
    dof = np.asarray(data["dof_positions"], dtype=np.float64)
    body_pos = np.asarray(data["body_positions"], dtype=np.float64)
    body_rot = np.asarray(data["body_rotations"], dtype=np.float64)
    check_shape(dof, path, "dof_positions", (None, len(G1_JOINT_NAMES)))
    n_bodies = np.asarray(data["body_names"]).size
    check_shape(body_pos, path, "body_positions", (dof.shape[0], n_bodies, 3))
    check_shape(body_rot, path, "body_rotations", (dof.shape[0], n_bodies, 4))
    cols, _ = g1_joint_columns(data["dof_names"], path, "dof_names")
    pelvis = _body_index(data["body_names"], path, "body_names")
    rate = npz_rate(data, path, fps)
    prov = {
        **infer_provenance(path),
        "source_format": "amass_isaaclab",
        "joint_order": "by dof_names",
        "root_from": f"body_positions / body_rotations of body {pelvis} (pelvis)",
        "licence": "AMASS-derived: AMASS non-commercial research licence (inherited)",
        **rate.provenance(),
    }
    return MotionClip(path.stem, rate.fps, body_pos[:, pelvis], body_rot[:, pelvis], dof[:, cols], prov)


def _ground_relative_height(path: Path, g1: G1, root_pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> float:
    """Raise the root of a clip whose height is relative to the start (first-frame pelvis near 0 m while the joints
    say the G1 stands, so forward kinematics puts the feet far below the floor) until the lowest foot point rests on
    the floor (5th percentile over frames). Returns the shift (m), 0 when the height was already absolute."""
    ok = np.isfinite(root_pos).all(axis=1) & np.isfinite(quat).all(axis=1) & np.isfinite(joints).all(axis=1)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return 0.0
    idx = idx[np.unique(np.linspace(0, idx.size - 1, min(idx.size, 300)).astype(int))]
    q = quat[idx] / np.linalg.norm(quat[idx], axis=1, keepdims=True)
    floor = float(np.percentile(lowest_foot_points(g1, np.concatenate([root_pos[idx], q, joints[idx]], 1)), 5))
    if floor > -RELATIVE_HEIGHT_SINK:
        return 0.0
    shift = -floor
    root_pos[:, 2] += shift
    warnings.warn(
        f"{path}: the root height is relative to the start, not above the floor (first-frame pelvis at "
        f"{root_pos[0, 2] - shift:.3f} m while the joints stand the G1 up: forward kinematics puts its feet "
        f"{shift:.2f} m below the floor). Grounded the clip: root raised by {shift:.3f} m so the lowest foot point "
        "rests on the floor (5th percentile over frames)",
        MotionWarning,
        stacklevel=4,
    )
    return shift


def read_g1_npy(
    path: str | Path, fps: float | None = None, g1: G1 | None = None, quat_order: str = "auto"
) -> MotionClip:
    """A G1-layout ``.npy`` (N, 36): root position, root quaternion, 29 joints in the G1 order.

    - The quaternion order is not stated: ``quat_order="auto"`` reads it both ways (w, x, y, z and x, y, z, w) and
      keeps the one whose pelvis is upright and whose planted feet are flat and stay put
      (:func:`humanoid_gpt.motion.validate.quaternion_order_verdict`, independent of the heading); undecidable ->
      :class:`MotionFormatError` asking for ``quat_order``.
    - The root height may be relative to the start (first-frame pelvis at ~0 m): detected by forward kinematics
      (feet more than :data:`RELATIVE_HEIGHT_SINK` below the floor) and grounded, with a :class:`MotionWarning`.
    - The rate: ``fps`` option, the file name (``..._30fps.npy``, ``..._fps50.npy``, ``...@60hz.npy``) or a
      manifest/card beside it; otherwise an error (no dataset rule covers ``.npy`` files, so none is assumed).
    """
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise MotionFormatError(f"{path}: not a readable .npy array ({e}); the file is corrupt or not an array") from e
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise MotionFormatError(f"{path}: holds {getattr(arr, 'dtype', type(arr))} data, expected numbers")
    arr = np.asarray(arr, dtype=np.float64)
    check_shape(arr, path, "the array", (None, CSV_COLUMNS))
    rate = resolve_fps(path, fps)
    g1 = g1 or load_g1()
    raw, root_pos, joints = arr[:, 3:7], arr[:, :3].copy(), arr[:, 7:]
    if quat_order == "auto":
        ok = np.isfinite(arr).all(axis=1) & (np.linalg.norm(np.nan_to_num(raw), axis=1) > 0.5)
        if ok.sum() < 2:
            raise MotionFormatError(f"{path}: fewer than 2 frames with a finite, non-zero root quaternion")
        readings = {order: as_wxyz(raw[ok], order) for order in QUAT_ORDERS}
        verdict = quaternion_order_verdict(readings, root_pos[ok], joints[ok], g1, fps=rate.fps)
        if verdict.best is None:
            raise MotionFormatError(
                f"{path}: cannot tell whether the root quaternion is stored w, x, y, z or x, y, z, w ({verdict.by}: "
                f"{verdict.describe()}); pass quat_order='wxyz' or 'xyzw' (read_g1_npy)"
            )
        order, order_from = verdict.best, f"detected ({verdict.by}: {verdict.describe()})"
    elif quat_order in QUAT_ORDERS:
        order, order_from = quat_order, "option"
    else:
        raise ValueError(f"quat_order must be 'auto' or one of {QUAT_ORDERS}, got {quat_order!r}")
    quat = as_wxyz(raw, order)
    shift = _ground_relative_height(path, g1, root_pos, quat, joints)
    prov = {
        **infer_provenance(path),
        "source_format": "g1_npy",
        "quat_order": order,
        "quat_order_from": order_from,
        **rate.provenance(),
    }
    if shift:
        prov["root_height"] = f"relative to the start; grounded by forward kinematics (+{shift:.3f} m)"
        prov["grounded_by_m"] = shift
    return MotionClip(path.stem, rate.fps, root_pos, quat, joints, prov)
