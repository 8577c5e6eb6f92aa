"""Reading and writing motion files.

Readers: G1 CSV (Unitree / LAFAN1-G1 / G1 Moves; 36 columns, root quaternion x, y, z, w), BeyondMimic NPZ, holosoma
retargeting NPZ (``qpos``), and our own clip NPZ. Writers: our clip NPZ and BeyondMimic NPZ. Every read is validated
(:mod:`humanoid_gpt.motion.validate`); every write is atomic.

Our format (``*.npz`` with ``schema = "humanoid_gpt.motion"``): ``schema_version`` (int), ``fps`` (float),
``root_pos`` (T, 3), ``root_quat_wxyz`` (T, 4), ``joint_pos`` (T, 29), ``joint_names`` (29,) and ``meta_json``
(name and provenance as JSON).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.validate import Finding, ValidationConfig, validate_clip
from humanoid_gpt.robot.g1 import G1, G1_JOINT_NAMES, load_g1

SCHEMA = "humanoid_gpt.motion"
SCHEMA_VERSION = 1
CSV_COLUMNS = 7 + len(G1_JOINT_NAMES)
BEYONDMIMIC_KEYS = ("fps", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")
MOTION_SUFFIXES = (".csv", ".npz")


class MotionWarning(UserWarning):
    """A clip loaded but has findings a curator should look at."""


# Provenance -------------------------------------------------------------------------------------------------------


def infer_provenance(path: Path) -> dict:
    """Source, performer and tags from the file's dataset folder and name conventions.

    LAFAN1-G1: ``walk1_subject1`` -> performer ``subject1``, tag ``walk``. G1 Moves: ``dance__B_DadDance`` -> tag
    ``dance``, performer from the dataset's ``manifest.json`` when it sits beside the file.
    """
    stem = path.name.split(".")[0]
    prov: dict = {"source": path.parent.name, "path": str(path), "performer": None, "tags": []}
    if "__" in stem:
        category, clip = stem.split("__", 1)
        prov["tags"] = [category]
        manifest = path.parent / "manifest.json"
        if manifest.is_file():
            try:
                entry = json.loads(manifest.read_text()).get("clips", {}).get(clip, {})
                prov["performer"] = entry.get("performer")
            except (OSError, json.JSONDecodeError):
                pass  # a broken manifest costs the performer name, not the clip
    elif "_subject" in stem:
        action, subject = stem.rsplit("_", 1)
        prov["performer"] = subject
        prov["tags"] = [action.rstrip("0123456789")]
    return prov


# Readers ----------------------------------------------------------------------------------------------------------


def read_g1_csv(path: str | Path, fps: float) -> MotionClip:
    """A G1 CSV: no header, 36 columns: root xyz (m), root quaternion (x, y, z, w), 29 joint angles (rad)."""
    path = Path(path)
    text = path.read_text()
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
    return MotionClip(path.stem, fps, data[:, :3], quat, data[:, 7:], infer_provenance(path))


def _npz_fps(data, path: Path, fps: float | None) -> float:
    if "fps" in data:
        return float(np.asarray(data["fps"]).reshape(-1)[0])
    if fps is None:
        raise MotionFormatError(f"{path}: no 'fps' key; pass the frame rate explicitly (fps=...)")
    return fps


def _require(data, path: Path, keys: Iterable[str], fmt: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise MotionFormatError(f"{path}: {fmt} needs keys {missing}; found {sorted(data.keys())}")


def _check_shape(arr: np.ndarray, path: Path, key: str, shape: tuple) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape, strict=True))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise MotionFormatError(f"{path}: '{key}' has shape {arr.shape}, expected {want}")


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


def read_beyondmimic_npz(path: str | Path, g1: G1 | None = None, joint_order: str = "auto") -> MotionClip:
    """A BeyondMimic NPZ: root pose from body 0 (the pelvis), joints from ``joint_pos``.

    BeyondMimic stores joints in its simulator's order and no names. ``joint_order="auto"`` tries the known orders
    (see :func:`joint_order_permutations`) and keeps the one whose forward kinematics reproduces the stored body
    positions (bodies matched by position, as the file has no body names).
    """
    path = Path(path)
    data = _load_npz(path)
    _require(data, path, BEYONDMIMIC_KEYS[:5], "a BeyondMimic NPZ")
    joint_pos = np.asarray(data["joint_pos"], dtype=np.float64)
    body_pos = np.asarray(data["body_pos_w"], dtype=np.float64)
    body_quat = np.asarray(data["body_quat_w"], dtype=np.float64)
    _check_shape(joint_pos, path, "joint_pos", (None, len(G1_JOINT_NAMES)))
    _check_shape(body_pos, path, "body_pos_w", (joint_pos.shape[0], None, 3))
    _check_shape(body_quat, path, "body_quat_w", (joint_pos.shape[0], body_pos.shape[1], 4))
    g1 = g1 or load_g1()
    perms = joint_order_permutations(g1)
    if joint_order != "auto":
        if joint_order not in perms:
            raise ValueError(f"joint_order must be 'auto' or one of {sorted(perms)}, got {joint_order!r}")
        perms = {joint_order: perms[joint_order]}
    fps = _npz_fps(data, path, None)
    errors = {}
    for name, perm in perms.items():
        q = np.empty_like(joint_pos)
        q[:, perm] = joint_pos
        clip = MotionClip(
            path.stem,
            fps,
            body_pos[:, 0],
            body_quat[:, 0],
            q,
            {**infer_provenance(path), "source_format": "beyondmimic", "joint_order": name},
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
    """A holosoma retargeting NPZ: ``qpos`` (T, 36) = root position, root quaternion (w, x, y, z), 29 joints."""
    path = Path(path)
    data = _load_npz(path)
    _require(data, path, ["qpos"], "a holosoma NPZ")
    qpos = np.asarray(data["qpos"], dtype=np.float64)
    _check_shape(qpos, path, "qpos", (None, CSV_COLUMNS))
    prov = {**infer_provenance(path), "source_format": "holosoma"}
    return MotionClip(path.stem, _npz_fps(data, path, fps), qpos[:, :3], qpos[:, 3:7], qpos[:, 7:], prov)


def read_clip_npz(path: str | Path) -> MotionClip:
    """Our own clip NPZ (see the module docstring)."""
    path = Path(path)
    data = _load_npz(path)
    _require(
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
    _check_shape(joint_pos, path, "joint_pos", (None, len(names)))
    if set(names) != set(G1_JOINT_NAMES) or len(names) != len(G1_JOINT_NAMES):
        raise MotionFormatError(f"{path}: joint_names {names[:3]}... are not the G1's 29 joints")
    order = [names.index(j) for j in G1_JOINT_NAMES]  # files may store another order; the names say which
    meta = json.loads(str(data["meta_json"]))
    return MotionClip(
        meta.get("name", path.stem),
        float(data["fps"]),
        data["root_pos"],
        data["root_quat_wxyz"],
        joint_pos[:, order],
        meta.get("provenance", {}),
    )


def _load_npz(path: Path):
    try:
        return dict(np.load(path, allow_pickle=False))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise MotionFormatError(f"{path}: not a readable NPZ ({e}); the file is corrupt or truncated") from e


def npz_kind(keys: Iterable[str]) -> str:
    keys = set(keys)
    if "schema" in keys or "meta_json" in keys:
        return "humanoid_gpt"
    if {"joint_pos", "body_pos_w"} <= keys:
        return "beyondmimic"
    if "qpos" in keys:
        return "holosoma"
    raise MotionFormatError(f"unknown NPZ layout with keys {sorted(keys)}")


# Dispatch ---------------------------------------------------------------------------------------------------------


def default_fps(path: Path) -> float:
    """Frame rate of a headerless CSV, by dataset: G1 Moves is 60 fps; LAFAN1-G1 and most others 30 fps."""
    return 60.0 if "g1_moves" in path.parent.name or "__" in path.stem else 30.0


def read_clip(path: str | Path, fps: float | None = None, g1: G1 | None = None) -> MotionClip:
    """Read any supported motion file without validating it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion file {path} does not exist")
    if path.suffix == ".csv":
        return read_g1_csv(path, fps or default_fps(path))
    if path.suffix == ".npz":
        data = _load_npz(path)
        try:
            kind = npz_kind(data.keys())
        except MotionFormatError as e:
            raise MotionFormatError(
                f"{path}: {e}; expected a humanoid_gpt clip, a BeyondMimic or a holosoma NPZ"
            ) from None
        if kind == "humanoid_gpt":
            return read_clip_npz(path)
        if kind == "beyondmimic":
            return read_beyondmimic_npz(path, g1)
        return read_holosoma_npz(path, fps)
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
    clip = read_clip(path, fps, g1)
    findings = validate_clip(clip, (g1 or load_g1()).joint_limits, config)
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
    """Motion files named directly or found (recursively, sorted) in the given folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in MOTION_SUFFIXES and f.is_file())
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return out


def load_clips(paths: Iterable[str | Path], g1: G1 | None = None, progress: bool = False) -> list[MotionClip]:
    """Load and validate every motion file in ``paths`` (files or folders)."""
    files = find_motion_files(paths)
    g1 = g1 or load_g1()
    if progress:
        from rich.progress import track

        files = track(files, description="loading motions")
    return [load_clip(f, g1=g1) for f in files]


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
