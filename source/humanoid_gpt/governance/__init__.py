"""Data governance (stage 1, docs/architecture.md): human mocap to a clean, augmented, versioned G1 corpus.

- :mod:`~humanoid_gpt.governance.mocap`: BVH, ASF/AMC and raw joint positions into one form (``HumanMotion``: metres,
  Z up, global joint positions and orientations, provenance);
- :mod:`~humanoid_gpt.governance.retarget`: mink IK from a human skeleton to the G1, batch and streaming;
- :mod:`~humanoid_gpt.governance.quality`: physical scores of a G1 clip (penetration, floating, skating, limits,
  self-collision, jerk);
- :mod:`~humanoid_gpt.governance.filter` (its settings in ``filter_config``, per-frame reasons in ``filter_frames``,
  label reasons in ``filter_labels``, the decision types in ``filter_decision``) and
  :mod:`~humanoid_gpt.governance.warp`: keep / trim / drop with reasons, time-warp augmentation;
- :mod:`~humanoid_gpt.governance.corpus`, :mod:`~humanoid_gpt.governance.card`: building the sharded corpus with
  cached kinematics and its dataset card; the corpus's format and its readers are :mod:`humanoid_gpt.catalog.store`.
"""
