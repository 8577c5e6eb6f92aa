"""Building a training corpus: sources -> G1 clips (retargeted when human) -> filtered -> time-warped -> a sharded,
memory-mapped corpus at one rate with forward kinematics cached, a Parquet manifest and a dataset card.

    >>> from humanoid_gpt.governance.corpus import build_corpus, load_corpus_config
    >>> summary = build_corpus(load_corpus_config("configs/corpus/shared.yaml"))   # doctest: +SKIP

How it runs (resumable, idempotent):

1. **Plan** (nothing is written before it succeeds): the config is checked (every source names existing files of a
   known format and a licence) and each source file becomes a *work unit* whose key hashes the file's sha256 and
   everything that changes its result (format and reader/retarget options, labels, filter and warp settings, rate,
   cached bodies, dtype, the robot model, :data:`UNIT_VERSION`).
2. **Units** (a map over sequences: in this process, or on Ray with ``executor: ray``): read or retarget, filter
   (:mod:`.filter`), cut the kept segments, warp them (:mod:`.warp`), compute the per-frame arrays
   (:func:`~humanoid_gpt.governance.store.clips_arrays`: one forward-kinematics pass per file) and write
   ``<output>/.units/<key>.npz`` atomically with the decision and a content hash per clip. A unit whose file exists
   (and whose clips still hash to their recorded hashes) is skipped, so a ``kill -9`` at any moment loses at most
   the units in flight.
3. **Assembly** (in the driver, from the unit files only): rows, duplicates by content hash, performer-disjoint
   splits, shards per split (:mod:`.store`; each written into a fresh folder and renamed, checksummed), the Parquet
   manifest, ``filter_report.json``, the dataset card (:mod:`.card`), and ``index.json`` last. A shard whose files no
   longer match their sha256 is rebuilt; when everything matches, a rerun writes nothing.

Splits are by performer (LAFAN1 subjects, G1 Moves performers from its manifest, CMU subjects): performers are sorted
by frames (largest first, then name) and each goes to the split furthest below its target share, so no performer is
in two splits; ``splits.assign`` pins performers. A clip without a performer is its own group (the card says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from humanoid_gpt import settings
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.filter import FilterConfig, FilterDecision, Reason, analyse_clip
from humanoid_gpt.governance.store import (
    ARRAYS,
    INDEX,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    SHARDS,
    CorpusIndex,
    check_shard,
    clips_arrays,
    content_hash,
    file_sha256,
    manifest_schema,
    shard_digest,
    write_shard,
)
from humanoid_gpt.governance.warp import WarpConfig, warp_clip, warp_name
from humanoid_gpt.io_utils import atomic_write, contained_path, glob_files, read_yaml, write_text_atomic
from humanoid_gpt.robot.g1 import G1_KEYPOINT_NAMES
from humanoid_gpt.runs import config_hash

UNIT_VERSION = 1
"""Bumped when a unit's content changes for the same inputs (forces recomputation)."""
FORMATS: dict[str, tuple[str, ...]] = {
    "g1": (".csv", ".npz", ".npy"),
    "bvh": (".bvh",),
    "amc": (".amc",),
    "positions": (".npy", ".npz"),
}
"""Source formats and the file suffixes each one reads: ``g1`` is any G1 motion file the project reads (G1 CSV,
BeyondMimic / holosoma / AMASS-for-G1 / our NPZ, G1 ``.npy``); the others are human mocap, retargeted."""
SPLITS = ("train", "val", "test")
UNITS = ".units"
REPORT = "filter_report.json"


