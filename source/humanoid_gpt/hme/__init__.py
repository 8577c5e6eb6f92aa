"""Harmonic Motion Embedding and clusters (stage 2; see docs/architecture.md): Periodic Autoencoders learn the
periodic structure of motion, per-segment amplitude and frequency statistics form the HME vector, K-Means groups
segments into clusters, and the cluster manifest names which clip segments make up each cluster, the unit one
expert is trained on. Without an HME manifest, the default one makes one cluster per dataset folder.

The stage's library calls are ``fit``, ``embed``, ``cluster``, ``report`` and ``build`` in
:mod:`humanoid_gpt.hme.pipeline`, its settings :class:`~humanoid_gpt.hme.config.HMEConfig`. Importing this package
imports nothing else (task registration reads only :mod:`humanoid_gpt.hme.clusters`)."""
