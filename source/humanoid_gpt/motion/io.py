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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.file_checks import CSV_COLUMNS, check_shape, load_npz, require_keys
from humanoid_gpt.motion.formats import (
    breadth_first_bodies,
    joint_order_permutations,
    read_amass_isaaclab_npz,
    read_beyondmimic_npz,
    read_g1_npy,
    read_holosoma_npz,
    read_holosoma_wbt_npz,
)
from humanoid_gpt.motion.rates import (
    ASSUMED_CSV_FPS,
    MotionWarning,
    check_fps,
    infer_provenance,
    resolve_fps,
    stored_fps,
)
from humanoid_gpt.motion.validate import (
    Finding,
    ValidationConfig,
    validate_clip,
)
from humanoid_gpt.robot.g1 import G1, G1_JOINT_NAMES, load_g1

SCHEMA = "humanoid_gpt.motion"
SCHEMA_VERSION = 1
MOTION_SUFFIXES = (".csv", ".npz", ".npy", ".pkl")


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


def read_clip_npz(path: str | Path, fps: float | None = None) -> MotionClip:
    """Our own clip NPZ (see the module docstring)."""
    path = Path(path)
    data = load_npz(path)
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
        data = load_npz(path)
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