# Config -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformerRule:
    """Who performed a file: ``regex`` (group 1, else the whole match, of a search on the file stem), ``map`` (file
    stem -> performer), ``value`` (one performer for the whole source), else the reader's own (``from provenance``:
    LAFAN1 ``_subject<k>`` names, the G1 Moves manifest). Every id is prefixed ``<namespace>/`` (default: the source
    name), so two sources of one dataset (LAFAN1 G1 clips and LAFAN1 BVH) can share performers."""

    regex: str | None = None
    map: dict[str, str] | None = None
    value: str | None = None
    namespace: str | None = None

    def performer(self, stem: str, provenance: dict, source: str) -> str | None:
        found: str | None = None
        if self.value is not None:
            found = self.value
        elif self.map is not None:
            found = self.map.get(stem)
        elif self.regex is not None:
            m = re.search(self.regex, stem)
            found = (m.group(1) if m.groups() else m.group(0)) if m else None
        else:
            found = provenance.get("performer")
        return None if found in (None, "") else f"{self.namespace or source}/{found}"

    @classmethod
    def parse(cls, raw: Any, where: str) -> PerformerRule:
        if raw is None or raw == "provenance":
            return cls()
        if isinstance(raw, str):
            return cls(value=raw)
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}.performer: a mapping (regex/map/value/namespace) or a string, not {raw!r}")
        unknown = sorted(set(raw) - {"regex", "map", "value", "namespace"})
        if unknown:
            raise ConfigError(f"{where}.performer: unknown field(s) {unknown}; use regex, map, value or namespace")
        if raw.get("regex") is not None:
            try:
                re.compile(raw["regex"])
            except re.error as e:
                raise ConfigError(f"{where}.performer.regex: {raw['regex']!r} is not a regular expression ({e})") from e
        return cls(raw.get("regex"), raw.get("map"), raw.get("value"), raw.get("namespace"))


@dataclass(frozen=True)
class SourceConfig:
    """One source of motion: files ``path`` (a file, folder or glob, under the data root unless absolute) of
    ``format`` (:data:`FORMATS`) under ``licence``. ``fps``: the rate of files that store none. ``labels``: file
    stem glob -> labels (read by the label rules, listed in the manifest). ``read``: reader options (BVH ``unit``,
    ``up_axis``; positions ``preset``, ``mapping``, ...). ``retarget``: ``skeleton``, ``mapping``, ``height``,
    ``fps`` (retarget at this rate) and ``config`` (:class:`RetargetConfig` fields) for human formats.
    ``exclude``: file name globs to leave out."""

    name: str
    path: str
    format: str
    licence: str
    performer: PerformerRule = PerformerRule()
    fps: float | None = None
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    retarget: dict = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def labels_for(self, stem: str) -> tuple[str, ...]:
        out: list[str] = []
        for pattern, labels in self.labels.items():
            if fnmatch.fnmatchcase(stem, pattern):
                out += [label for label in labels if label not in out]
        return tuple(out)


