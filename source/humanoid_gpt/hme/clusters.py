"""The cluster manifest: which clips make up each cluster, the unit one expert is trained on.

A small versioned JSON file (``schema_version``, ``clusters``: cluster id -> clip entries relative to the data root,
``meta``). The HME stage (``humanoid_gpt.hme.pipeline``) writes one from motion embeddings; without one,
:func:`default_manifest` makes one cluster per dataset folder. ``HGPT_CLUSTER_MANIFEST`` names the manifest to use;
unset, the default one is built. See docs/architecture.md ("Data flow", step 3).

Entries: schema version 1 holds whole files (``g1_motions/lafan1/walk1_subject1.csv``). Schema version 2 adds clip
segments, ``"<relative path>@<start frame>:<stop frame>"`` (frames at the file's own rate, stop exclusive), so a
cluster is a kind of motion rather than a file; a version 2 file may mix both. Files without segments are still
written as version 1, so older readers keep working; both versions are read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import read_versioned_json, write_text_atomic
from humanoid_gpt.motion.io import MOTION_SUFFIXES

SCHEMA_VERSION = 2
"""The newest manifest schema this code reads and writes (2: clip segments)."""
READABLE_VERSIONS = (1, 2)


class ManifestError(HGPTError, ValueError):
    """A cluster manifest that cannot be used: unreadable, empty clusters, clips that do not exist."""


CLUSTER_PREFIX = "HGPT-Cluster-"


def task_id(cluster: str) -> str:
    """The gymnasium id of a cluster's tracking task, e.g. ``HGPT-Cluster-042``."""
    return f"HGPT-Cluster-{cluster}"


def cluster_of(task: str) -> str:
    """The cluster id of a task id: ``HGPT-Cluster-042`` (or its ``-Play`` variant) -> ``"042"``."""
    prefix = CLUSTER_PREFIX
    if not task.startswith(prefix) or not task.removeprefix(prefix).removesuffix("-Play"):
        raise ManifestError(f"task {task!r} is not a cluster task; expected {prefix}<cluster id>, e.g. {prefix}000")
    return task.removeprefix(prefix).removesuffix("-Play")


# A segment suffix is strictly "@<int>:<int>": file names such as walk@60hz.csv stay plain paths.
_SEGMENT = re.compile(r"^(?P<path>.+)@(?P<start>\d+):(?P<stop>\d+)$")


@dataclass(frozen=True)
class ClipRef:
    """A whole motion file (``start`` and ``stop`` None) or frames ``[start, stop)`` of it, at the file's own rate.

    ``str(ref)`` is the manifest notation: the path, plus ``@<start>:<stop>`` for a segment."""

    path: Path
    start: int | None = None
    stop: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if (self.start is None) != (self.stop is None):
            raise ManifestError(f"{self.path}: a clip segment needs both a start and a stop frame")
        if self.start is not None and not 0 <= self.start < self.stop:
            raise ManifestError(f"{self}: a segment needs 0 <= start < stop (frames at the file's rate)")

    @property
    def is_segment(self) -> bool:
        return self.start is not None

    @classmethod
    def parse(cls, text: str | Path | ClipRef) -> ClipRef:
        """A ref from the manifest notation (``path`` or ``path@start:stop``), a path, or a ref."""
        if isinstance(text, ClipRef):
            return text
        match = _SEGMENT.match(str(text))
        if match is None:
            return cls(Path(text))
        return cls(Path(match["path"]), int(match["start"]), int(match["stop"]))

    def resolve(self, root: Path) -> ClipRef:
        """The same ref with its path under ``root`` (absolute paths stay)."""
        return ClipRef(root / self.path, self.start, self.stop)

    def __str__(self) -> str:
        text = self.path.as_posix()
        return f"{text}@{self.start}:{self.stop}" if self.is_segment else text


