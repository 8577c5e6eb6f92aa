"""Cluster quality against reference labels: purity, normalised mutual information, adjusted Rand index
(docs/architecture.md, stage 2). Plain numpy: scikit-learn is not a dependency of the project."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contingency(a: Sequence, b: Sequence) -> np.ndarray:
    """Counts (|A|, |B|) of items with label a_i in A and b_i in B."""
    _, ia = np.unique(np.asarray(a), return_inverse=True)
    _, ib = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def purity(clusters: Sequence, labels: Sequence) -> float:
    """Share of items whose label is their cluster's most common label."""
    table = contingency(clusters, labels)
    return float(table.max(1).sum() / table.sum())


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(a: Sequence, b: Sequence) -> float:
    """Mutual information normalised by the arithmetic mean of the two entropies (scikit-learn's default); 1 when
    both labelings are a single group."""
    table = contingency(a, b).astype(np.float64)
    n = table.sum()
    ha, hb = _entropy(table.sum(1)), _entropy(table.sum(0))
    if ha == 0 and hb == 0:
        return 1.0
    pij = table / n
    outer = np.outer(table.sum(1), table.sum(0)) / n**2
    nz = pij > 0
    mi = float((pij[nz] * np.log(pij[nz] / outer[nz])).sum())
    return mi / max((ha + hb) / 2, 1e-12)


def adjusted_rand_index(a: Sequence, b: Sequence) -> float:
    """Hubert and Arabie's adjusted Rand index: 1 for identical partitions, ~0 for independent ones."""
    table = contingency(a, b).astype(np.float64)
    comb = lambda v: v * (v - 1) / 2  # noqa: E731
    index = comb(table).sum()
    rows, cols = comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    total = comb(table.sum())
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))
