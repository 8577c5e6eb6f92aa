"""Cluster-balanced sampling: how much each clip weighs so that clusters of any size get their share of samples
(distillation's clip table, the HME diversity figures). The clusters themselves are cluster manifests
(:mod:`humanoid_gpt.catalog.manifests`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from humanoid_gpt.catalog.refs import ManifestError


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
    """Flatten clusters (id -> clips, in teacher order; paths or :class:`~humanoid_gpt.catalog.refs.ClipRef`) into
    one clip list with a sampling weight and a cluster index per clip.

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
