"""Harmonic Motion Embedding and clusters (stage 2): which clips make up each cluster, the unit one expert is trained
on. Until the embedding lands, the default manifest makes one cluster per dataset folder (see docs/architecture.md)."""
