"""Raw global joint positions: (T, J, 3) arrays in ``.npy`` / ``.npz`` files, with a skeleton preset or mapping file.

Such files carry no joint names: a preset (:data:`.names.PRESETS`: ``smpl24``, ``smpl22``, ``smplh52``, ``phc24``,
``phc22``, ``phc52``) or a mapping file says what each column is.

- ``.npy``: the array itself. ``.npz``: the array under ``positions``, ``joints``, ``joint_positions`` or
  ``keypoints3d`` (or ``key=``), and optionally the rate under ``fps``, ``mocap_framerate`` or ``mocap_frame_rate``.
- Preset detection by J when no preset or mapping is given. 22, 24 and 52 columns fit both SMPL's order and PHC's
  limb-by-limb order; they are told apart by geometry: in SMPL order columns 1 and 2 are the two hips and column 3
  the first spine joint, all about as far from the pelvis (column 0) as each other; in PHC order column 2 is the left
  knee and column 3 the left ankle, 3-10x farther from the pelvis than the hip (column 1). The medians over frames
  of |p2 - p0| / |p1 - p0| and |p3 - p0| / |p1 - p0| decide (both below 2: SMPL; both above: PHC; else an error
  asking for ``preset=``).
- Mapping file (JSON; YAML too when PyYAML is installed): ``joints`` (names in column order, required),
  ``parents`` (optional: a list with one parent name, or null for the root, per joint; or a {joint: parent} dict),
  ``canonical`` (optional {their name: canonical name}), and optional ``up_axis``, ``unit``, ``fps``.
- Unit: ``unit=`` (or the mapping's), else detected from body size: with parents, the longest bone path; without,
  the 90th percentile over frames of the largest extent of the body (:mod:`.conventions`).
- Up axis: ``up_axis=`` (or the mapping's), else the axis along which the head is above the feet ('y' converted to
  Z up by (x, y, z) -> (z, x, y), 'z' kept); an error when neither is known.
- fps: ``fps=`` when given (a warning when the file says otherwise), else the file's, else the mapping's, else an
  error: a rate is never guessed. ``provenance["fps_source"]`` says which.

Rotations are None (positions only). With parents, the skeleton's offsets take each bone's direction in the first
frame and its median length over frames (raw positions have no rest pose).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from humanoid_gpt.governance.mocap.conventions import (
    SPAN_PER_STATURE,
    MocapWarning,
    detect_unit,
    detect_up_axis,
    parse_unit,
    parse_up_axis,
    skeleton_span,
    z_up_matrix,
)
from humanoid_gpt.governance.mocap.names import CANONICAL_NAMES, PRESETS
from humanoid_gpt.governance.mocap.skeleton import HumanMotion, Skeleton, mocap_error

POSITION_KEYS = ("positions", "joints", "joint_positions", "keypoints3d")
FPS_KEYS = ("fps", "mocap_framerate", "mocap_frame_rate")
AMASS_KEYS = ("poses", "trans", "betas")
_AMBIGUOUS = {22: ("smpl22", "phc22"), 24: ("smpl24", "phc24"), 52: ("smplh52", "phc52")}


def amass_error(path: Path) -> Exception:
    return mocap_error(
        path,
        "keys poses/trans/betas",
        "this is an AMASS-style SMPL parameter file (body-model parameters, not joint positions); read_smpl reads it, "
        "running the SMPL body model through the smplx package",
        "read it with read_mocap / read_smpl (or `hgpt retarget`), with the body models in HGPT_BODY_MODELS",
    )


def _load_array(path: Path, key: str | None) -> tuple[np.ndarray, float | None, str]:
    """(positions, fps in the file or None, where the positions came from)."""
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False), None, "npy"
        except ValueError as e:
            raise mocap_error(
                path, "array", f"not a plain numeric .npy ({e})", "save a float array (T, J, 3)"
            ) from None
    with np.load(path, allow_pickle=False) as data:
        keys = list(data.keys())
        if all(k in keys for k in AMASS_KEYS):
            raise amass_error(path)
        candidates = [key] if key else [k for k in POSITION_KEYS if k in keys]
        if not candidates or candidates[0] not in keys:
            raise mocap_error(
                path,
                "keys",
                f"no joint positions under {key!r}" if key else f"no key among {', '.join(POSITION_KEYS)}",
                f"the file has {', '.join(keys) or 'no arrays'}; pass key= naming the (T, J, 3) positions",
            )
        positions = data[candidates[0]]
        fps = None
        for k in FPS_KEYS:
            if k in keys:
                fps = float(np.asarray(data[k]).reshape(-1)[0])
                if not (np.isfinite(fps) and fps > 0):
                    raise mocap_error(path, k, f"frame rate {fps} is not positive", "store the rate in frames/s")
                break
        return positions, fps, candidates[0]


def _load_mapping(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise mocap_error(
                path, "format", "YAML needs PyYAML, not installed", "install pyyaml or use JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise mocap_error(path, "syntax", str(e).replace("\n", " "), "fix the YAML") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise mocap_error(path, f"line {e.lineno}", e.msg, "fix the JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("joints"), list) or not data["joints"]:
        raise mocap_error(path, "joints", "missing or not a list of names", "list the joint names in column order")
    return data


def _mapping_skeleton(mapping: dict, path: Path, J: int) -> tuple[list[str], list[int] | None, list[str | None]]:
    """(names, parent indices or None, canonical names) from a mapping, checked against the array's J."""
    names = [str(n) for n in mapping["joints"]]
    if len(names) != J:
        raise mocap_error(
            path,
            "joints",
            f"lists {len(names)} joints but the positions have {J} columns",
            f"list exactly {J} names, one per column, in column order",
        )
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise mocap_error(path, "joints", f"names repeated: {dup}", "give every column its own name")
    index = {n: i for i, n in enumerate(names)}

    def known(name, field: str) -> str:
        if name not in index:
            raise mocap_error(
                path, field, f"names joint '{name}', which is not in 'joints'", f"use one of: {', '.join(names)}"
            )
        return name

    canonical: list[str | None] = [None] * J
    for theirs, canon in (mapping.get("canonical") or {}).items():
        if canon not in CANONICAL_NAMES:
            raise mocap_error(
                path, "canonical", f"'{theirs}: {canon}': unknown canonical name", f"use {', '.join(CANONICAL_NAMES)}"
            )
        canonical[index[known(theirs, "canonical")]] = canon
    parents = mapping.get("parents")
    if parents is None:
        return names, None, canonical
    if isinstance(parents, dict):
        parents = [parents.get(n) for n in names]
    if len(parents) != J:
        raise mocap_error(
            path, "parents", f"{len(parents)} entries for {J} joints", "give one parent (or null) per joint"
        )
    return names, [-1 if p is None else index[known(p, "parents")] for p in parents], canonical


