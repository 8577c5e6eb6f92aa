"""Distillation on Isaac Lab (``HGPT-Distill``): the same DAgger trainer, checkpoints and resume rules as the MuJoCo
backend (``humanoid_gpt.students.distill``), with the env built by gym over the retained clusters' clips."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from humanoid_gpt.clusters import active_manifest, cluster_clip_table
from humanoid_gpt.experts.registry import ExpertRegistry
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.robot.g1 import load_g1
from humanoid_gpt.students.distill import DistillRun, distill, teacher_task
from humanoid_gpt_tasks.registration import DISTILL_ID
from humanoid_gpt_tasks.tracking_env_cfg import Physics, TrackingEnvCfg, make_tracking_env_cfg


def distill_env_cfg(
    cluster_clips: dict[str, list[Path]],
    tracking: TrackingConfig,
    num_envs: int,
    balance: bool = True,
    physics: Physics = "newton",
    device: str = "cpu",
) -> tuple[TrackingEnvCfg, list[int]]:
    """The ``HGPT-Distill`` config over the clips of ``cluster_clips`` (teacher order), and each clip's cluster
    index. ``balance`` gives every cluster the same total sampling weight."""
    files, weights, owner = cluster_clip_table(cluster_clips, balance)
    cfg = make_tracking_env_cfg(
        [str(f) for f in files], tracking, num_envs, groups=("student", "teacher"), physics=physics, device=device
    )
    cfg.commands.motion.motion_weights = weights
    return cfg, owner


def isaac_distill_env(cfg: TrackingEnvCfg, owner: list[int]) -> tuple[object, Callable[[], torch.Tensor]]:
    """The rsl_rl-wrapped env of ``cfg`` and the per-env cluster index read from its motion command."""
    import gymnasium as gym
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    env = RslRlVecEnvWrapper(gym.make(DISTILL_ID, cfg=cfg))
    command = env.unwrapped.command_manager.get_term("motion")
    cluster_of_clip = torch.tensor(owner, device=command.clip_ids.device)
    return env, lambda: cluster_of_clip[command.clip_ids]


def distill_isaac(run: DistillRun, device: str = "cpu", physics: Physics = "newton", distributed: bool = False) -> Path:
    """Distill inside an Isaac Lab simulation (kit-less on Newton, or Isaac Sim with PhysX); ``distributed``: one
    process per GPU under torchrun, each rank simulating its own envs with its own seed."""
    from isaaclab.app import launch_simulation

    if distributed:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    registry = ExpertRegistry.load(run.registry)
    clusters, tracking = teacher_task(registry)
    manifest = active_manifest()
    rank = int(os.environ.get("RANK", "0"))
    cfg, owner = distill_env_cfg(
        {c: manifest.clip_paths(c) for c in clusters},
        tracking,
        run.dagger.num_envs,
        run.dagger.balance_clusters,
        physics,
        device,
    )
    cfg.seed = run.dagger.seed + rank

    def make_env(cluster_clips, task_tracking, num_envs, seed):
        return isaac_distill_env(cfg, owner)

    with launch_simulation(cfg, {"headless": True, "device": device}):
        return distill(run, load_g1(), make_env, manifest, device)
