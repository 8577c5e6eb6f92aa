"""Diversity of a set of HME vectors, cluster-balanced sampling weights, and diverse subset selection
(docs/architecture.md, stage 2).

- gstd = exp(mean_j log sigma_j): the geometric mean of the per-dimension standard deviations (ddof 1);
- log-volume = 0.5 log det(Sigma + eps I) of the covariance Sigma (ddof 1): the log of the volume of the
  one-sigma ellipsoid up to a constant, which, unlike gstd, falls when dimensions move together.
Both are computed on the HME vectors as embedded (amplitudes and frequencies in their own units), so figures of
different subsets of one corpus compare; figures of corpora embedded by different PAEs do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.catalog.refs import ClipRef
from humanoid_gpt.hme.balance import cluster_clip_table, temperature_of

LOG_VOLUME_EPS = 1e-6


def gstd(x: np.ndarray) -> float:
    """exp(mean_j log sigma_j) over the columns of ``x`` (N, D); NaN for fewer than 2 rows. A constant column has
    sigma floored at 1e-12 (the figure collapses towards 0 rather than to -inf in log space)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    sigma = x.std(0, ddof=1)
    return float(np.exp(np.log(np.maximum(sigma, 1e-12)).mean()))


def log_volume(x: np.ndarray, eps: float = LOG_VOLUME_EPS) -> float:
    """0.5 log det(cov(x) + eps I) of the rows of ``x`` (N, D); NaN for fewer than 2 rows."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    cov = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    sign, logdet = np.linalg.slogdet(cov + eps * np.eye(len(cov)))
    return float(0.5 * logdet) if sign > 0 else float("nan")


def diversity_table(x: np.ndarray, groups: Mapping[str, Sequence[str]]) -> list[dict]:
    """Rows ``{"group", "name", "n", "gstd", "log_volume"}``: the whole corpus first, then every value of every
    grouping in ``groups`` (grouping name -> one value per row of ``x``, e.g. ``{"source": [...], "split": [...]}``)."""
    rows = [{"group": "corpus", "name": "all", "n": len(x), "gstd": gstd(x), "log_volume": log_volume(x)}]
    for group, values in groups.items():
        values = np.asarray(values)
        for name in sorted(set(values.tolist())):
            sub = x[values == name]
            rows.append({"group": group, "name": name, "n": len(sub), "gstd": gstd(sub), "log_volume": log_volume(sub)})
    return rows


def balanced_weights(cluster_ids: Sequence, temperature: bool | float = 1.0) -> np.ndarray:
    """Per-segment sampling weights (summing to 1): a segment of cluster c weighs n_c^-t. t = 0 samples as the data
    is (every segment equal), t = 1 gives every cluster the same mass; ``True``/``False`` mean 1/0."""
    t = temperature_of(temperature)
    ids = np.asarray(cluster_ids)
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** -t
    return w / w.sum()


def segment_weights(
    manifest: ClusterManifest, temperature: bool | float = 1.0, clusters: Sequence[str] | None = None
) -> tuple[list[ClipRef], list[float], list[int]]:
    """The manifest's clips (as :class:`ClipRef`, without touching the files) with balanced sampling weights and
    cluster indices, usable as a motion library's weights (the distillation plan builds the same table)."""
    chosen = sorted(manifest.clusters) if clusters is None else list(clusters)
    table = {c: [ClipRef.parse(e) for e in manifest.clusters[c]] for c in chosen}
    return cluster_clip_table(table, temperature)


def complexity(joint_vel: np.ndarray, joint_acc: np.ndarray) -> float:
    """mean |qdot|^2 + 0.05 mean |qddot|^2 over frames (squared norms over the 29 joints)."""
    return float(np.square(joint_vel).sum(1).mean() + 0.05 * np.square(joint_acc).sum(1).mean())


def farthest_point_subset(x: np.ndarray, scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of ``m`` rows of ``x`` chosen by weighted farthest-point sampling: each step takes the row maximising
    0.99 x (distance to the chosen set / its maximum) + 0.01 x (rank of ``scores``, e.g. complexity, in [0, 1]).
    The first pick is the highest-scoring row. Deterministic (ties go to the lower index)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    m = min(m, n)
    rank = np.empty(n)
    rank[np.argsort(scores, kind="stable")] = np.arange(n) / max(n - 1, 1)
    chosen = [int(np.argmax(rank))]
    dist = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(1, m):
        top = dist.max()
        score = 0.99 * (dist / top if top > 0 else dist) + 0.01 * rank
        score[chosen] = -np.inf
        nxt = int(np.argmax(score))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(x - x[nxt], axis=1))
    return np.asarray(chosen, dtype=np.int64)
