"""Reading and writing motion files.

Readers: G1 CSV (Unitree / LAFAN1-G1 / G1 Moves; 36 columns, root quaternion x, y, z, w), G1-layout ``.npy`` (N, 36)
(quaternion order detected, relative root height grounded), BeyondMimic NPZ, holosoma retargeting NPZ (``qpos``),
holosoma whole-body-tracking NPZ, AMASS-retargeted-to-G1 Isaac Lab NPZ (``dof_positions``), GMR and PHC motion
pickles (:mod:`humanoid_gpt.motion.pickles`, read without running code), and our own clip NPZ.
Writers: our clip NPZ and BeyondMimic NPZ. Every read is validated (:mod:`humanoid_gpt.motion.validate`); every write
is atomic.

Frame rates are never guessed silently (:func:`~humanoid_gpt.motion.rates.resolve_fps`): a file that stores no rate
gets it from, in order, the ``fps`` option, the file name (``walk_30fps``, ``walk_fps50``, ``walk@60hz``), a
``manifest.json`` or dataset card beside the file, or a per-dataset rule (LAFAN1-G1 is 30 fps). A G1 CSV with none
of these is read at 30 fps with a loud :class:`FrameRateWarning` (once per folder); a ``.npy`` or ``qpos`` NPZ is
refused. ``provenance["fps_source"]`` records which rule gave the rate ("option", "file", "manifest", "dataset rule"
or "assumed"), ``fps_from`` the detail.

Our format (``*.npz`` with ``schema = "humanoid_gpt.motion"``): ``schema_version`` (int), ``fps`` (float),
``root_pos`` (T, 3), ``root_quat_wxyz`` (T, 4), ``joint_pos`` (T, 29), ``joint_names`` (29,) and ``meta_json``
(name and provenance as JSON).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.file_checks import check_shape, require_keys
from humanoid_gpt.motion.kinematics import lowest_foot_points
from humanoid_gpt.motion.rates import (
    ASSUMED_CSV_FPS,
    MotionWarning,
    check_fps,
    infer_provenance,
    npz_rate,
    resolve_fps,
    stored_fps,
)
from humanoid_gpt.motion.validate import (
    QUAT_ORDERS,
    Finding,
    ValidationConfig,
    as_wxyz,
    quaternion_order_verdict,
    validate_clip,
)
from humanoid_gpt.robot.g1 import G1, G1_JOINT_NAMES, ROOT_BODY, load_g1

SCHEMA = "humanoid_gpt.motion"
SCHEMA_VERSION = 1
CSV_COLUMNS = 7 + len(G1_JOINT_NAMES)
BEYONDMIMIC_KEYS = ("fps", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
MOTION_SUFFIXES = (".csv", ".npz", ".npy", ".pkl")
RELATIVE_HEIGHT_SINK = 0.25
"""m: feet this far below the floor (forward kinematics) mean a root height relative to the start, not absolute."""


DOCUMENT_SUFFIXES = (".md", ".txt", ".json", ".yaml", ".yml", ".sha256", ".png", ".jpg", ".pdf", "")
"""What dataset folders hold beside their clips (cards, licences, manifests, checksums, pictures)."""


# Readers ----------------------------------------------------------------------------------------------------------


def read_g1_csv(path: str | Path, fps: float | None = None) -> MotionClip:
    """A G1 CSV: no header, 36 columns: root xyz (m), root quaternion (x, y, z, w), 29 joint angles (rad).

    The format stores no rate: ``fps`` or :func:`resolve_fps` gives it (30 fps assumed, loudly, when nothing does).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise MotionFormatError(
            f"{path}: not a text CSV (binary data at byte {e.start}); a G1 CSV is plain text, one row of "
            f"{CSV_COLUMNS} numbers per frame. Is it another format with a .csv name?"
        ) from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise MotionFormatError(f"{path}: the file is empty; a G1 CSV has one row of {CSV_COLUMNS} numbers per frame")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines):
        n = line.count(",") + 1
        if n != CSV_COLUMNS:
            hint = (
                "the file looks truncated (its last row is incomplete); re-export or drop that row"
                if i == len(lines) - 1 and n < CSV_COLUMNS
                else f"a G1 CSV has {CSV_COLUMNS} columns: root x, y, z, quaternion x, y, z, w, then 29 joints in "
                "the G1 order"
            )
            raise MotionFormatError(f"{path}: line {i + 1} has {n} columns, expected {CSV_COLUMNS}: {hint}")
    try:
        data = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise MotionFormatError(f"{path}: not a numeric G1 CSV ({e}); a header row or a stray text field?") from e
    quat = R.xyzw_to_wxyz(torch.from_numpy(data[:, 3:7])).numpy()
    rate = resolve_fps(path, fps, assume=ASSUMED_CSV_FPS)  # after parsing: a refused file needs no rate
    prov = {**infer_provenance(path), "source_format": "g1_csv", **rate.provenance()}
    return MotionClip(path.stem, rate.fps, data[:, :3], quat, data[:, 7:], prov)


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
    data = _load_npz(path)
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
    data = _load_npz(path)
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
    data = _load_npz(path)
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
    data = _load_npz(path)
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


