"""Thin Isaac Lab adapters over the core MDP (``humanoid_gpt.mdp``): a motion-reference command term that owns the
motion library and the per-env clip clocks, and observation, reward, termination and action terms that read the
simulator into :class:`~humanoid_gpt.state.KinematicState` and call the core functions."""

from humanoid_gpt_tasks.mdp.actions import TrackingJointActionCfg
from humanoid_gpt_tasks.mdp.commands import MotionReferenceCommandCfg
from humanoid_gpt_tasks.mdp.terms import (
    motion_end,
    privileged_obs,
    student_obs,
    tracking_failure,
    tracking_reward,
)

__all__ = [
    "MotionReferenceCommandCfg",
    "TrackingJointActionCfg",
    "motion_end",
    "privileged_obs",
    "student_obs",
    "tracking_failure",
    "tracking_reward",
]
