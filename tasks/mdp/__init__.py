"""Thin Isaac Lab adapters over the core MDP (``humanoid_gpt.mdp``): a motion-reference command term that owns the
motion library and the per-env clip clocks, observation, reward, termination and action terms that read the
simulator into :class:`~humanoid_gpt.state.KinematicState` and call the core functions, and event terms that write
the core's domain-randomisation draws into the simulation."""

from humanoid_gpt_tasks.mdp.actions import TrackingJointActionCfg
from humanoid_gpt_tasks.mdp.commands import MotionReferenceCommandCfg
from humanoid_gpt_tasks.mdp.events import add_torso_mass, push_root, scale_friction, scale_pd_gains, shape_friction
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
    "add_torso_mass",
    "motion_end",
    "privileged_obs",
    "push_root",
    "scale_friction",
    "scale_pd_gains",
    "shape_friction",
    "student_obs",
    "tracking_failure",
    "tracking_reward",
]