@dataclass
class ClusterManifest:
    clusters: dict[str, list[str]]  # id ("042") -> clip entries relative to the data root (paths or path@start:stop)
    source: str = "default"
    meta: dict = field(default_factory=dict)

    def _entries(self, cluster: str) -> list[str]:
        if cluster not in self.clusters:
            known = ", ".join(sorted(self.clusters)[:10])
            raise ManifestError(f"cluster {cluster!r} is not in the manifest ({self.source}); known: {known}...")
        if not self.clusters[cluster]:
            raise ManifestError(f"cluster {cluster!r} in {self.source} has no clips")
        return self.clusters[cluster]

    def _check_exist(self, cluster: str, paths: Sequence[Path], root: Path) -> None:
        missing = sorted({str(p) for p in paths if not p.is_file()})
        if missing:
            raise ManifestError(
                f"cluster {cluster!r} in {self.source} names {len(missing)} clips that do not exist under {root} "
                f"(first: {missing[0]}); check HGPT_DATA_ROOT or regenerate the manifest"
            )

    def clip_paths(self, cluster: str, data_root: Path | None = None) -> list[Path]:
        """Absolute clip paths of ``cluster``; raises naming what is wrong (unknown cluster, empty, missing clips).

        Whole files only: a cluster of segments raises (a file path would silently widen it to whole takes); use
        :meth:`clip_refs` and :func:`load_clip_refs` for those."""
        refs = self.clip_refs(cluster, data_root)
        if any(r.is_segment for r in refs):
            raise ManifestError(
                f"cluster {cluster!r} in {self.source} holds clip segments (path@start:stop), not whole files; read "
                "it with ClusterManifest.clip_refs() and load it with humanoid_gpt.hme.clusters.load_clip_refs()"
            )
        return [r.path for r in refs]

    def clip_refs(self, cluster: str, data_root: Path | None = None) -> list[ClipRef]:
        """The clips of ``cluster`` as :class:`ClipRef` with absolute paths (whole files or segments); raises
        naming what is wrong (unknown cluster, empty, malformed entries, missing files)."""
        root = data_root or settings.data_root()
        refs = []
        for entry in self._entries(cluster):
            try:
                refs.append(ClipRef.parse(entry).resolve(root))
            except ManifestError as e:
                raise ManifestError(f"{self.source}: cluster {cluster!r}: bad entry {entry!r}: {e}") from None
        self._check_exist(cluster, [r.path for r in refs], root)
        return refs

    def clips(self, cluster: str, data_root: Path | None = None) -> list[Path | ClipRef]:
        """What a plan carries for ``cluster``: absolute paths for whole files, :class:`ClipRef` for segments (so
        plain-path manifests give the same plans as before segments existed)."""
        return [r if r.is_segment else r.path for r in self.clip_refs(cluster, data_root)]

    def save(self, path: str | Path) -> Path:
        # Version 1 when every entry is a whole file, so readers that predate segments keep reading it.
        segments = any(ClipRef.parse(e).is_segment for clips in self.clusters.values() for e in clips)
        data = {"schema_version": SCHEMA_VERSION if segments else 1, "clusters": self.clusters, "meta": self.meta}
        write_text_atomic(path, json.dumps(data, indent=1))
        return Path(path)


def temperature_of(balance: bool | float) -> float:
    """A balance setting as a temperature: ``True`` -> 1 (every cluster equal), ``False`` -> 0 (as the data is)."""
    if isinstance(balance, bool):
        return 1.0 if balance else 0.0
    t = float(balance)
    if not 0.0 <= t <= 1.0:
        raise ManifestError(f"balance temperature {balance!r} must be in [0, 1] (0: as the data is, 1: clusters equal)")
    return t


def cluster_clip_table(
    cluster_clips: Mapping[str, Sequence], balance: bool | float = True
) -> tuple[list, list[float], list[int]]:
    """Flatten clusters (id -> clips, in teacher order; paths or :class:`ClipRef`) into one clip list with a sampling
    weight and a cluster index per clip.

    ``balance`` is a temperature in [0, 1] (``True`` = 1, ``False`` = 0): a clip of cluster c weighs n_c^-t, so
    cluster c's total mass is n_c^(1-t): t = 0 samples clips as the data is, t = 1 gives every cluster the same
    total weight, whatever its size."""
    t = temperature_of(balance)
    files, weights, owner = [], [], []
    for index, clips in enumerate(cluster_clips.values()):
        files += list(clips)
        weights += [float(len(clips)) ** -t] * len(clips)
        owner += [index] * len(clips)
    return files, weights, owner