def _topological(parents: list[int], path: Path) -> list[int]:
    """Column order with every parent before its children, as close to the file's as possible (unchanged when it
    already is), or an error on a cycle."""
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(parents):
        ready = next(
            (j for j in range(len(parents)) if j not in placed and (parents[j] < 0 or parents[j] in placed)), None
        )
        if ready is None:
            raise mocap_error(path, "parents", "the parents form a cycle", "give the tree one root (parent null)")
        order.append(ready)
        placed.add(ready)
    return order


def _detect_preset(pos: np.ndarray, path: Path) -> tuple[str, str]:
    J = pos.shape[1]
    if J not in _AMBIGUOUS:
        by_count = ", ".join(f"{p.name} ({len(p.joints)})" for p in PRESETS.values())
        raise mocap_error(path, "columns", f"no preset has {J} joints ({by_count})", "pass a mapping file (mapping=)")
    d = np.median(np.linalg.norm(pos[:, 1:4] - pos[:, :1], axis=-1), axis=0)
    r2, r3 = d[1] / max(d[0], 1e-9), d[2] / max(d[0], 1e-9)
    smpl, phc = _AMBIGUOUS[J]
    if r2 < 2 and r3 < 2:
        return smpl, f"detected: columns 1-3 equidistant from the pelvis (ratios {r2:.1f}, {r3:.1f}): SMPL order"
    if r2 > 2 and r3 > 2:
        return phc, f"detected: columns 2-3 far below the hip (ratios {r2:.1f}, {r3:.1f}): knee and ankle, PHC order"
    raise mocap_error(
        path,
        "columns",
        f"{J} columns fit {smpl} and {phc}; the geometry does not tell (ratios {r2:.1f}, {r3:.1f})",
        f"pass preset='{smpl}' or preset='{phc}'",
    )


