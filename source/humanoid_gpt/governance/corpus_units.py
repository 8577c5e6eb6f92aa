"""The corpus build's work units: one per source file, planned from the config, run anywhere (this process or Ray)
and written atomically as ``<output>/.units/<key>.npz`` (see :mod:`humanoid_gpt.governance.corpus`)."""

from __future__ import annotations

import fnmatch
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_gpt.catalog.store import clips_arrays, content_hash, warp_name
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.corpus_config import FORMATS, CorpusConfig, SourceConfig
from humanoid_gpt.governance.filter import analyse_clip
from humanoid_gpt.governance.filter_config import FilterConfig
from humanoid_gpt.governance.warp import WarpConfig, warp_clip
from humanoid_gpt.io_utils import atomic_write, glob_files, sha256_file
from humanoid_gpt.runs import config_hash

UNIT_VERSION = 1
"""Bumped when a unit's content changes for the same inputs (forces recomputation)."""
UNITS = ".units"
"""The folder under the corpus output where finished units wait for assembly."""

# Planning ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitTask:
    """One source file's work, self-contained (it is pickled to Ray workers)."""

    key: str
    source: str
    order: int  # position in the corpus (sources in config order, files sorted)
    path: str
    rel: str
    name: str
    file_sha256: str
    format: str
    fps: float | None
    read: dict
    retarget: dict
    labels: tuple[str, ...]
    unit_path: str
    corpus_fps: float
    filters: dict
    warps: dict
    bodies: tuple[str, ...]
    dtype: str


def source_files(source: SourceConfig, data_root: Path) -> list[Path]:
    """The files of a source, sorted; none is a :class:`ConfigError` naming the source, the field and the fix."""
    found = glob_files(source.path, data_root, FORMATS[source.format])
    if found is None:
        pattern = data_root / source.path
        raise ConfigError(
            f"source {source.name!r}: path {source.path!r} does not exist ({pattern}). Fix: name a file, folder or "
            f"glob under the data root {data_root} (HGPT_DATA_ROOT, or data_root: in the config), or an absolute path"
        )
    pattern, files = found
    suffixes = FORMATS[source.format]
    files = [f for f in files if not any(fnmatch.fnmatchcase(f.name, x) for x in source.exclude)]
    if not files:
        raise ConfigError(
            f"source {source.name!r}: path {source.path!r} ({pattern}) holds no {source.format} files "
            f"({', '.join(suffixes)}). Fix: check the path and the format field"
        )
    return sorted(dict.fromkeys(files))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _clip_names(files: list[Path]) -> list[str]:
    """Names unique within a source: the path under the files' common folder, without its suffix."""
    if len(files) == 1:
        return [files[0].stem]
    base = Path(os.path.commonpath([str(f.parent) for f in files]))
    return [str(f.relative_to(base).with_suffix("")) for f in files]


def plan_units(config: CorpusConfig, progress: bool = False) -> list[UnitTask]:
    """Every source file as a :class:`UnitTask` (config checked, files hashed; nothing written)."""
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.runs import robot_hash

    g1 = load_g1()
    robot = robot_hash(g1.xml_path)
    missing = [b for b in config.bodies if b not in g1.body_names]
    if missing:
        raise ConfigError(f"bodies {missing} are not G1 bodies; known: {', '.join(g1.body_names)}")
    per_source = [(s, source_files(s, config.data_root)) for s in config.sources]
    tasks = []
    shared = {
        "corpus_fps": config.fps,
        "filters": config.filters.as_dict(),
        "warps": config.warps.as_dict(),
        "bodies": tuple(config.bodies),
        "dtype": config.dtype,
    }
    all_files = [(s, f, n) for s, files in per_source for f, n in zip(files, _clip_names(files), strict=True)]
    if progress:
        from tqdm import tqdm

        all_files = tqdm(all_files, desc="hashing sources", unit="file", leave=False)
    for order, (source, path, name) in enumerate(all_files):
        sha = sha256_file(path)
        labels = source.labels_for(path.stem)
        key = config_hash(
            {"unit_version": UNIT_VERSION, "robot": robot, "sha256": sha, "format": source.format},
            {"fps": source.fps, "read": source.read, "retarget": source.retarget, "labels": labels},
            shared,
        )
        tasks.append(
            UnitTask(
                key=key,
                source=source.name,
                order=order,
                path=str(path),
                rel=_relative(path, config.data_root),
                name=name,
                file_sha256=sha,
                format=source.format,
                fps=source.fps,
                read=dict(source.read),
                retarget=dict(source.retarget),
                labels=labels,
                unit_path=str(config.output / UNITS / key[:2] / f"{key}.npz"),
                **shared,
            )
        )
    return tasks


# One unit ---------------------------------------------------------------------------------------------------------