def read_clip_npz(path: str | Path, fps: float | None = None) -> MotionClip:
    """Our own clip NPZ (see the module docstring)."""
    path = Path(path)
    data = _load_npz(path)
    require_keys(
        data,
        path,
        ["schema_version", "fps", "root_pos", "root_quat_wxyz", "joint_pos", "joint_names", "meta_json"],
        "a humanoid_gpt clip",
    )
    version = int(data["schema_version"])
    if version > SCHEMA_VERSION:
        raise MotionFormatError(
            f"{path}: schema version {version} is newer than this reader ({SCHEMA_VERSION}); upgrade humanoid_gpt"
        )
    names = tuple(str(n) for n in data["joint_names"])
    joint_pos = np.asarray(data["joint_pos"], dtype=np.float64)
    check_shape(joint_pos, path, "joint_pos", (None, len(names)))
    if set(names) != set(G1_JOINT_NAMES) or len(names) != len(G1_JOINT_NAMES):
        raise MotionFormatError(f"{path}: joint_names {names[:3]}... are not the G1's 29 joints")
    order = [names.index(j) for j in G1_JOINT_NAMES]  # files may store another order; the names say which
    meta = json.loads(str(data["meta_json"]))
    rate = stored_fps(data, path, fps)
    provenance = dict(meta.get("provenance", {}))
    if rate.source == "option" or "fps_source" not in provenance:
        provenance.update(rate.provenance())  # else keep how the rate was first found (an assumption stays one)
    return MotionClip(
        meta.get("name", path.stem),
        rate.fps,
        data["root_pos"],
        data["root_quat_wxyz"],
        joint_pos[:, order],
        provenance,
    )


def _load_npz(path: Path):
    try:
        return dict(np.load(path, allow_pickle=False))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise MotionFormatError(f"{path}: not a readable NPZ ({e}); the file is corrupt or truncated") from e


def npz_kind(keys: Iterable[str] | Mapping[str, np.ndarray]) -> str:
    """The layout of an NPZ from its keys (pass the loaded arrays to also use shapes: a 36-wide ``joint_pos`` is
    holosoma whole-body tracking, not BeyondMimic)."""
    shapes = {k: np.shape(v) for k, v in keys.items()} if isinstance(keys, Mapping) else {}
    keys = set(keys)
    if "schema" in keys or "meta_json" in keys:
        return "humanoid_gpt"
    if {"dof_positions", "body_positions"} <= keys or {"dof_names", "dof_positions"} <= keys:
        return "amass_isaaclab"
    if "joint_pos" in keys:
        wide = shapes.get("joint_pos", ())[1:2] == (CSV_COLUMNS,)
        if wide or "joint_names" in keys or "body_names" in keys:
            return "holosoma_wbt"
        if "body_pos_w" in keys:
            return "beyondmimic"
    if "qpos" in keys:
        return "holosoma"
    raise MotionFormatError(f"unknown NPZ layout with keys {sorted(keys)}")


# Dispatch ---------------------------------------------------------------------------------------------------------


