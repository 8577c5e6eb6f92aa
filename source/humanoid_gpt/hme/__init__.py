"""Harmonic Motion Embedding and clusters (stage 2; see docs/architecture.md): Periodic Autoencoders learn the
periodic structure of motion, per-segment amplitude and frequency statistics form the HME vector, K-Means groups
segments into clusters, and the cluster manifest names which clip segments make up each cluster, the unit one
expert is trained on. Without an HME manifest, the default one makes one cluster per dataset folder.

The stage's library calls are ``fit``, ``embed``, ``cluster``, ``report`` and ``build`` in
:mod:`humanoid_gpt.hme.pipeline`, its settings :class:`~humanoid_gpt.hme.config.HMEConfig`. Cluster manifests
themselves are :mod:`humanoid_gpt.catalog.manifests`, so the backends register tasks without importing this package,
which imports nothing else."""
