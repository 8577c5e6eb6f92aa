"""The cluster manifest: which clips make up each cluster, the unit one expert is trained on.

A small versioned JSON file (``schema_version``, ``clusters``: cluster id -> clip entries relative to the data root,
``meta``). The HME stage (``humanoid_gpt.hme.pipeline``) writes one from motion embeddings; without one,
:func:`default_manifest` makes one cluster per dataset folder. ``HGPT_CLUSTER_MANIFEST`` names the manifest to use;
unset, the default one is built. See docs/architecture.md ("Data flow", step 3).

Entries: schema version 1 holds whole files (``g1_motions/lafan1/walk1_subject1.csv``). Schema version 2 adds clip
segments, ``"<relative path>@<start frame>:<stop frame>"`` (frames at the file's own rate, stop exclusive), so a
cluster is a kind of motion rather than a file. Schema version 3 adds clips of a built corpus (``hgpt corpus build``),
``"<corpus folder>::<clip id>"`` and ``"<corpus folder>::<clip id>@<start>:<stop>"`` (frames at the clip's rate):
they load from the corpus's memory-mapped shards with the kinematics it cached, with no forward kinematics. A file
may mix all three; each is written with the oldest version that holds its entries, so older readers keep reading
what they can, and every version is read. Relative files and corpus folders are under the data root, and must stay
inside it (``../`` out of it is refused); absolute ones are read where they are.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import contained_path, read_versioned_json, write_text_atomic
from humanoid_gpt.motion.io import MOTION_SUFFIXES

if TYPE_CHECKING:
    from humanoid_gpt.motion.clip import MotionClip

SCHEMA_VERSION = 3
"""The newest manifest schema this code reads and writes (2: clip segments, 3: clips of a corpus)."""
READABLE_VERSIONS = (1, 2, 3)


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
CORPUS_SEPARATOR = "::"
"""Between a corpus folder and a clip id in a clip reference: ``<corpus folder>::<clip id>``."""


@dataclass(frozen=True)
class ClipRef:
    """A whole motion file (``start`` and ``stop`` None) or frames ``[start, stop)`` of it, at the file's own rate;
    with a ``clip_id``, the clip of that id in the built corpus at ``path`` (or frames of it, at the clip's rate).

    ``str(ref)`` is the manifest notation: the path (``<corpus folder>::<clip id>`` for a corpus clip), plus
    ``@<start>:<stop>`` for a segment. A trailing ``@<int>:<int>`` always reads as a segment, so a whole corpus clip
    whose id ends like one (a clip the corpus filters trimmed, ``lafan1/walk.csv@120:900``) is named as the segment
    of all its frames (:meth:`corpus_clip`)."""

    path: Path
    start: int | None = None
    stop: int | None = None
    clip_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if (self.start is None) != (self.stop is None):
            raise ManifestError(f"{self.path}: a clip segment needs both a start and a stop frame")
        if self.start is not None and not 0 <= self.start < self.stop:
            raise ManifestError(f"{self}: a segment needs 0 <= start < stop (frames at the clip's rate)")
        if CORPUS_SEPARATOR in self.path.as_posix():
            raise ManifestError(
                f"{self.path.as_posix()!r}: a path holding {CORPUS_SEPARATOR!r} reads as <corpus folder>::<clip id>; "
                "rename the file or folder"
            )
        if self.clip_id is not None:
            if not self.clip_id:
                raise ManifestError(f"{self}: a corpus clip needs a clip id after {CORPUS_SEPARATOR!r}")
            if not self.is_segment and _SEGMENT.match(self.clip_id):
                raise ManifestError(
                    f"{self}: the clip id ends like a segment (@<start>:<stop>), so this reference would read back "
                    f"as a segment; name the whole clip as the segment of all its frames, {self}@0:<frames>"
                )

    @property
    def is_segment(self) -> bool:
        return self.start is not None

    @property
    def is_corpus(self) -> bool:
        """Whether this names a clip of a built corpus (``path`` is then the corpus folder), not a file."""
        return self.clip_id is not None

    @property
    def source(self) -> tuple[Path, str | None]:
        """The whole file, or corpus clip, this ref names or is a segment of: (path, clip id or None)."""
        return self.path, self.clip_id

    @classmethod
    def corpus_clip(cls, corpus: str | Path, clip_id: str, frames: int) -> ClipRef:
        """The whole clip ``clip_id`` (``frames`` long) of the corpus at ``corpus``: ``<corpus>::<clip id>``, or
        ``<corpus>::<clip id>@0:<frames>`` when the id itself ends like a segment (see the class docstring)."""
        if _SEGMENT.match(clip_id):
            return cls(Path(corpus), 0, frames, clip_id)
        return cls(Path(corpus), clip_id=clip_id)

    @classmethod
    def parse(cls, text: str | Path | ClipRef) -> ClipRef:
        """A ref from the manifest notation (``path``, ``path@start:stop``, ``folder::clip id``,
        ``folder::clip id@start:stop``), a path, or a ref."""
        if isinstance(text, ClipRef):
            return text
        folder, corpus, rest = str(text).partition(CORPUS_SEPARATOR)
        match = _SEGMENT.match(rest if corpus else folder)
        segment = (int(match["start"]), int(match["stop"])) if match else (None, None)
        if not corpus:
            return cls(Path(match["path"] if match else folder), *segment)
        if not folder:
            raise ManifestError(f"{text!r}: a corpus clip needs a corpus folder before {CORPUS_SEPARATOR!r}")
        return cls(Path(folder), *segment, match["path"] if match else rest)

    def resolve(self, root: Path) -> ClipRef:
        """The same ref with its path (file or corpus folder) under ``root`` (absolute paths stay); a relative path
        that leads out of ``root`` (``../../etc/passwd``) is refused."""
        return replace(self, path=contained_path(self.path, root, "the data root", "clip path", ManifestError))

    def exists(self) -> bool:
        """Whether the file, or the corpus folder, is there."""
        return self.path.is_dir() if self.is_corpus else self.path.is_file()

    def __str__(self) -> str:
        text = self.path.as_posix()
        if self.is_corpus:
            text = f"{text}{CORPUS_SEPARATOR}{self.clip_id}"
        return f"{text}@{self.start}:{self.stop}" if self.is_segment else text

    def describe(self) -> str:
        """What the ref's frames come from, for messages: the file, or the clip and its corpus folder."""
        return f"clip {self.clip_id!r} of the corpus {self.path}" if self.is_corpus else str(self.path)

    @property
    def manifest_version(self) -> int:
        """The oldest manifest schema that holds this entry (1: whole files, 2: segments, 3: corpus clips)."""
        return 3 if self.is_corpus else 2 if self.is_segment else 1


@dataclass
class ClusterManifest:
    # id ("042") -> clip entries relative to the data root: path, path@start:stop, folder::clip id[@start:stop]
    clusters: dict[str, list[str]]
    source: str = "default"
    meta: dict = field(default_factory=dict)

    def _entries(self, cluster: str) -> list[str]:
        if cluster not in self.clusters:
            known = ", ".join(sorted(self.clusters)[:10])
            raise ManifestError(f"cluster {cluster!r} is not in the manifest ({self.source}); known: {known}...")
        if not self.clusters[cluster]:
            raise ManifestError(f"cluster {cluster!r} in {self.source} has no clips")
        return self.clusters[cluster]

    def _check_exist(self, cluster: str, refs: Sequence[ClipRef], root: Path) -> None:
        missing = sorted({r.describe() for r in refs if not r.exists()})
        if missing:
            raise ManifestError(
                f"cluster {cluster!r} in {self.source} names {len(missing)} clips that do not exist under {root} "
                f"(first: {missing[0]}); check HGPT_DATA_ROOT or regenerate the manifest"
            )

    def clip_paths(self, cluster: str, data_root: Path | None = None) -> list[Path]:
        """Absolute clip paths of ``cluster``; raises naming what is wrong (unknown cluster, empty, missing clips).

        Whole files only: a cluster of segments or corpus clips raises (a file path would silently widen a segment
        to the whole take, and a corpus folder is no clip); use :meth:`clip_refs` and :func:`load_clip_refs`."""
        refs = self.clip_refs(cluster, data_root)
        if any(r.is_segment or r.is_corpus for r in refs):
            raise ManifestError(
                f"cluster {cluster!r} in {self.source} holds clip segments (path@start:stop) or corpus clips "
                "(folder::clip id), not whole files; read it with ClusterManifest.clip_refs() and load it with "
                "humanoid_gpt.hme.clusters.load_clip_refs()"
            )
        return [r.path for r in refs]

    def clip_refs(self, cluster: str, data_root: Path | None = None) -> list[ClipRef]:
        """The clips of ``cluster`` as :class:`ClipRef` with absolute paths (whole files, segments, corpus clips);
        raises naming what is wrong (unknown cluster, empty, malformed entries, missing files or corpus folders)."""
        root = data_root or settings.data_root()
        refs = [self.resolved(cluster, entry, root) for entry in self._entries(cluster)]
        self._check_exist(cluster, refs, root)
        return refs

    def resolved(self, cluster: str, entry: str, root: Path) -> ClipRef:
        """``entry`` of ``cluster`` as a ref under ``root``; a malformed entry, or a relative one that leads out of
        ``root``, raises naming this manifest, the cluster and the entry."""
        try:
            return ClipRef.parse(entry).resolve(root)
        except ManifestError as e:
            raise ManifestError(f"{self.source}: cluster {cluster!r}: bad entry {entry!r}: {e}") from None

    def clips(self, cluster: str, data_root: Path | None = None) -> list[Path | ClipRef]:
        """What a plan carries for ``cluster``: absolute paths for whole files, :class:`ClipRef` for segments and
        corpus clips (so plain-path manifests give the same plans as before segments existed)."""
        return [r if r.is_segment or r.is_corpus else r.path for r in self.clip_refs(cluster, data_root)]

    def save(self, path: str | Path) -> Path:
        # The oldest version that holds every entry, so readers that predate segments or corpus clips keep reading it.
        data = {"schema_version": _version_of(self.clusters), "clusters": self.clusters, "meta": self.meta}
        write_text_atomic(path, json.dumps(data, indent=1))
        return Path(path)


def _version_of(clusters: Mapping[str, Sequence[str]]) -> int:
    """The oldest manifest schema version that holds every entry of ``clusters``."""
    return max((ClipRef.parse(e).manifest_version for clips in clusters.values() for e in clips), default=1)


def corpus_manifest(
    manifest: ClusterManifest, corpus: str | Path, exported: str | Path, data_root: Path | None = None
) -> ClusterManifest:
    """``manifest``, whose entries name files that :func:`humanoid_gpt.governance.store.export_clips` wrote from the
    corpus at ``corpus`` into ``exported`` (as the main job's HME stage clusters them), with every entry a clip of the
    corpus itself: ``<corpus>::<clip id>``, and segments ``...@<start>:<stop>`` with the same frame numbers (an
    exported file holds its clip's frames at its rate). Training then loads the corpus's cached kinematics instead of
    running forward kinematics on the files. Relative entries are under ``data_root``; an entry that names no
    exported clip is an error naming it."""
    from humanoid_gpt.governance.store import export_paths, read_manifest  # the corpus reader: only when needed

    root = data_root or settings.data_root()
    corpus, exported = Path(corpus).resolve(), Path(exported).resolve()
    rows = read_manifest(corpus)
    frames = {r["clip_id"]: r["frames"] for r in rows}
    clip_of = {exported / path: clip_id for clip_id, path in export_paths(rows).items()}

    def rewrite(cluster: str, entry: str) -> str:
        ref = manifest.resolved(cluster, entry, root)
        clip_id = None if ref.is_corpus else clip_of.get(ref.path.resolve())
        if clip_id is None:
            raise ManifestError(
                f"{manifest.source}: entry {entry!r} is not a clip file exported from the corpus {corpus} into "
                f"{exported}; rewrite a manifest of the files `hgpt corpus export` wrote from that corpus"
            )
        if ref.is_segment:
            return str(ClipRef(corpus, ref.start, ref.stop, clip_id))
        return str(ClipRef.corpus_clip(corpus, clip_id, frames[clip_id]))

    clusters = {c: [rewrite(c, e) for e in entries] for c, entries in manifest.clusters.items()}
    meta = {**manifest.meta, "corpus": str(corpus), "rewritten_from": manifest.source}
    return ClusterManifest(clusters, f"{manifest.source} (as clips of {corpus})", meta)


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
    try:
        needed = _version_of(clusters)
    except ManifestError as e:
        raise ManifestError(f"{path}: {e}") from None
    if data["schema_version"] < needed:
        kind = {2: "segments", 3: "corpus clips"}[needed]
        first = next(e for clips in clusters.values() for e in clips if ClipRef.parse(e).manifest_version == needed)
        raise ManifestError(
            f"{path}: schema_version {data['schema_version']} cannot hold {kind} ({first!r}); "
            f"set schema_version to {needed}"
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
    """Load clips named by paths, manifest entries (``path@start:stop``, ``folder::clip id[@start:stop]``) or
    :class:`ClipRef` (what plans and env configs carry), in order. Each file is read and validated once; a whole file
    loads as :func:`humanoid_gpt.motion.io.load_clip` does and a folder as every motion file in it (as
    ``load_clips`` does). Corpus clips load from the corpus's shards with their cached kinematics (each corpus's
    index and manifest read once; :func:`humanoid_gpt.governance.store.corpus_clips`), so a motion library of them
    runs no forward kinematics. A segment is the slice ``[start, stop)`` named ``<name>@<start>``. A relative path
    or corpus folder that does not exist from the working directory is taken under the data root (where manifest
    entries are relative to)."""
    from humanoid_gpt.motion.io import find_motion_files, load_clip  # the reader stack: only when clips are loaded
    from humanoid_gpt.robot.g1 import load_g1

    root = settings.data_root()
    parsed: list[ClipRef] = []
    for item in refs:
        ref = ClipRef.parse(item)
        if not ref.path.is_absolute() and not ref.path.exists():
            ref = ref.resolve(root)
        if not ref.is_segment and not ref.is_corpus and ref.path.is_dir():
            parsed += [ClipRef(f) for f in find_motion_files([ref.path])]
        else:
            parsed.append(ref)
    missing = sorted({r.describe() for r in parsed if not r.exists()})
    if missing:
        raise ManifestError(
            f"{len(missing)} motion files or corpus folders named by the clip list do not exist (first: {missing[0]}); "
            "check HGPT_DATA_ROOT or regenerate the cluster manifest"
        )
    g1 = g1 or load_g1()
    files = list(dict.fromkeys(r.path for r in parsed if not r.is_corpus))
    if progress:
        from rich.progress import track

        files = track(files, description="loading motions")
    loaded = {(f, None): load_clip(f, g1=g1) for f in files}
    loaded |= _load_corpus_clips([r for r in parsed if r.is_corpus], g1)
    clips = []
    for ref in parsed:
        clip = loaded[ref.source]
        if not ref.is_segment:
            clips.append(clip)
            continue
        if ref.stop > clip.num_frames:
            raise ManifestError(
                f"segment {ref} ends at frame {ref.stop} but {ref.describe()} has {clip.num_frames} frames: it "
                "changed since the manifest was made; regenerate the manifest (hme cluster)"
            )
        segment = clip.slice(ref.start, ref.stop)
        provenance = {**clip.provenance, "segment": [ref.start, ref.stop]}
        clips.append(segment.replace(name=f"{clip.name}@{ref.start}", provenance=provenance))
    return clips


def _load_corpus_clips(refs: Sequence[ClipRef], g1) -> dict[tuple[Path, str], MotionClip]:
    """The whole clips ``refs`` name (or are segments of), by their :attr:`ClipRef.source`, one read per corpus."""
    if not refs:
        return {}
    from humanoid_gpt.governance.store import corpus_clips  # the corpus reader (numpy, pyarrow): only when needed

    by_corpus: dict[Path, list[str]] = {}
    for ref in refs:
        by_corpus.setdefault(ref.path, []).append(ref.clip_id)
    return {
        (folder, clip_id): clip
        for folder, ids in by_corpus.items()
        for clip_id, clip in corpus_clips(folder, ids, g1).items()
    }