def read_clip(path: str | Path, fps: float | None = None, g1: G1 | None = None) -> MotionClip:
    """Read any supported motion file without validating it. ``fps`` (validated: a clear error when not a number in
    (0, 1000]) is the rate of a file that stores none and overrides a stored one, with a warning; see
    :func:`resolve_fps` for where the rate comes from otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion file {path} does not exist")
    fps = check_fps(fps)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_g1_csv(path, fps)
    if suffix == ".npy":
        return read_g1_npy(path, fps, g1)
    if suffix == ".npz":
        data = _load_npz(path)
        try:
            kind = npz_kind(data)
        except MotionFormatError as e:
            raise MotionFormatError(
                f"{path}: {e}; expected a humanoid_gpt clip, a BeyondMimic, holosoma (qpos or whole-body tracking) "
                "or AMASS-for-G1 Isaac Lab NPZ"
            ) from None
        if kind == "humanoid_gpt":
            return read_clip_npz(path, fps)
        if kind == "beyondmimic":
            return read_beyondmimic_npz(path, g1, fps=fps)
        if kind == "holosoma_wbt":
            return read_holosoma_wbt_npz(path, fps)
        if kind == "amass_isaaclab":
            return read_amass_isaaclab_npz(path, fps)
        return read_holosoma_npz(path, fps)
    if suffix == ".pkl":
        from humanoid_gpt.motion.pickles import read_motion_pickle

        return read_motion_pickle(path, fps)
    raise MotionFormatError(
        f"{path}: unknown motion file type '{path.suffix}'; supported: {', '.join(MOTION_SUFFIXES)}"
    )


def load_clip(
    path: str | Path,
    fps: float | None = None,
    g1: G1 | None = None,
    config: ValidationConfig = ValidationConfig(),
) -> MotionClip:
    """Read and validate a motion file. Errors raise :class:`MotionValidationError` naming the file, field and frame;
    warnings are issued as :class:`MotionWarning`. Root quaternions are renormalized after validation."""
    g1 = g1 or load_g1()
    clip = read_clip(path, fps, g1)
    findings = validate_clip(clip, g1.joint_limits, config, g1)
    raise_on_errors(path, findings)
    for f in findings:
        warnings.warn(f"{path}: {f}", MotionWarning, stacklevel=2)
    clip.root_quat = clip.root_quat / np.linalg.norm(clip.root_quat, axis=1, keepdims=True)
    clip.provenance.setdefault("warnings", [str(f) for f in findings])
    return clip


def raise_on_errors(path: str | Path, findings: Sequence[Finding]) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise MotionValidationError(f"{path}: invalid motion:\n  " + "\n  ".join(str(f) for f in errors))


def find_motion_files(paths: Iterable[str | Path]) -> list[Path]:
    """Motion files named directly or found (recursively, sorted) in the given folders. A folder with none is an
    error; other files in a folder are named in a warning (never skipped without a word)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            found = [f for f in files if f.suffix in MOTION_SUFFIXES]
            # Dataset folders carry their documentation and licences beside the clips: those are expected.
            other = [f for f in files if f.suffix not in (*MOTION_SUFFIXES, *DOCUMENT_SUFFIXES)]
            if not found:
                seen = ", ".join(f.name for f in files[:5]) or "nothing"
                raise MotionFormatError(
                    f"{p}: no motion files ({', '.join(MOTION_SUFFIXES)}) in this folder (found: {seen}); "
                    "point at a folder of G1 clips, or convert the files first"
                )
            if other:
                warnings.warn(
                    f"{p}: {len(other)} file(s) of other types not read as motions: "
                    + ", ".join(f.name for f in other[:5]),
                    MotionWarning,
                    stacklevel=2,
                )
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return out


def load_clips(
    paths: Iterable[str | Path], g1: G1 | None = None, progress: bool = False, fps: float | None = None
) -> list[MotionClip]:
    """Load and validate every motion file in ``paths`` (files or folders). ``fps``: the rate of files that store
    none (see :func:`read_clip`)."""
    fps = check_fps(fps)
    files = find_motion_files(paths)
    g1 = g1 or load_g1()
    if progress:
        from rich.progress import track

        files = track(files, description="loading motions")
    return [load_clip(f, fps=fps, g1=g1) for f in files]


# Writers ----------------------------------------------------------------------------------------------------------


def save_clip(clip: MotionClip, path: str | Path) -> Path:
    """Write ``clip`` in our NPZ format, atomically."""
    path = Path(path)
    meta = {"name": clip.name, "provenance": clip.provenance}
    with atomic_write(path) as f:
        np.savez(
            f,
            schema=np.array(SCHEMA),
            schema_version=np.array(SCHEMA_VERSION),
            fps=np.array(clip.fps),
            root_pos=clip.root_pos,
            root_quat_wxyz=clip.root_quat,
            joint_pos=clip.joint_pos,
            joint_names=np.array(clip.joint_names),
            meta_json=np.array(json.dumps(meta, default=str)),
        )
    return path


def save_beyondmimic_npz(
    clip: MotionClip, path: str | Path, g1: G1 | None = None, joint_order: str = "isaaclab"
) -> Path:
    """Write ``clip`` as a BeyondMimic NPZ (float32, body quaternions w-first, world-frame velocities).

    ``joint_order="isaaclab"`` (default) stores joints and bodies in the breadth-first order BeyondMimic's Isaac Lab
    G1 uses; ``"unitree"`` keeps the G1 order (as the G1 Moves NPZs do). Like BeyondMimic's own converter, the file
    holds N - 1 frames (the last frame has no forward velocity).
    """
    from humanoid_gpt.motion.kinematics import clip_body_states

    g1 = g1 or load_g1()
    perm = joint_order_permutations(g1)[joint_order]
    states = clip_body_states(g1, clip)
    bodies = _body_order(g1, joint_order)
    states = states.select(bodies)
    n = clip.num_frames - 1
    f32 = lambda x: np.ascontiguousarray(x[:n], dtype=np.float32)  # noqa: E731
    with atomic_write(path) as f:
        np.savez(
            f,
            fps=np.array([clip.fps]),
            joint_pos=f32(clip.joint_pos[:, perm]),
            joint_vel=f32(clip.joint_vel()[:, perm]),
            body_pos_w=f32(states.pos),
            body_quat_w=f32(states.quat),
            body_lin_vel_w=f32(states.lin_vel),
            body_ang_vel_w=f32(states.ang_vel),
        )
    return Path(path)


def _body_order(g1: G1, joint_order: str) -> tuple[str, ...]:
    return g1.body_names if joint_order == "unitree" else breadth_first_bodies(g1)
