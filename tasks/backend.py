"""The Isaac Lab backend: plans become ``HGPT-Cluster-<id>`` / ``HGPT-Distill`` envs made by gym, inside
``launch_simulation`` (kit-less on Newton, or Isaac Sim with PhysX). Registered as the ``isaaclab`` entry point of
``humanoid_gpt.backends``; the same trainers, checkpoints and resume rules as every backend."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from humanoid_gpt.backends import ClusterIndex, DistillPlan, EnvPlan, ExpertPlan
from humanoid_gpt.catalog.manifests import cluster_of
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt_tasks.registration import DISTILL_ID, register_cluster, register_distill
from humanoid_gpt_tasks.tracking_env_cfg import TrackingEnvCfg, make_tracking_env_cfg


def plan_env_cfg(plan: EnvPlan) -> TrackingEnvCfg:
    """The env config of a plan: its clips and weights, task config, env count, seed, physics and device."""
    groups = ("student", "teacher") if isinstance(plan, DistillPlan) else ("policy", "critic")
    cfg = make_tracking_env_cfg(
        [str(p) for p in plan.clips], plan.tracking, plan.num_envs, groups, plan.physics, plan.device
    )
    cfg.commands.motion.motion_weights = list(plan.weights) if plan.weights is not None else None
    cfg.seed = plan.seed
    return cfg


class IsaacLabBackend:
    name = "isaaclab"

    def __init__(self) -> None:
        self._plan: EnvPlan | None = None
        self._cfg: TrackingEnvCfg | None = None

    def _env_cfg(self, plan: EnvPlan) -> TrackingEnvCfg:
        # The session scans the same config the env is built from: make it once per plan.
        if self._plan is not plan:
            self._plan, self._cfg = plan, plan_env_cfg(plan)
        return self._cfg

    def session(self, plan: EnvPlan) -> contextlib.AbstractContextManager:
        from isaaclab.app import launch_simulation

        return launch_simulation(self._env_cfg(plan), {"headless": True, "device": plan.device})

    def _make(self, gym_id: str, plan: EnvPlan):
        import gymnasium as gym
        from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

        # The task asked for may come from a manifest made after this package was imported.
        if gym_id == DISTILL_ID:
            register_distill()
        else:
            register_cluster(cluster_of(gym_id))
        return RslRlVecEnvWrapper(gym.make(gym_id, cfg=self._env_cfg(plan)))

    def expert_env(self, plan: ExpertPlan):
        return self._make(plan.task, plan)

    def distill_env(self, plan: DistillPlan) -> tuple[object, ClusterIndex]:
        env = self._make(DISTILL_ID, plan)
        command = env.unwrapped.command_manager.get_term("motion")
        cluster_of_clip = torch.tensor(plan.clip_cluster, device=command.clock.clip_ids.device)
        return env, lambda: cluster_of_clip[command.clock.clip_ids]

    def evaluate(
        self,
        clips: Sequence,
        make_policy: Callable,
        tracking: TrackingConfig,
        num_envs: int = 16,
        seed: int = 0,
        progress: bool = True,
        record: bool = False,
    ) -> dict:
        raise HGPTError(
            "evaluation with the paper's metrics runs in the MuJoCo harness (the sim2sim validation step): use "
            "--backend mujoco; Isaac Lab's play tasks (HGPT-Cluster-<id>-Play) are for watching a policy"
        )
