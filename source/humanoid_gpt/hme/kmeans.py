"""K-Means for the HME clusters (docs/architecture.md, stage 2), in torch: k-means++ seeding, then Lloyd iterations,
or mini-batch updates (Sculley 2010) for large N. Deterministic under a seed on a given machine.

scikit-learn is not a dependency of the project (and faiss is not installed), so this is the one small function the
stage needs: clustering a few thousand to a few million embeddings of a few dozen dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from humanoid_gpt.hme.config import HMEError

MINIBATCH_ABOVE = 200_000
"""Lloyd on all points up to this many; mini-batch updates above."""
SEED_SAMPLE = 50_000
"""k-means++ seeds from at most this many points (a uniform sample): its cost is N x K distance updates."""
CHUNK = 65_536


@dataclass
class KMeansResult:
    labels: np.ndarray  # (N,) int64
    centers: np.ndarray  # (K, D) float32
    inertia: float  # sum of squared distances to the assigned centre
    iterations: int


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (x.square().sum(1, keepdim=True) - 2.0 * x @ c.T + c.square().sum(1)).clamp_min_(0.0)


def assign(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre and squared distance of every row of ``x``, in chunks (bounded memory at any N)."""
    labels, dists = [], []
    for i in range(0, len(x), CHUNK):
        d = _sq_dist(x[i : i + CHUNK], centers)
        m = d.min(1)
        labels.append(m.indices)
        dists.append(m.values)
    return torch.cat(labels), torch.cat(dists)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur and Vassilvitskii 2007): each next centre drawn with probability ~ D(x)^2."""
    n = len(x)
    centers = torch.empty(k, x.shape[1], dtype=x.dtype)
    centers[0] = x[torch.randint(n, (1,), generator=generator)]
    closest = _sq_dist(x, centers[:1])[:, 0]
    for i in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: any remaining point
            idx = torch.randint(n, (1,), generator=generator)
        else:
            idx = torch.multinomial(closest / total, 1, generator=generator)
        centers[i] = x[idx]
        closest = torch.minimum(closest, _sq_dist(x, centers[i : i + 1])[:, 0])
    return centers


def _lloyd(x: torch.Tensor, centers: torch.Tensor, iterations: int, tol: float) -> tuple[torch.Tensor, int]:
    k = len(centers)
    done = 0
    for it in range(1, iterations + 1):
        done = it
        labels, dists = assign(x, centers)
        sums = torch.zeros_like(centers).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        new = sums / counts.clamp_min(1)[:, None]
        empty = (counts == 0).nonzero().flatten()
        if len(empty):  # an empty cluster takes the points farthest from their centres
            far = dists.topk(len(empty)).indices
            new[empty] = x[far]
        shift = (new - centers).square().sum()
        centers = new
        if shift <= tol * x.var(0).sum() and not len(empty):
            break
    return centers, done


def _minibatch(
    x: torch.Tensor, centers: torch.Tensor, steps: int, batch: int, generator: torch.Generator
) -> torch.Tensor:
    counts = torch.zeros(len(centers), dtype=x.dtype)
    centers = centers.clone()
    for _ in range(steps):
        xb = x[torch.randint(len(x), (batch,), generator=generator)]
        labels, _ = assign(xb, centers)
        counts += torch.bincount(labels, minlength=len(centers)).to(x.dtype)
        sums = torch.zeros_like(centers).index_add_(0, labels, xb)
        hit = torch.bincount(labels, minlength=len(centers)).to(x.dtype)
        # Per-centre learning rate 1 / (points seen): the centre is the running mean of its points.
        rate = (hit / counts.clamp_min(1))[:, None]
        means = sums / hit.clamp_min(1)[:, None]
        centers = torch.where(hit[:, None] > 0, centers + rate * (means - centers), centers)
    return centers


def kmeans(
    x: np.ndarray | torch.Tensor,
    k: int,
    seed: int = 0,
    iterations: int = 100,
    restarts: int = 1,
    batch_size: int = 4096,
    minibatch_above: int = MINIBATCH_ABOVE,
    tol: float = 1e-6,
) -> KMeansResult:
    """Cluster the rows of ``x`` (N, D) into ``k`` groups; the best of ``restarts`` runs by inertia.

    Up to ``minibatch_above`` points: Lloyd iterations until the centres move less than ``tol`` (relative to the
    data's variance) or ``iterations``. Above: mini-batch updates of ``batch_size`` points, max(iterations, two
    passes over the data) steps, then one full assignment."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x).float()
    n = len(x)
    if k < 1:
        raise HMEError(f"K-Means needs k >= 1, got {k}")
    if n < k:
        raise HMEError(
            f"K-Means: {n} points (segments) for {k} clusters; there must be at least as many segments as clusters. "
            "Fix: lower k (or raise target_cluster_size), shorten segment_seconds, or add clips"
        )
    if not torch.isfinite(x).all():
        raise HMEError("K-Means: the embeddings hold NaN or inf; re-embed (hme embed) after fixing the clips")
    generator = torch.Generator().manual_seed(seed)
    best: tuple[float, torch.Tensor, int] | None = None
    for _ in range(max(1, restarts)):
        pool = x if n <= SEED_SAMPLE else x[torch.randperm(n, generator=generator)[:SEED_SAMPLE]]
        centers = kmeans_plus_plus(pool, k, generator)
        if n <= minibatch_above:
            centers, its = _lloyd(x, centers, iterations, tol)
        else:
            its = max(iterations, -(-2 * n // batch_size))
            centers = _minibatch(x, centers, its, batch_size, generator)
        _, dists = assign(x, centers)
        inertia = float(dists.double().sum())
        if best is None or inertia < best[0]:
            best = (inertia, centers, its)
    inertia, centers, its = best
    labels, _ = assign(x, centers)
    return KMeansResult(labels.numpy().astype(np.int64), centers.numpy(), inertia, its)
