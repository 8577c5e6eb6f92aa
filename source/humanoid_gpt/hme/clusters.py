"""The cluster manifest: which clips make up each cluster, the unit one expert is trained on.

A small versioned JSON file (``schema_version``, ``clusters``: cluster id -> clip paths relative to the data root).
The clustering stage writes one from motion embeddings; until then :func:`default_manifest` makes one cluster per
dataset folder. ``HGPT_CLUSTER_MANIFEST`` names the manifest to use; unset, the default one is built.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import read_versioned_json, write_text_atomic
from humanoid_gpt.motion.io import MOTION_SUFFIXES

SCHEMA_VERSION = 1


class ManifestError(HGPTError, ValueError):
    """A cluster manifest that cannot be used: unreadable, empty clusters, clips that do not exist."""


def task_id(cluster: str) -> str:
    """The gymnasium id of a cluster's tracking task, e.g. ``HGPT-Cluster-042``."""
    return f"HGPT-Cluster-{cluster}"


def cluster_of(task: str) -> str:
    """The cluster id of a task id: ``HGPT-Cluster-042`` (or its ``-Play`` variant) -> ``"042"``."""
    prefix = "HGPT-Cluster-"
    if not task.startswith(prefix) or not task.removeprefix(prefix).removesuffix("-Play"):
        raise ManifestError(f"task {task!r} is not a cluster task; expected {prefix}<cluster id>, e.g. {prefix}000")
    return task.removeprefix(prefix).removesuffix("-Play")


@dataclass
class ClusterManifest:
    clusters: dict[str, list[str]]  # id ("042") -> clip paths relative to the data root
    source: str = "default"
    meta: dict = field(default_factory=dict)

    def clip_paths(self, cluster: str, data_root: Path | None = None) -> list[Path]:
        """Absolute clip paths of ``cluster``; raises naming what is wrong (unknown cluster, empty, missing clips)."""
        if cluster not in self.clusters:
            known = ", ".join(sorted(self.clusters)[:10])
            raise ManifestError(f"cluster {cluster!r} is not in the manifest ({self.source}); known: {known}...")
        root = data_root or settings.data_root()
        paths = [root / p for p in self.clusters[cluster]]
        if not paths:
            raise ManifestError(f"cluster {cluster!r} in {self.source} has no clips")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ManifestError(
                f"cluster {cluster!r} in {self.source} names {len(missing)} clips that do not exist under {root} "
                f"(first: {missing[0]}); check HGPT_DATA_ROOT or regenerate the manifest"
            )
        return paths

    def save(self, path: str | Path) -> Path:
        data = {"schema_version": SCHEMA_VERSION, "clusters": self.clusters, "meta": self.meta}
        write_text_atomic(path, json.dumps(data, indent=1))
        return Path(path)


def cluster_clip_table(
    cluster_clips: dict[str, list[Path]], balance: bool = True
) -> tuple[list[Path], list[float], list[int]]:
    """Flatten clusters (id -> clip paths, in teacher order) into one clip list with a sampling weight and a cluster
    index per clip. ``balance`` gives every cluster the same total weight, whatever its size."""
    files, weights, owner = [], [], []
    for index, paths in enumerate(cluster_clips.values()):
        files += list(paths)
        weights += [1.0 / len(paths) if balance else 1.0] * len(paths)
        owner += [index] * len(paths)
    return files, weights, owner


def load_manifest(path: str | Path) -> ClusterManifest:
    path = Path(path)
    data = read_versioned_json(path, SCHEMA_VERSION, ManifestError, "cluster manifest")
    clusters = data.get("clusters")
    if not isinstance(clusters, dict) or not clusters:
        raise ManifestError(f"{path}: 'clusters' must map cluster ids to lists of clip paths")
    empty = [c for c, clips in clusters.items() if not clips]
    if empty:
        raise ManifestError(f"{path}: clusters {empty[:5]} have no clips")
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
    return ClusterManifest(clusters, f"default manifest of {root}", {"folders": names})


def active_manifest() -> ClusterManifest:
    """The manifest named by ``HGPT_CLUSTER_MANIFEST``, else the default one."""
    path = os.environ.get("HGPT_CLUSTER_MANIFEST")
    return load_manifest(path) if path else default_manifest()
