"""Gym ids of the tracking tasks, registered as Isaac Lab registers its tasks (``gym.register`` with an env config
and an rsl_rl config entry point). ``HGPT-Distill`` is registered when the package is imported; a cluster's tasks
(``HGPT-Cluster-<id>`` and ``-Play``) by :func:`register_tasks` for a manifest, which the package calls for the
active one at import and the backend for the task it is asked to make. Registering imports no Isaac Lab: the
cluster entry points are small functions that import the env config when gym asks for it."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym

from humanoid_gpt.catalog.manifests import ClusterManifest, task_id

ENV_ENTRY = "isaaclab.envs:ManagerBasedRLEnv"
CFG_MODULE = "humanoid_gpt_tasks.tracking_env_cfg"
PPO_CFG = "humanoid_gpt_tasks.agents.rsl_rl_ppo_cfg:ExpertPPORunnerCfg"
DISTILL_ID = "HGPT-Distill"


def _register(gym_id: str, env_cfg: str | Callable) -> None:
    if gym_id not in gym.registry:
        gym.register(
            id=gym_id,
            entry_point=ENV_ENTRY,
            disable_env_checker=True,
            kwargs={"env_cfg_entry_point": env_cfg, "rsl_rl_cfg_entry_point": PPO_CFG},
        )


def cluster_cfg_entry(cluster: str, play: bool) -> Callable:
    """The env config entry point of a cluster's task: a function (Isaac Lab calls it and reads its source file)."""

    def cluster_env_cfg():
        from humanoid_gpt_tasks.tracking_env_cfg import cluster_cfg

        return cluster_cfg(cluster, play)

    cluster_env_cfg.__qualname__ = f"cluster_{cluster}{'_play' if play else ''}"
    return cluster_env_cfg


def register_distill() -> str:
    _register(DISTILL_ID, f"{CFG_MODULE}:distill_cfg")
    return DISTILL_ID


def register_cluster(cluster: str) -> list[str]:
    """Register a cluster's training and play tasks; returns their ids."""
    ids = [task_id(cluster), f"{task_id(cluster)}-Play"]
    for play, gym_id in zip((False, True), ids, strict=True):
        _register(gym_id, cluster_cfg_entry(cluster, play))
    return ids


def register_tasks(manifest: ClusterManifest) -> list[str]:
    """Register the tasks of every cluster of ``manifest``; returns their ids."""
    return [gym_id for cluster in sorted(manifest.clusters) for gym_id in register_cluster(cluster)]
