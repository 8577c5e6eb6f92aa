"""Cluster manifests: which clips make up each cluster, the unit one expert is trained on.

A small versioned JSON file (``schema_version``, ``clusters``: cluster id -> clip references, ``meta``); the entries'
notation is :class:`~humanoid_gpt.catalog.refs.ClipRef`'s. The HME stage (``humanoid_gpt.hme.pipeline``) writes one
from motion embeddings; without one, :func:`default_manifest` makes one cluster per dataset folder.
``HGPT_CLUSTER_MANIFEST`` names the manifest to use; unset, the default one is built. See docs/architecture.md ("Data
flow", step 3).

Entries: schema version 1 holds whole files (``g1_motions/lafan1/walk1_subject1.csv``). Schema version 2 adds clip
segments, ``"<relative path>@<start frame>:<stop frame>"`` (frames at the file's own rate, stop exclusive), so a
cluster is a kind of motion rather than a file. Schema version 3 adds clips of a built corpus (``hgpt corpus build``),
``"<corpus folder>::<clip id>"`` and ``"<corpus folder>::<clip id>@<start>:<stop>"`` (frames at the clip's rate):
they load from the corpus's memory-mapped shards with the kinematics it cached, with no forward kinematics. A file
may mix all three; each is written with the oldest version that holds its entries, so older readers keep reading
what they can, and every version is read. Relative files and corpus folders are under the data root, and must stay
inside it (``../`` out of it is refused); absolute ones are read where they are.

Schema version 4 adds entries relative to the manifest's own folder, marked by a leading ``./`` or ``../``
(``../corpus::walk1_subject1@0:500``), so that an outputs folder moved or copied as a whole still names its own clips:
:meth:`ClusterManifest.save` writes so every absolute file or corpus folder in the manifest's outputs tree (its folder,
or a sibling of it), and loading makes them absolute again, refusing one that leads out of that tree. Its other
relative entries are under the data root, as in versions 1-3 (where ``./`` and ``../`` mean nothing special).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.catalog.refs import ClipRef, ManifestError
from humanoid_gpt.io_utils import contained_path, read_versioned_json, write_text_atomic
from humanoid_gpt.motion.io import MOTION_SUFFIXES

SCHEMA_VERSION = 4
"""The newest manifest schema this code reads and writes (2: clip segments, 3: clips of a corpus, 4: paths relative
to the manifest's folder)."""
READABLE_VERSIONS = (1, 2, 3, 4)
BESIDE_VERSION = 4
"""The first schema whose ``./`` and ``../`` entries are relative to the manifest's folder, not the data root."""
# A manifest-relative entry: "." or ".." and then a path separator, a corpus clip, a segment or nothing.
_BESIDE = re.compile(r"^\.\.?(?=/|::|@|$)")

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


@dataclass
class ClusterManifest:
    # id ("042") -> clip entries relative to the data root, or absolute (a saved file's entries relative to its own
    # folder are made absolute when it is loaded): path, path@start:stop, folder::clip id[@start:stop]
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
                "humanoid_gpt.catalog.refs.load_clip_refs()"
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
        """Write the manifest to ``path``: absolute entries inside its outputs tree (the folder of ``path`` or a
        sibling of it) relative to that folder (schema 4, so the tree can move), the rest as they are, with the oldest
        schema version that holds every entry, so readers that predate segments or corpus clips keep reading it."""
        path = Path(path)
        folder = Path(os.path.abspath(path.parent))
        pairs = {c: [(_beside_entry(e, folder), e) for e in entries] for c, entries in self.clusters.items()}
        if any(w != e for entries in pairs.values() for w, e in entries):  # some entries are beside the manifest
            version = BESIDE_VERSION
            clusters = {c: [w if w != e else _root_entry(path, c, e) for w, e in ps] for c, ps in pairs.items()}
        else:
            version, clusters = _version_of(self.clusters), self.clusters
        data = {"schema_version": version, "clusters": clusters, "meta": self.meta}
        write_text_atomic(path, json.dumps(data, indent=1))
        return path


def _tree(folder: Path) -> Path:
    """The outputs tree of a manifest in ``folder``: the folder's parent (so the manifest names siblings such as
    ``../corpus``), or the folder itself when its parent is the filesystem root."""
    return folder.parent if folder.parent != folder.parent.parent else folder


def _beside_entry(entry: str, folder: Path) -> str:
    """``entry`` as a manifest in ``folder`` writes it: an absolute file or corpus folder inside the manifest's outputs
    tree relative to ``folder`` (``./clips/walk.npz``, ``../corpus::walk1_subject1@0:500``), anything else as it is.
    Only when reading it back gives the same text, so an entry is the same string before and after a round trip."""
    ref = ClipRef.parse(entry)
    target, tree = ref.path.as_posix(), _tree(folder)
    if not ref.path.is_absolute() or str(ref) != entry or os.path.commonpath([tree, target]) != str(tree):
        return entry
    rel = os.path.relpath(target, folder)
    rel = rel if rel.startswith("..") or rel == "." else f"./{rel}"
    if os.path.abspath(os.path.join(folder, rel)) != target:  # not normalized (a/../b): keep it as written
        return entry
    return rel + str(ref)[len(target) :]  # the corpus clip and segment, as the ref writes them


def _root_entry(path: Path, cluster: str, entry: str) -> str:
    """``entry``, absolute or relative to the data root, in a schema-4 file, where a leading ``./`` or ``../`` means
    the manifest's folder: a relative one is written without its ``./``, and one that would still read as beside the
    manifest (``../``, ``.::<clip id>``) is refused rather than silently read from another place."""
    ref = ClipRef.parse(entry)
    if ref.path.is_absolute():
        return entry
    if not _BESIDE.match(str(ref)):
        return str(ref)
    raise ManifestError(
        f"{path}: cluster {cluster!r}: entry {entry!r} is relative to the data root but starts with . or .., which in "
        "a manifest with entries beside it (schema 4) names the manifest's folder. Fix: name the clip by its "
        "absolute path"
    )


def _absolute_entry(path: Path, cluster: str, entry: str) -> str:
    """A schema-4 entry relative to the manifest's folder (``./``, ``../``) as an absolute one, refused (naming the
    file, the cluster, the entry and the fix) when it leads out of the manifest's outputs tree: a manifest from
    elsewhere must not point its reader at files outside the tree it came in."""
    ref = ClipRef.parse(entry)
    folder = Path(os.path.abspath(path.parent))
    tree = _tree(folder)
    from_tree = ref.path if tree == folder else Path(folder.name) / ref.path
    where = f"{path}: cluster {cluster!r}: entry {entry!r}"
    target = contained_path(from_tree, tree, "the manifest's folder and its siblings", where, ManifestError)
    return os.path.abspath(target) + str(ref)[len(ref.path.as_posix()) :]


def _version_of(clusters: Mapping[str, Sequence[str]]) -> int:
    """The oldest manifest schema version that holds every entry of ``clusters``."""
    return max((ClipRef.parse(e).manifest_version for clips in clusters.values() for e in clips), default=1)


def corpus_manifest(
    manifest: ClusterManifest, corpus: str | Path, exported: str | Path, data_root: Path | None = None
) -> ClusterManifest:
    """``manifest``, whose entries name files that :func:`humanoid_gpt.catalog.store.export_clips` wrote from the
    corpus at ``corpus`` into ``exported`` (as the main job's HME stage clusters them), with every entry a clip of the
    corpus itself: ``<corpus>::<clip id>``, and segments ``...@<start>:<stop>`` with the same frame numbers (an
    exported file holds its clip's frames at its rate). Training then loads the corpus's cached kinematics instead of
    running forward kinematics on the files. Relative entries are under ``data_root``; an entry that names no
    exported clip is an error naming it."""
    from humanoid_gpt.catalog.store import export_paths, read_manifest  # the corpus reader: only when needed

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
    clusters = {str(k): list(v) for k, v in clusters.items()}
    if data["schema_version"] >= BESIDE_VERSION:
        clusters = {
            c: [_absolute_entry(path, c, str(e)) if _BESIDE.match(str(e)) else e for e in entries]
            for c, entries in clusters.items()
        }
    return ClusterManifest(clusters, str(path), data.get("meta", {}))


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