@dataclass(frozen=True)
class SplitConfig:
    """Target shares of the performer-disjoint splits, and performers pinned to a split (``assign``)."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    assign: dict[str, str] = field(default_factory=dict)

    @property
    def shares(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


@dataclass
class CorpusConfig:
    """A corpus build (module docstring); :func:`load_corpus_config` reads one from YAML."""

    sources: tuple[SourceConfig, ...]
    output: Path
    data_root: Path = field(default_factory=settings.data_root)
    name: str = "corpus"
    fps: float = 50.0
    filters: FilterConfig = field(default_factory=FilterConfig)
    warps: WarpConfig = field(default_factory=WarpConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    num_cpus: int = 2
    shard_frames: int = 250_000
    dtype: Literal["float32", "float64"] = "float32"
    bodies: tuple[str, ...] = G1_KEYPOINT_NAMES
    on_error: Literal["drop", "fail"] = "drop"
    """A file that cannot be read or retargeted: a dropped row naming the error (``drop``), or stop (``fail``)."""


_TOP_KEYS = {
    "name",
    "sources",
    "output",
    "data_root",
    "fps",
    "filters",
    "warps",
    "splits",
    "executor",
    "ray_address",
    "num_cpus",
    "shard_frames",
    "dtype",
    "bodies",
    "on_error",
}
_SOURCE_KEYS = {
    "name",
    "path",
    "format",
    "licence",
    "license",
    "performer",
    "fps",
    "labels",
    "read",
    "retarget",
    "exclude",
}
_RETARGET_KEYS = {"skeleton", "mapping", "height", "fps", "config"}


def load_corpus_config(
    config: str | Path | dict,
    data_root: str | Path | None = None,
    output: str | Path | None = None,
    executor: str | None = None,
    where: str = "corpus config",
) -> CorpusConfig:
    """A :class:`CorpusConfig` from a YAML file or a mapping; ``data_root``, ``output`` and ``executor`` override
    the file's. Every mistake is a :class:`ConfigError` naming the file (``where``, for a mapping), the field and the
    fix."""

    if isinstance(config, str | Path):
        path = Path(config)
        where = str(path)
        raw = read_yaml(path, "corpus config")
    else:
        raw = dict(config)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a mapping with 'sources' and 'output' expected")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    out = output if output is not None else raw.get("output")
    if out is None:
        raise ConfigError(f"{where}: field 'output' missing. Fix: name the corpus folder (output: /tmp/corpus_out)")
    root = Path(data_root if data_root is not None else raw.get("data_root") or settings.data_root()).expanduser()
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources:
        raise ConfigError(f"{where}: field 'sources' missing or empty. Fix: list at least one source")
    parsed = tuple(_parse_source(s, i, where) for i, s in enumerate(sources))
    for i, s in enumerate(parsed):  # files are read from the data root: a relative path must not lead out of it
        contained_path(Path(s.path).expanduser(), root, "the data root", f"{where}: sources[{i}].path", ConfigError)
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: source names must be unique, got {names}")
    try:
        filters = FilterConfig.from_dict(raw.get("filters"))
        warps = WarpConfig.from_dict(raw.get("warps"))
    except HGPTError as e:
        raise ConfigError(f"{where}: {e}") from e
    splits = _parse_splits(raw.get("splits"), where)
    execu = executor or raw.get("executor", "local")
    if execu not in ("local", "ray"):
        raise ConfigError(f"{where}: executor must be 'local' or 'ray', got {execu!r}")
    dtype = raw.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ConfigError(f"{where}: dtype must be float32 or float64, got {dtype!r}")
    on_error = raw.get("on_error", "drop")
    if on_error not in ("drop", "fail"):
        raise ConfigError(f"{where}: on_error must be 'drop' or 'fail', got {on_error!r}")
    fps = _number(raw, "fps", 50.0, where, float, 1.0, 1000.0, "the corpus rate in Hz; the policy runs at 50")
    shard_frames = _number(raw, "shard_frames", 250_000, where, int, 1, None, "frames per shard file")
    num_cpus = _number(raw, "num_cpus", 2, where, int, 1, None, "the local Ray executor's worker processes")
    return CorpusConfig(
        sources=parsed,
        output=Path(out).expanduser(),
        data_root=root,
        name=str(raw.get("name", "corpus")),
        fps=fps,
        filters=filters,
        warps=warps,
        splits=splits,
        executor=execu,
        ray_address=raw.get("ray_address"),
        num_cpus=num_cpus,
        shard_frames=shard_frames,
        dtype=dtype,
        bodies=tuple(raw.get("bodies") or G1_KEYPOINT_NAMES),
        on_error=on_error,
    )


def _parse_source(raw: Any, i: int, where: str) -> SourceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: sources[{i}] must be a mapping with name, path, format and licence")
    label = f"{where}: sources[{i}]" + (f" ({raw['name']})" if raw.get("name") else "")
    unknown = sorted(set(raw) - _SOURCE_KEYS)
    if unknown:
        raise ConfigError(f"{label}: unknown field(s) {unknown}; known: {sorted(_SOURCE_KEYS - {'license'})}")
    for key in ("name", "path", "format"):
        if not raw.get(key):
            raise ConfigError(f"{label}: field '{key}' missing. Fix: add {key}: ... to the source")
    licence = raw.get("licence", raw.get("license"))
    if not licence or not str(licence).strip():
        raise ConfigError(
            f"{label}: field 'licence' missing. Fix: state the data's licence (licence: CC-BY-4.0); the manifest "
            "records it for every clip, and derived sets inherit it"
        )
    fmt = str(raw["format"]).lower()
    if fmt not in FORMATS:
        raise ConfigError(
            f"{label}: unknown format {raw['format']!r}. Fix: use one of {', '.join(FORMATS)} (g1: G1 motion files "
            "of any readable layout; bvh, amc, positions: human mocap, retargeted to the G1)"
        )
    retarget = dict(raw.get("retarget") or {})
    bad = sorted(set(retarget) - _RETARGET_KEYS)
    if bad:
        raise ConfigError(f"{label}: retarget: unknown field(s) {bad}; known: {sorted(_RETARGET_KEYS)}")
    if retarget and fmt == "g1":
        raise ConfigError(f"{label}: retarget options on a g1 source; they apply to human mocap (bvh, amc, positions)")
    if retarget.get("config"):
        from humanoid_gpt.governance.retarget import RetargetConfig

        known = {f.name for f in dataclasses.fields(RetargetConfig)}
        odd = sorted(set(retarget["config"]) - known)
        if odd:
            raise ConfigError(f"{label}: retarget.config: unknown field(s) {odd}; RetargetConfig has {sorted(known)}")
    fps = raw.get("fps")
    if fps is not None:
        from humanoid_gpt.motion.io import check_fps

        try:
            fps = check_fps(fps, f"{label}: fps")
        except HGPTError as e:
            raise ConfigError(str(e)) from e
    labels = raw.get("labels") or {}
    if isinstance(labels, list):
        labels = {"*": labels}
    if not isinstance(labels, dict):
        raise ConfigError(f"{label}: labels must be a list or a mapping of file-stem globs to lists")
    return SourceConfig(
        name=str(raw["name"]),
        path=str(raw["path"]),
        format=fmt,
        licence=str(licence).strip(),
        performer=PerformerRule.parse(raw.get("performer"), label),
        fps=fps,
        labels={str(k): tuple(map(str, v if isinstance(v, list) else [v])) for k, v in labels.items()},
        read=dict(raw.get("read") or {}),
        retarget=retarget,
        exclude=tuple(raw.get("exclude") or ()),
    )


SPLIT_SHARES = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def _number(
    raw: dict, key: str, default: float, where: str, kind: type, low: float, high: float | None, what: str
) -> Any:
    """``raw[key]`` as an int or float (``kind``) within [low, high]; else a ConfigError naming the field, the value
    and what it means. Booleans and strings are refused, not converted."""
    value = raw.get(key, default)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not number or (kind is int and not isinstance(value, int)) or value != value:
        raise ConfigError(f"{where}: {key}={value!r} is not {'an integer' if kind is int else 'a number'} ({what})")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{where}: {key}={value!r} must be {bounds} ({what}). Fix: set {key}: {default!r}")
    return kind(value)


def _parse_splits(raw: Any, where: str) -> SplitConfig:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - {"train", "val", "test", "assign"})
    if unknown:
        raise ConfigError(f"{where}: splits: unknown field(s) {unknown}; use train, val, test, assign")
    shares = {k: _number(raw, k, d, f"{where}: splits", float, 0.0, 1.0, "a share") for k, d in SPLIT_SHARES}
    if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ConfigError(f"{where}: splits {shares} must be non-negative fractions adding up to 1")
    assign = {str(k): str(v) for k, v in (raw.get("assign") or {}).items()}
    bad = {k: v for k, v in assign.items() if v not in SPLITS}
    if bad:
        raise ConfigError(f"{where}: splits.assign: {bad}: a performer goes to one of {SPLITS}")
    return SplitConfig(**shares, assign=assign)


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
        sha = file_sha256(path)
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


def _unit_intact(path: str | Path, meta: dict) -> bool:
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


# The build --------------------------------------------------------------------------------------------------------


@dataclass
class CorpusSummary:
    """What a build did and made (the numbers of the card)."""

    output: Path
    clips: int
    frames: int
    hours: float
    status_counts: dict[str, int]
    hours_by_source: dict[str, float]
    units_total: int
    units_computed: int
    units_reused: int
    shards_written: int
    shards_reused: int
    seconds: float
    up_to_date: bool = False
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = (
            "up to date: nothing to do"
            if self.up_to_date
            else (
                f"{self.units_computed} unit(s) computed, {self.units_reused} reused; {self.shards_written} shard(s) "
                f"written, {self.shards_reused} reused"
            )
        )
        per = ", ".join(f"{s} {h:.2f} h" for s, h in self.hours_by_source.items())
        return (
            f"{self.output}: {self.clips} clips, {self.frames:,} frames, {self.hours:.2f} h ({per}); {what}; "
            f"{self.seconds:.1f} s"
        )


UnitHook = Callable[[UnitTask, dict, bool], None]


def build_corpus(
    config: CorpusConfig | str | Path,
    progress: bool = True,
    on_unit: UnitHook | None = None,
) -> CorpusSummary:
    """Build (or finish, or check) the corpus of ``config`` (module docstring). ``on_unit(task, meta, cached)`` is
    called in this process after each unit is done or found done (progress reporting; tests raise from it to
    simulate a crash)."""
    start = time.perf_counter()
    cfg = config if isinstance(config, CorpusConfig) else load_corpus_config(config)
    tasks = plan_units(cfg, progress)  # every config error is raised here, before anything is written
    with _build_lock(Path(cfg.output)):
        metas: dict[str, dict] = {}
        todo: dict[str, UnitTask] = {}  # by key: identical files (same key) are one unit
        for task in tasks:
            meta = metas.get(task.key) or read_unit_meta(task.unit_path, task.key)
            if meta is not None and (task.key in metas or _unit_intact(task.unit_path, meta)):
                metas[task.key] = meta
                if on_unit:
                    on_unit(task, meta, True)
            else:
                todo.setdefault(task.key, task)
        computed = _run_units(cfg, list(todo.values()), metas, progress, on_unit)
        for task in tasks:  # identical files under two sources share a unit
            if task.key not in metas:
                metas[task.key] = read_unit_meta(task.unit_path, task.key) or {}
        errors = [m["error"] for m in metas.values() if m.get("status") == "error"]
        if errors and cfg.on_error == "fail":
            raise HGPTError(
                f"{len(errors)} source file(s) could not be used (on_error: fail):\n  " + "\n  ".join(errors[:20])
            )
        summary = assemble(cfg, tasks, metas, progress, start)
    # Reused: every file whose unit this run did not compute (found done, or shared with an identical file).
    summary.units_total, summary.units_computed, summary.units_reused = len(tasks), computed, len(tasks) - computed
    summary.errors = errors
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """One build at a time per output folder: an exclusive ``flock`` on ``<output>/.lock`` (the OS releases it when
    the process dies, even by ``kill -9``, so a crashed build never blocks the next one)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise HGPTError(
                f"{out}: another corpus build (pid {holder}) is writing here; wait for it to finish, or build into "
                "another output folder"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _settings_env() -> dict[str, str]:
    names = ("HGPT_DATA_ROOT", "MENAGERIE_ROOT", "HGPT_CACHE_DIR", "OMP_NUM_THREADS")
    return {k: os.environ[k] for k in names if os.environ.get(k)}


def _run_units(
    cfg: CorpusConfig, todo: list[UnitTask], metas: dict[str, dict], progress: bool, on_unit: UnitHook | None
) -> int:
    if not todo:
        return 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"corpus units ({cfg.executor})", unit="file")

    def done(task: UnitTask, meta: dict) -> None:
        metas[task.key] = meta
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(Path(task.path).name)
        if on_unit:
            on_unit(task, meta, False)

    try:
        if cfg.executor == "local":
            for task in todo:
                done(task, run_unit(task))
        else:
            import ray

            started = not ray.is_initialized()
            if started:
                kwargs: dict = {"address": cfg.ray_address} if cfg.ray_address else {"num_cpus": cfg.num_cpus}
                ray.init(
                    include_dashboard=False,
                    ignore_reinit_error=True,
                    log_to_driver=False,
                    runtime_env={"env_vars": _settings_env()},
                    **kwargs,
                )
            try:
                remote = ray.remote(num_cpus=1)(run_unit)
                pending = {remote.remote(t): t for t in todo}
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    task = pending.pop(ready[0])
                    done(task, ray.get(ready[0]))
            finally:
                if started:
                    ray.shutdown()
    finally:
        if bar is not None:
            bar.close()
    return len(todo)


