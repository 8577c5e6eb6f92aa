"""Retargeting human mocap to the G1: a correspondence table as data, targets, contact locking, and mink IK.

>>> from humanoid_gpt.governance.mocap import read_mocap
>>> from humanoid_gpt.governance.retarget import retarget
>>> clip, report = retarget(read_mocap("walk.bvh"))   # doctest: +SKIP

:class:`Retargeter` is the one code path: ``Retargeter.for_motion(motion)`` calibrates on a clip, ``.retarget(motion)``
retargets it whole, ``.reset()`` / ``.step(positions, rotations)`` frame by frame (live teleoperation).
"""

from __future__ import annotations

from humanoid_gpt.governance.retarget.contacts import ContactLock
from humanoid_gpt.governance.retarget.correspondence import (
    G1_TARGETS,
    REQUIRED_JOINTS,
    SKELETONS,
    BodyTarget,
    Correspondence,
    RetargetError,
    load_mapping,
)
from humanoid_gpt.governance.retarget.retargeter import (
    G1_VELOCITY_LIMITS,
    RETARGETER_VERSION,
    RetargetConfig,
    Retargeter,
    RetargetReport,
    RetargetWarning,
    retarget,
    retarget_file,
    retarget_to,
    write_result,
)
from humanoid_gpt.governance.retarget.targets import G1_STATURE, Calibration, estimate_stature

__all__ = [
    "G1_STATURE",
    "G1_TARGETS",
    "G1_VELOCITY_LIMITS",
    "REQUIRED_JOINTS",
    "RETARGETER_VERSION",
    "SKELETONS",
    "BodyTarget",
    "Calibration",
    "ContactLock",
    "Correspondence",
    "RetargetConfig",
    "RetargetError",
    "RetargetReport",
    "RetargetWarning",
    "Retargeter",
    "estimate_stature",
    "load_mapping",
    "retarget",
    "retarget_file",
    "retarget_to",
    "write_result",
]