def load_manifest(path: str | Path) -> ClusterManifest:
    path = Path(path)
    data = read_versioned_json(path, READABLE_VERSIONS, ManifestError, "cluster manifest")
    clusters = data.get("clusters")
    if not isinstance(clusters, dict) or not clusters:
        raise ManifestError(f"{path}: 'clusters' must map cluster ids to lists of clip paths")
    empty = [c for c, clips in clusters.items() if not clips]
    if empty:
        raise ManifestError(f"{path}: clusters {empty[:5]} have no clips")
    if data["schema_version"] == 1:
        segments = [e for clips in clusters.values() for e in clips if ClipRef.parse(e).is_segment]
        if segments:
            raise ManifestError(
                f"{path}: schema_version 1 holds whole files, but it names segments ({segments[0]!r}); "
                "set schema_version to 2"
            )
    return ClusterManifest({str(k): list(v) for k, v in clusters.items()}, str(path), data.get("meta", {}))


def default_manifest(data_root: Path | None = None) -> ClusterManifest:
    """One cluster per folder of motion files under ``<data root>/g1_motions``, numbered in name order."""
    root = data_root or settings.data_root()
    folders = sorted(p for p in (root / "g1_motions").glob("*") if p.is_dir())
    clusters, names = {}, {}
    for folder in folders:
        clips = sorted(f.relative_to(root).as_posix() for f in folder.iterdir() if f.suffix in MOTION_SUFFIXES)
        if clips:
            cid = f"{len(clusters):03d}"
            clusters[cid], names[cid] = clips, folder.name
    if not clusters:
        raise ManifestError(
            f"no motion data: {root / 'g1_motions'} holds no dataset folder of clips. Fix: set HGPT_DATA_ROOT to the "
            "folder that holds g1_motions/<dataset>/ (next to a checkout: ../shared/data), run `hgpt data fetch`, or "
            "name a cluster manifest with HGPT_CLUSTER_MANIFEST"
        )
    return ClusterManifest(clusters, f"default manifest of {root}", {"folders": names})


def active_manifest(path: str | Path | None = None) -> ClusterManifest:
    """The manifest at ``path`` (a run's ``--manifest``), else the one named by ``HGPT_CLUSTER_MANIFEST``, else the
    default one."""
    path = path or os.environ.get("HGPT_CLUSTER_MANIFEST")
    return load_manifest(path) if path else default_manifest()


def load_clip_refs(refs: Iterable[str | Path | ClipRef], g1=None, progress: bool = False) -> list:
    """Load clips named by paths, manifest entries (``path@start:stop``) or :class:`ClipRef` (what plans and env
    configs carry), in order. Each file is read and validated once; a segment is the slice ``[start, stop)`` named
    ``<stem>@<start>``; a whole file loads as :func:`humanoid_gpt.motion.io.load_clip` does and a folder as every
    motion file in it (as ``load_clips`` does). A relative path that does not exist from the working directory is
    taken under the data root (where manifest entries are relative to)."""
    from humanoid_gpt.motion.io import find_motion_files, load_clip  # the reader stack: only when clips are loaded
    from humanoid_gpt.robot.g1 import load_g1

    root = settings.data_root()
    parsed: list[ClipRef] = []
    for item in refs:
        ref = ClipRef.parse(item)
        if not ref.path.is_absolute() and not ref.path.exists():
            ref = ref.resolve(root)
        if not ref.is_segment and ref.path.is_dir():
            parsed += [ClipRef(f) for f in find_motion_files([ref.path])]
        else:
            parsed.append(ref)
    missing = sorted({str(r.path) for r in parsed if not r.path.is_file()})
    if missing:
        raise ManifestError(
            f"{len(missing)} motion files named by the clip list do not exist (first: {missing[0]}); check "
            "HGPT_DATA_ROOT or regenerate the cluster manifest"
        )
    g1 = g1 or load_g1()
    files = list(dict.fromkeys(r.path for r in parsed))
    if progress:
        from rich.progress import track

        files = track(files, description="loading motions")
    loaded = {f: load_clip(f, g1=g1) for f in files}
    clips = []
    for ref in parsed:
        clip = loaded[ref.path]
        if not ref.is_segment:
            clips.append(clip)
            continue
        if ref.stop > clip.num_frames:
            raise ManifestError(
                f"segment {ref} ends at frame {ref.stop} but {ref.path.name} has {clip.num_frames} frames: the file "
                "changed since the manifest was made; regenerate it (hme cluster)"
            )
        segment = clip.slice(ref.start, ref.stop)
        provenance = {**clip.provenance, "segment": [ref.start, ref.stop]}
        clips.append(segment.replace(name=f"{clip.name}@{ref.start}", provenance=provenance))
    return clips