# Assembly ---------------------------------------------------------------------------------------------------------


def _rows(cfg: CorpusConfig, tasks: list[UnitTask], metas: dict[str, dict]) -> list[dict]:
    """One manifest row per clip (kept, dropped warp, dropped or unreadable file), in corpus order."""
    sources = {s.name: s for s in cfg.sources}
    rows = []
    for task in tasks:
        meta = metas[task.key]
        source = sources[task.source]
        prov = meta.get("provenance") or {}
        stem = Path(task.path).stem
        base = {
            "source": task.source,
            "path": task.rel,
            "source_sha256": task.file_sha256,
            "format": task.format,
            "performer": source.performer.performer(stem, prov, source.name),
            "licence": source.licence,
            "unit": task.key,
            "retarget_status": prov.get("retarget_status"),
            "source_fps": meta.get("source_fps"),
            "content_hash": None,
            "duplicate_of": None,
            "split": None,
            "shard": None,
            "offset": None,
            "shard_sha256": None,
        }
        if meta.get("status") == "error":
            rows.append(
                {
                    **base,
                    "clip_id": f"{task.source}/{task.name}",
                    "name": task.name,
                    "labels": list(task.labels) or ["unlabelled"],
                    "status": "drop",
                    "reasons": [f"unreadable: {meta['error']}"],
                    "reason_codes": ["unreadable"],
                    "warp": 1.0,
                    "fps": None,
                    "frames": 0,
                    "duration_s": 0.0,
                    "source_start": None,
                    "source_stop": None,
                }
            )
            continue
        decision = FilterDecision.from_dict(meta["decision"])
        reasons = [r.describe() for r in decision.reasons]
        codes = [r.code for r in decision.reasons]
        base["labels"] = decision.labels
        if decision.action == "drop":
            rows.append(
                {
                    **base,
                    "clip_id": f"{task.source}/{task.name}",
                    "name": task.name,
                    "status": "drop",
                    "reasons": reasons,
                    "reason_codes": codes,
                    "warp": 1.0,
                    "fps": decision.fps,
                    "frames": decision.frames,
                    "duration_s": round((decision.frames - 1) / decision.fps, 4) if decision.frames else 0.0,
                    "source_start": 0,
                    "source_stop": decision.frames,
                }
            )
            continue
        whole = [[0, decision.frames]]
        for entry in meta["clips"]:
            # Names from this task, not the unit: two identical files share one unit.
            segment = (
                task.name
                if [list(s) for s in decision.segments] == whole
                else (f"{task.name}@{entry['start']}:{entry['stop']}")
            )
            name = warp_name(segment, entry["warp"])
            row = {
                **base,
                "clip_id": f"{task.source}/{name}",
                "name": name,
                "status": decision.action,
                "reasons": list(reasons),
                "reason_codes": list(codes),
                "warp": entry["warp"],
                "fps": entry.get("fps", cfg.fps),
                "frames": entry["frames"],
                "duration_s": round((entry["frames"] - 1) / cfg.fps, 4) if entry["frames"] else 0.0,
                "source_start": entry["start"],
                "source_stop": entry["stop"],
                "content_hash": entry.get("content_hash"),
                "_offset": entry.get("offset"),
            }
            if entry["status"] == "drop":
                reason = Reason.from_dict(entry["reason"])
                row.update(status="drop", reasons=[*reasons, reason.describe()], reason_codes=[*codes, reason.code])
            rows.append(row)
    seen: dict[str, str] = {}
    for row in rows:  # duplicates: the first clip with a content hash keeps it
        h = row["content_hash"]
        if h is None or row["status"] == "drop":
            continue
        if h in seen:
            row.update(
                status="duplicate",
                duplicate_of=seen[h],
                reasons=[*row["reasons"], f"duplicate: same content as {seen[h]}"],
                reason_codes=[*row["reason_codes"], "duplicate"],
            )
        else:
            seen[h] = row["clip_id"]
    return rows


