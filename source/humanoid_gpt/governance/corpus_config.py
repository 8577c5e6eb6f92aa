"""The corpus config (docs/corpus.md): sources, filter, warp, splits and shards, read from YAML and checked before
anything is planned."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from humanoid_gpt import settings
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.filter_config import FilterConfig
from humanoid_gpt.governance.warp import WarpConfig
from humanoid_gpt.io_utils import contained_path, read_yaml
from humanoid_gpt.robot.g1 import G1_KEYPOINT_NAMES

FORMATS: dict[str, tuple[str, ...]] = {
    "g1": (".csv", ".npz", ".npy"),
    "bvh": (".bvh",),
    "amc": (".amc",),
    "positions": (".npy", ".npz"),
}
"""Source formats and the file suffixes each one reads: ``g1`` is any G1 motion file the project reads (G1 CSV,
BeyondMimic / holosoma / AMASS-for-G1 / our NPZ, G1 ``.npy``); the others are human mocap, retargeted."""
SPLITS = ("train", "val", "test")
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
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
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


def _field_names(cls: type) -> set[str]:
    """The keys a YAML mapping of ``cls`` may hold: its dataclass fields (one source of truth for the key checks)."""
    return {f.name for f in dataclasses.fields(cls)}


_SOURCE_ALIASES = {"license"}  # American spelling of ``licence``
_RETARGET_KEYS = {"skeleton", "mapping", "height", "fps", "config"}
"""``retarget`` options: forwarded to :func:`humanoid_gpt.governance.retarget.retarget` (``config``: RetargetConfig
fields, checked against that dataclass)."""


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
    top = _field_names(CorpusConfig)
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(top)}")
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
    known = _field_names(SourceConfig)
    unknown = sorted(set(raw) - known - _SOURCE_ALIASES)
    if unknown:
        raise ConfigError(f"{label}: unknown field(s) {unknown}; known: {sorted(known)}")
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
        from humanoid_gpt.motion.rates import check_fps

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
    unknown = sorted(set(raw) - _field_names(SplitConfig))
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
