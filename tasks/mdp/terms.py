"""Observation, reward and termination terms: each reads the command term's state and calls one core function."""

from __future__ import annotations

import torch

from humanoid_gpt.mdp import observations as O
from humanoid_gpt.mdp.rewards import REWARD_TERMS
from humanoid_gpt.mdp.terminations import FAILURE_TERMS, motion_ended


def _command(env, command_name: str):
    return env.command_manager.get_term(command_name)


def student_obs(env, command_name: str = "motion") -> torch.Tensor:
    cmd = _command(env, command_name)
    return O.student_observation(
        cmd.robot_state(), cmd.ref_next(), env.action_manager.action, cmd.consts, cmd.tracking.randomization
    )


def privileged_obs(env, command_name: str = "motion") -> torch.Tensor:
    cmd = _command(env, command_name)
    return O.privileged_observation(cmd.robot_state(), cmd.ref_next(), env.action_manager.action, cmd.consts)


def tracking_reward(env, term: str, command_name: str = "motion") -> torch.Tensor:
    """One core reward term (the reward manager applies weight * dt, as the MuJoCo backend does)."""
    cmd = _command(env, command_name)
    return REWARD_TERMS[term](cmd.tracking_step(), cmd.tracking.rewards)


def tracking_failure(env, term: str, command_name: str = "motion") -> torch.Tensor:
    cmd = _command(env, command_name)
    return FAILURE_TERMS[term](cmd.tracking_step(), cmd.tracking.terminations)


def motion_end(env, command_name: str = "motion") -> torch.Tensor:
    """The clip ends before the next step: a time-out."""
    cmd = _command(env, command_name)
    return motion_ended(cmd.clock.motion_time + cmd.dt, cmd.library.duration[cmd.clock.clip_ids], cmd.dt)