def assign_splits(rows: list[dict], config: SplitConfig) -> dict[str, str]:
    """Performer (group) -> split, performer-disjoint: pinned performers first, then the others by frames (largest
    first, then name), each to the split furthest below its target share of all frames."""
    frames: dict[str, int] = {}
    for row in rows:
        if row["status"] in ("keep", "trim"):
            frames[row["_group"]] = frames.get(row["_group"], 0) + row["frames"]
    total = sum(frames.values())
    have = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for group, split in config.assign.items():
        if group in frames:
            out[group] = split
            have[split] += frames[group]
    shares = config.shares
    for group in sorted((g for g in frames if g not in out), key=lambda g: (-frames[g], g)):
        split = max(SPLITS, key=lambda s: (shares[s] * total - have[s], shares[s], -SPLITS.index(s)))
        out[group] = split
        have[split] += frames[group]
    return out


def _shard_plan(cfg: CorpusConfig, rows: list[dict]) -> list[dict]:
    """Shards per split in row order, at most ``shard_frames`` each (a longer clip gets one of its own)."""
    plan = []
    for split in SPLITS:
        members = [r for r in rows if r["split"] == split and r["status"] in ("keep", "trim")]
        current: list[dict] = []
        size = 0
        for row in members:
            if current and size + row["frames"] > cfg.shard_frames:
                plan.append({"split": split, "rows": current})
                current, size = [], 0
            current.append(row)
            size += row["frames"]
        if current:
            plan.append({"split": split, "rows": current})
    for i, shard in enumerate(plan):
        ident = config_hash(
            {"dtype": cfg.dtype, "bodies": list(cfg.bodies), "fps": cfg.fps},
            [[r["unit"], r["_offset"], r["frames"], r["content_hash"]] for r in shard["rows"]],
        )
        shard["name"] = f"{shard['split']}-{i:05d}-{ident[:12]}"
        shard["frames"] = sum(r["frames"] for r in shard["rows"])
    return plan


