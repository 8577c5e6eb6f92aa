"""Data governance: reading human mocap, retargeting it to the G1, filtering, time-warping, building corpora.

Only the readers exist so far: :mod:`humanoid_gpt.governance.mocap` turns BVH, ASF/AMC and raw joint-position files
into one in-memory form (:class:`~humanoid_gpt.governance.mocap.HumanMotion`: metres, Z up, global joint positions
and orientations, provenance).
"""