def _read_clip(task: UnitTask, g1):
    """The G1 clip of a task's file: read and validated (g1), or read and retargeted (human mocap)."""
    if task.format == "g1":
        from humanoid_gpt.motion.io import load_clip

        return load_clip(task.path, fps=task.fps, g1=g1)
    from humanoid_gpt.governance.mocap import read_mocap
    from humanoid_gpt.governance.retarget import RetargetConfig, retarget

    options = dict(task.read)
    if task.fps is not None:
        options["fps"] = task.fps
    motion = read_mocap(task.path, **options)
    rt = task.retarget
    clip, _ = retarget(
        motion,
        skeleton=rt.get("skeleton"),
        mapping=rt.get("mapping"),
        height=rt.get("height"),
        fps=rt.get("fps"),
        config=RetargetConfig(**(rt.get("config") or {})),
        g1=g1,
    )
    return clip


def run_unit(task: UnitTask) -> dict:
    """Do one unit (module docstring, step 2) and write its file; returns its metadata. Top-level: Ray pickles it."""
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    meta: dict = {"key": task.key, "unit_version": UNIT_VERSION, "name": task.name, "status": "ok", "error": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what matters (assumed rates, flagged frames) becomes a filter reason
            clip = _read_clip(task, g1)
    except (HGPTError, OSError, ValueError, KeyError) as e:
        text = str(e)
        named = task.path in text or task.rel in text  # readers name the file; say it once
        meta.update(status="error", error=text if named else f"{task.rel}: {text}")
        _write_unit(task, meta, {})
        return meta
    clip = clip.replace(name=Path(task.name).name)
    prov = clip.provenance or {}
    rt = prov.get("retarget") or {}
    meta["provenance"] = {
        "performer": prov.get("performer"),
        "tags": list(prov.get("tags") or []),
        "fps_source": prov.get("fps_source"),
        "has_objects": bool(prov.get("has_objects")),
        "retarget_status": rt.get("status"),
        "retarget_flagged_frames": (rt.get("report") or {}).get("flagged_frames"),
    }
    meta["source_fps"] = clip.fps
    meta["source_frames"] = clip.num_frames
    decision = analyse_clip(clip, g1, FilterConfig.from_dict(task.filters), task.labels, path=task.rel)
    decision.name = task.name
    meta["decision"] = decision.to_dict()
    warps = WarpConfig.from_dict(task.warps)
    entries, kept, offset = [], [], 0
    whole = [(0, clip.num_frames)]
    for a, b in decision.segments:
        base = task.name if decision.segments == whole else f"{task.name}@{a}:{b}"
        for w in warp_clip(clip.slice(a, b), g1, task.corpus_fps, warps):
            entry = {"name": warp_name(base, w.factor), "warp": w.factor, "start": a, "stop": b}
            if w.clip is None:
                entry.update(status="drop", frames=0, reason=w.reason.to_dict(), peak_speed_ratio=w.peak_speed_ratio)
            else:
                n = w.clip.num_frames
                entry.update(
                    status="ok", frames=n, offset=offset, fps=w.clip.fps, peak_speed_ratio=round(w.peak_speed_ratio, 4)
                )
                kept.append((entry, w))
                offset += n
            entries.append(entry)
    arrays: dict[str, np.ndarray] = {}
    if kept:  # one forward-kinematics pass over every kept clip of the file
        arrays = clips_arrays([w.clip for _, w in kept], g1, task.bodies, task.dtype, [w.joint_vel for _, w in kept])
        for entry, _ in kept:
            qpos = arrays["qpos"][entry["offset"] : entry["offset"] + entry["frames"]]
            entry["content_hash"] = content_hash(qpos, entry["fps"])
    meta["clips"] = entries
    _write_unit(task, meta, arrays)
    return meta


def _write_unit(task: UnitTask, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(task.unit_path) as f:
        np.savez(f, meta_json=np.array(json.dumps(meta, default=str)), **arrays)


def read_unit_meta(path: str | Path, key: str) -> dict | None:
    """A unit's metadata when its file is whole and made for ``key``, else None (then it is recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return meta if meta.get("key") == key and meta.get("unit_version") == UNIT_VERSION else None


def unit_intact(path: str | Path, meta: dict) -> bool:
    """Whether a unit's stored clips still hash to the content hashes recorded when it was written."""
    kept = [c for c in meta.get("clips", []) if c.get("status") == "ok"]
    if not kept:
        return True
    try:
        with np.load(path, allow_pickle=False) as data:
            qpos = data["qpos"]
            if len(qpos) != sum(c["frames"] for c in kept):
                return False
            return all(
                content_hash(qpos[c["offset"] : c["offset"] + c["frames"]], c["fps"]) == c["content_hash"] for c in kept
            )
    except (OSError, ValueError, KeyError, EOFError):
        return False