def _write_shard_from_units(cfg: CorpusConfig, shard: dict, units: dict[str, str]) -> dict[str, str]:
    n, b = shard["frames"], len(cfg.bodies)
    shapes = {k: tuple(b if d == "B" else d for d in shape) for k, shape in ARRAYS.items()}
    arrays = {k: np.empty((n, *shape), dtype=cfg.dtype) for k, shape in shapes.items()}
    at = 0
    by_unit: dict[str, list[dict]] = {}
    for row in shard["rows"]:
        by_unit.setdefault(row["unit"], []).append(row)
    placed = {}
    for unit, members in by_unit.items():
        with np.load(units[unit], allow_pickle=False) as data:
            loaded = {k: data[k] for k in ARRAYS}
        for row in members:
            placed[row["clip_id"]] = (row, loaded)
    for row in shard["rows"]:
        _, loaded = placed[row["clip_id"]]
        s = slice(row["_offset"], row["_offset"] + row["frames"])
        if content_hash(loaded["qpos"][s], cfg.fps) != row["content_hash"]:
            raise HGPTError(f"unit {units[row['unit']]} no longer matches its content hash; run the build again")
        for k in ARRAYS:
            arrays[k][at : at + row["frames"]] = loaded[k][s]
        row["offset"] = at
        at += row["frames"]
    return write_shard(Path(cfg.output) / SHARDS / shard["name"], arrays)


