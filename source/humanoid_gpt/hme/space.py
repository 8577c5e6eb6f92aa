"""The space K-Means clusters HME segments in: each block of the embedding standardised, then concatenated."""

from __future__ import annotations

import numpy as np

from humanoid_gpt.hme.embed import Embeddings


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns to zero mean and unit variance (K-Means on raw HME would weigh Hz against latent units)."""
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    return (x - mean) / std, mean, std


def cluster_space(emb: Embeddings, features: str) -> tuple[np.ndarray, dict]:
    """The points K-Means clusters for ``features`` (HMEConfig.cluster_features): each block of the embedding
    standardised, then concatenated; and each block's standardisation, to place new segments the same way."""
    blocks = {"hme": emb.hme, "joint_stats": emb.baseline}
    parts, scales = [], {}
    for name in features.split("+"):
        z, mean, std = standardize(blocks[name])
        parts.append(z)
        scales[name] = {"mean": mean.tolist(), "std": std.tolist()}
    return np.concatenate(parts, axis=1), scales