def read_positions(
    path: str | Path,
    *,
    preset: str | None = None,
    mapping: str | Path | None = None,
    unit: str | float | None = None,
    up_axis: str | None = None,
    fps: float | None = None,
    key: str | None = None,
) -> HumanMotion:
    """Read raw global joint positions (T, J, 3) into a :class:`HumanMotion` (metres, Z up, no rotations)."""
    path = Path(path)
    raw, file_fps, source_key = _load_array(path, key)
    if raw.ndim != 3 or raw.shape[2] != 3 or raw.shape[0] == 0:
        raise mocap_error(path, source_key, f"shape {raw.shape}, expected (T, J, 3) with T > 0", "save (T, J, 3)")
    if not np.issubdtype(raw.dtype, np.number):
        raise mocap_error(path, source_key, f"dtype {raw.dtype} is not numeric", "save float positions")
    pos = raw.astype(np.float64)
    if not np.isfinite(pos).all():
        t, j, _ = np.argwhere(~np.isfinite(pos))[0]
        raise mocap_error(path, source_key, f"NaN or inf at frame {t}, column {j}", "fill the gaps before reading")
    J = pos.shape[1]

    settings: dict = {}
    if mapping is not None and preset is not None:
        raise ValueError(f"{path}: pass preset= or mapping=, not both")
    if mapping is not None:
        mapping = Path(mapping)
        settings = _load_mapping(mapping)
        names, parents, canonical = _mapping_skeleton(settings, mapping, J)
        preset_name, preset_source = None, f"mapping {mapping}"
    else:
        if preset is None:
            preset_name, preset_source = _detect_preset(pos, path)
        elif preset in PRESETS:
            preset_name, preset_source = preset, "option"
        else:
            raise ValueError(f"{path}: unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
        p = PRESETS[preset_name]
        if len(p.joints) != J:
            raise mocap_error(
                path, source_key, f"{J} columns but preset {p.name} has {len(p.joints)}", "pass the matching preset"
            )
        names, parents, canonical = list(p.joints), list(p.parents), list(p.canonical)

    columns = list(range(J))
    if parents is not None:
        columns = _topological(parents, mapping or path)
        where = {c: i for i, c in enumerate(columns)}
        names, canonical = [names[c] for c in columns], [canonical[c] for c in columns]
        parents = [-1 if parents[c] < 0 else where[parents[c]] for c in columns]
        pos = pos[:, columns]

    origin = f"{path}" + (f" (mapping {mapping})" if mapping is not None else "")
    unit_name, scale, unit_source = _unit(pos, parents, unit, settings, origin)
    axis, axis_source = _up_axis(pos, canonical, up_axis, settings, origin, path)
    rate, fps_source = _fps(path, fps, file_fps, settings)

    C = z_up_matrix(axis)
    positions = scale * pos @ C.T
    skeleton = None
    if parents is not None:
        par = np.array(parents)
        bones = positions - positions[:, np.maximum(par, 0)]
        lengths = np.median(np.linalg.norm(bones, axis=-1), axis=0)
        first = bones[0] / np.maximum(np.linalg.norm(bones[0], axis=-1, keepdims=True), 1e-12)
        offsets = np.where(par[:, None] < 0, positions[0], first * lengths[:, None])
        skeleton = Skeleton(tuple(names), par, offsets)
    provenance = {
        "path": str(path),
        "format": "positions",
        "key": source_key,
        "preset": preset_name,
        "preset_source": preset_source,
        "mapping": None if mapping is None else str(mapping),
        "unit": unit_name,
        "scale_to_m": scale,
        "unit_source": unit_source,
        "up_axis": axis,
        "up_axis_source": axis_source,
        "fps_source": fps_source,
        "frames": pos.shape[0],
        "columns": columns,  # file column of each joint (joints are reordered only so parents come first)
    }
    return HumanMotion(
        path.stem, rate, skeleton, positions, None, provenance, joint_names=tuple(names), canonical=tuple(canonical)
    )


def _unit(pos, parents, unit, settings, origin: str) -> tuple[str, float, str]:
    chosen = unit if unit is not None else settings.get("unit")
    if chosen is not None:
        try:
            name, scale = parse_unit(chosen)
        except ValueError as e:
            raise ValueError(f"{origin}: {e}") from None
        return name, scale, "option" if unit is not None else "mapping"
    if parents is not None:
        par = np.array(parents)
        lengths = np.median(np.linalg.norm(pos - pos[:, np.maximum(par, 0)], axis=-1), axis=0)
        stature = skeleton_span(par, lengths) / SPAN_PER_STATURE
    else:
        stature = float(np.percentile(np.ptp(pos, axis=1).max(axis=-1), 90))
    name, scale = detect_unit(stature, origin)
    return name, scale, "detected"


def _up_axis(pos, canonical, up_axis, settings, origin: str, path: Path) -> tuple[str, str]:
    head = canonical.index("head") if "head" in canonical else None
    feet = [canonical.index(c) for c in ("left_ankle", "right_ankle", "left_foot", "right_foot") if c in canonical]
    detected = detect_up_axis(pos, head, feet) if head is not None and feet else None
    chosen = up_axis if up_axis is not None else settings.get("up_axis")
    if chosen is not None:
        axis = parse_up_axis(chosen, origin)
        if detected is not None and detected != axis:
            warnings.warn(
                f"{origin}: reading as {axis.upper()}-up, but the head is above the feet along {detected}",
                MocapWarning,
                stacklevel=3,
            )
        return axis, "option" if up_axis is not None else "mapping"
    if detected in ("y", "z"):
        return detected, "detected"
    raise mocap_error(
        path,
        "up axis",
        "cannot tell the up axis: "
        + (f"the head is above the feet along {detected}" if detected else "no head and feet joints to compare"),
        "pass up_axis='y' or 'z' (or set up_axis in the mapping file)",
    )


def _fps(path: Path, fps, file_fps, settings) -> tuple[float, str]:
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"{path}: fps must be positive, got {fps}")
        if file_fps is not None and abs(file_fps - fps) > 1e-6 * fps:
            warnings.warn(f"{path}: file says {file_fps} fps; using fps={fps} as passed", MocapWarning, stacklevel=3)
        return float(fps), "option"
    if file_fps is not None:
        return file_fps, "file"
    if settings.get("fps") is not None:
        return float(settings["fps"]), "mapping"
    raise mocap_error(
        path,
        "fps",
        "no frame rate in the file (keys " + ", ".join(FPS_KEYS) + ") and none given",
        "pass fps= (e.g. fps=30), or store 'fps' in the .npz or the mapping file; it is never guessed",
    )
