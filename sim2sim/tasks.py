"""Cluster tasks on the native MuJoCo backend: ``HGPT-Cluster-042`` -> the cluster's clips in a MujocoTrackingEnv."""

from __future__ import annotations

from collections.abc import Callable

import torch

from humanoid_gpt.clusters import active_manifest, cluster_clip_table, cluster_of
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.motion.io import load_clips
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt_sim2sim.env import MujocoTrackingEnv


def make_cluster_env(
    g1: G1, task: str, tracking: TrackingConfig, num_envs: int, seed: int = 0, threads: int = 2, compile: bool = False
) -> MujocoTrackingEnv:
    """The tracking env of a cluster task id, built (and checked) before any training step."""
    files = active_manifest().clip_paths(cluster_of(task))
    library = MotionLibrary.from_clips(load_clips(files, g1, progress=True), g1, tracking.keypoints)
    return MujocoTrackingEnv(g1, library, tracking, num_envs, seed, threads, compile=compile)


def make_distill_env(
    g1: G1,
    cluster_clips: dict[str, list],
    tracking: TrackingConfig,
    num_envs: int,
    seed: int = 0,
    threads: int = 2,
    balance: bool = True,
) -> tuple[MujocoTrackingEnv, Callable[[], torch.Tensor]]:
    """The distillation env over the clips of several clusters (cluster id -> clip paths, in teacher order), and a
    function giving each env's cluster index. ``balance`` samples every cluster equally often, whatever its size."""
    files, weights, owner = cluster_clip_table(cluster_clips, balance)
    library = MotionLibrary.from_clips(load_clips(files, g1, progress=True), g1, tracking.keypoints, weights=weights)
    env = MujocoTrackingEnv(g1, library, tracking, num_envs, seed, threads)
    cluster_of_clip = torch.tensor(owner)
    return env, lambda: cluster_of_clip[env.clip_ids]
