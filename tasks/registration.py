"""Gym ids for every cluster of the active manifest (``HGPT-Cluster-042`` and ``HGPT-Cluster-042-Play``) and the
distillation task ``HGPT-Distill``. Entry points are strings, so registering imports no Isaac Lab."""

from __future__ import annotations

import gymnasium as gym

from humanoid_gpt.hme.clusters import ClusterManifest, active_manifest, task_id

ENV_ENTRY = "isaaclab.envs:ManagerBasedRLEnv"
CFG_MODULE = "humanoid_gpt_tasks.tracking_env_cfg"
PPO_CFG = "humanoid_gpt_tasks.agents.rsl_rl_ppo_cfg:ExpertPPORunnerCfg"
DISTILL_ID = "HGPT-Distill"


def _register(gym_id: str, cfg_entry: str) -> None:
    if gym_id in gym.registry:
        return
    gym.register(
        id=gym_id,
        entry_point=ENV_ENTRY,
        disable_env_checker=True,
        kwargs={"env_cfg_entry_point": f"{CFG_MODULE}:{cfg_entry}", "rsl_rl_cfg_entry_point": PPO_CFG},
    )


def register_tasks(manifest: ClusterManifest | None = None) -> list[str]:
    """Register the tasks of ``manifest`` (default: the active one); returns the ids."""
    try:
        manifest = manifest or active_manifest()
    except Exception as e:  # a broken manifest must not make the package unimportable; tasks say why when used
        import warnings

        warnings.warn(f"no HGPT cluster tasks registered: {e}", stacklevel=2)
        return []
    ids = []
    for cluster in sorted(manifest.clusters):
        _register(task_id(cluster), f"cluster_{cluster}")
        _register(f"{task_id(cluster)}-Play", f"cluster_{cluster}_play")
        ids += [task_id(cluster), f"{task_id(cluster)}-Play"]
    _register(DISTILL_ID, "distill_cfg")
    return ids + [DISTILL_ID]