def assemble(
    cfg: CorpusConfig,
    tasks: list[UnitTask],
    metas: dict[str, dict],
    progress: bool = True,
    start: float | None = None,
) -> CorpusSummary:
    """Module docstring, step 3: rows, duplicates, splits, shards, manifest, report, card, index (last), then unit
    files no task names any more are removed. ``start``: the build's ``perf_counter`` start (for the card)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from humanoid_gpt.governance.card import write_card
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.runs import robot_hash

    out = Path(cfg.output)
    rows = _rows(cfg, tasks, metas)
    for row in rows:
        row["_group"] = row["performer"] or f"(unknown)/{row['source']}/{row['path']}"
    splits = assign_splits(rows, cfg.splits)
    for row in rows:
        row["split"] = splits.get(row["_group"])
    plan = _shard_plan(cfg, rows)
    for shard in plan:  # offsets inside each shard, known before anything is written
        at = 0
        for row in shard["rows"]:
            row["shard"], row["offset"] = shard["name"], at
            at += row["frames"]
    build_id = config_hash(
        {"schema": SCHEMA_VERSION, "fps": cfg.fps, "dtype": cfg.dtype, "bodies": list(cfg.bodies)},
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
    )
    previous = None
    try:
        previous = CorpusIndex.read(out)
    except HGPTError:
        pass
    old_shards = previous.shards if previous is not None else {}
    units = {t.key: t.unit_path for t in tasks}
    written = reused = 0
    iterator = plan
    if progress:
        from tqdm import tqdm

        iterator = tqdm(plan, desc="corpus shards", unit="shard", leave=False)
    for shard in iterator:
        folder = out / SHARDS / shard["name"]
        expected = old_shards.get(shard["name"], {}).get("files")
        if folder.is_dir() and not check_shard(folder, expected):
            shard["files"] = json.loads((folder / "SHA256SUMS.json").read_text())
            reused += 1
        else:
            shard["files"] = _write_shard_from_units(cfg, shard, units)
            written += 1
        shard["sha256"] = shard_digest(shard["files"])
        for row in shard["rows"]:
            row["shard_sha256"] = shard["sha256"]
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    report = [
        {
            "source": t.source,
            "path": t.rel,
            **(metas[t.key].get("decision") or {"error": metas[t.key].get("error")}),
            "name": t.name,
        }
        for t in tasks
    ]
    summary = _summary(cfg, public)
    manifest_path, report_path = out / MANIFEST, out / REPORT
    files_ok = previous is not None and previous.data.get("build_id") == build_id and written == 0
    if files_ok:
        recorded = previous.data.get("files", {})
        files_ok = all((out / f).is_file() and file_sha256(out / f) == h for f, h in recorded.items())
    if files_ok:  # nothing changed and every file is whole: a rerun writes nothing
        summary.up_to_date = True
        summary.shards_reused = reused
        _remove_stale(out, {s["name"] for s in plan})
        return summary
    table = pa.Table.from_pylist(public, schema=manifest_schema())
    with atomic_write(manifest_path) as f:
        pq.write_table(table, f)
    write_text_atomic(report_path, json.dumps(report, indent=1, default=str))
    g1 = load_g1()
    build = {
        "seconds": None if start is None else round(time.perf_counter() - start, 1),
        "units": len(tasks),
        "executor": cfg.executor,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    card_files = write_card(out, cfg, public, report, build)
    index = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "build_id": build_id,
        "robot_hash": robot_hash(g1.xml_path),
        "fps": cfg.fps,
        "dtype": cfg.dtype,
        "bodies": list(cfg.bodies),
        "arrays": {k: list(v) for k, v in ARRAYS.items()},
        "shards": [
            {
                "name": s["name"],
                "split": s["split"],
                "frames": s["frames"],
                "clips": len(s["rows"]),
                "files": s["files"],
                "sha256": s["sha256"],
            }
            for s in plan
        ],
        "files": {p.name: file_sha256(p) for p in (manifest_path, report_path, *card_files)},
        "sources": [{"name": s.name, "path": s.path, "format": s.format, "licence": s.licence} for s in cfg.sources],
        "config": {
            "filters": cfg.filters.as_dict(),
            "warps": cfg.warps.as_dict(),
            "splits": dataclasses.asdict(cfg.splits),
            "shard_frames": cfg.shard_frames,
        },
        "built": build["built"],
    }
    write_text_atomic(out / INDEX, json.dumps(index, indent=1, default=str))
    _remove_stale(out, {s["name"] for s in plan})
    _prune_units(out, {t.key for t in tasks})
    summary.shards_written, summary.shards_reused = written, reused
    return summary


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Shard folders the index no longer names, and leftovers of interrupted writes."""
    folder = out / SHARDS
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def _prune_units(out: Path, keys: set[str]) -> None:
    """Unit files of earlier configs (another threshold, a removed source): the index no longer needs them."""
    folder = out / UNITS
    if folder.is_dir():
        for path in folder.glob("*/*"):
            if path.name.split(".")[0] not in keys:
                path.unlink(missing_ok=True)


