"""Harmonic Motion Embedding and clusters (stage 2; see docs/architecture.md): Periodic Autoencoders learn the
periodic structure of motion, per-segment amplitude and frequency statistics form the HME vector, K-Means groups
segments into clusters, and the cluster manifest names which clip segments make up each cluster, the unit one
expert is trained on. Without an HME manifest, the default one makes one cluster per dataset folder.

``fit``, ``embed``, ``cluster``, ``report`` and ``build`` (:mod:`humanoid_gpt.hme.pipeline`) are imported lazily:
importing this package (as task registration does) stays light."""

from __future__ import annotations

_LAZY = {
    "fit": "humanoid_gpt.hme.pipeline",
    "embed": "humanoid_gpt.hme.pipeline",
    "cluster": "humanoid_gpt.hme.pipeline",
    "report": "humanoid_gpt.hme.pipeline",
    "build": "humanoid_gpt.hme.pipeline",
    "HMEConfig": "humanoid_gpt.hme.config",
    "PAEConfig": "humanoid_gpt.hme.config",
    "load_config": "humanoid_gpt.hme.config",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'humanoid_gpt.hme' has no attribute {name!r}")
