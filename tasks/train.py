"""Expert training on Isaac Lab: the same runner, checkpoints and resume rules as the MuJoCo backend
(``humanoid_gpt.experts.train``), with the env built by gym from the cluster's registered task."""

from __future__ import annotations

import os

from humanoid_gpt.clusters import active_manifest, cluster_of
from humanoid_gpt.experts.train import ExpertRun, train_expert
from humanoid_gpt.robot.g1 import load_g1
from humanoid_gpt_tasks.tracking_env_cfg import Physics, make_tracking_env_cfg


def isaac_env_cfg(run: ExpertRun, device: str = "cpu", physics: Physics = "newton"):
    files = [str(p) for p in active_manifest().clip_paths(cluster_of(run.task))]
    return make_tracking_env_cfg(files, run.tracking, run.num_envs, physics=physics, device=device)


def train_isaac_expert(run: ExpertRun, device: str = "cpu", physics: Physics = "newton", distributed: bool = False):
    """Train inside an Isaac Lab simulation (kit-less on Newton, or Isaac Sim with PhysX).

    ``distributed``: one process per GPU under ``torchrun``; rsl_rl reads WORLD_SIZE / RANK itself, each rank
    simulates its own envs on ``cuda:<LOCAL_RANK>`` with its own seed.
    """
    import gymnasium as gym
    from isaaclab.app import launch_simulation
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    if distributed:
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = f"cuda:{rank}"
        run.seed += int(os.environ.get("RANK", "0"))
    env_cfg = isaac_env_cfg(run, device, physics)
    env_cfg.seed = run.seed

    def make_env(r: ExpertRun):
        return RslRlVecEnvWrapper(gym.make(r.task, cfg=env_cfg))

    with launch_simulation(env_cfg, {"headless": True, "device": device}):
        return train_expert(run, load_g1(), make_env)
