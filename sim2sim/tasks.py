"""Cluster tasks on the native MuJoCo backend: ``HGPT-Cluster-042`` -> the cluster's clips in a MujocoTrackingEnv."""

from __future__ import annotations

from humanoid_gpt.clusters import active_manifest, cluster_of
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