def _summary(cfg: CorpusConfig, rows: list[dict]) -> CorpusSummary:
    kept = [r for r in rows if r["shard"] is not None]
    frames = sum(r["frames"] for r in kept)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    hours = {s.name: 0.0 for s in cfg.sources}
    for r in kept:
        hours[r["source"]] += r["frames"] / cfg.fps / 3600.0
    return CorpusSummary(
        output=Path(cfg.output),
        clips=len(kept),
        frames=frames,
        hours=frames / cfg.fps / 3600.0,
        status_counts=counts,
        hours_by_source=hours,
        units_total=0,
        units_computed=0,
        units_reused=0,
        shards_written=0,
        shards_reused=0,
        seconds=0.0,
    )


def verify_corpus(folder: str | Path) -> list[str]:
    """Every problem of a built corpus (shard checksums, manifest and card against the index); empty when whole."""
    index = CorpusIndex.read(folder)
    problems = index.verify()
    for name, digest in index.data.get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file() or file_sha256(path) != digest:
            problems.append(f"{path}: missing or changed since the build")
    return problems


def print_summary(summary: CorpusSummary, rows: Sequence[dict] | None = None) -> None:
    """The build's numbers on the terminal: per source, per status and reason."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"corpus {summary.output}")
    for col in ("source", "hours in corpus"):
        table.add_column(col)
    for s, h in summary.hours_by_source.items():
        table.add_row(s, f"{h:.2f}")
    table.add_row("[b]total[/b]", f"[b]{summary.hours:.2f}[/b]")
    console().print(table)
    console().print(", ".join(f"{n} {s}" for s, n in sorted(summary.status_counts.items())) + " (manifest rows)")
    for e in summary.errors[:10]:
        console().print(f"[red]unreadable[/red] {e}")
    console().print(summary.describe())
