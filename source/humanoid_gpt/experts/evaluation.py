"""Running a trained expert: its policy rebuilt from a checkpoint, evaluated on its cluster's clips."""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from pathlib import Path

from rsl_rl.utils import resolve_callable

from humanoid_gpt.backends import load_backend
from humanoid_gpt.experts.checkpoint import load_checkpoint
from humanoid_gpt.hme.clusters import CLUSTER_PREFIX, cluster_of
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.runs import CheckpointError, robot_hash


def load_expert_policy(checkpoint: str | Path, env, g1: G1 | None = None):
    """The expert's inference policy (actor with its observation normalizer) for ``env``; refuses a checkpoint
    whose observation layout, action count or robot differs from the env's."""
    expect = {"num_actions": int(env.num_actions)}
    if g1 is not None:
        expect["robot"] = robot_hash(g1.xml_path)
    payload = load_checkpoint(checkpoint, expect)
    meta = payload["infos"]["hgpt"]
    obs = env.get_observations()
    dims = {k: int(v.shape[-1]) for k, v in obs.items()}
    wanted = {g: meta["obs_dims"].get(g) for g in meta["train_cfg"]["obs_groups"]["actor"]}
    if any(dims.get(g) != n for g, n in wanted.items()):
        raise CheckpointError(f"{checkpoint}: the expert observes {wanted}, the env gives {dims}")
    cfg = {**copy.deepcopy(meta["train_cfg"]), "multi_gpu": None}  # inference never joins a process group
    with contextlib.redirect_stdout(io.StringIO()):  # rsl_rl prints every model it builds
        alg = resolve_callable(cfg["algorithm"]["class_name"]).construct_algorithm(obs, env, cfg, "cpu")
    alg.load(payload, {"actor": True}, strict=True)
    alg.eval_mode()
    return alg.get_policy()


def expert_tracking_config(checkpoint: str | Path, meta: dict | None = None) -> TrackingConfig:
    """The task config the expert was trained with (its action space, keypoints, thresholds); ``meta``: the
    checkpoint's metadata when the caller has already read it."""
    meta = meta if meta is not None else load_checkpoint(checkpoint)["infos"]["hgpt"]
    if "tracking" not in meta:
        raise CheckpointError(f"{checkpoint}: records no task config (written before checkpoints carried one)")
    return TrackingConfig.from_dict(meta["tracking"])


def evaluate_expert(
    g1: G1,
    checkpoint: str | Path,
    clips: Sequence[MotionClip],
    num_envs: int = 16,
    progress: bool = True,
    backend: str = "mujoco",
) -> dict:
    """Sim2sim metrics of the expert on ``clips`` (each played once from its start, no randomization)."""
    tracking = expert_tracking_config(checkpoint)
    return load_backend(backend).evaluate(
        clips, lambda env: load_expert_policy(checkpoint, env, g1), tracking, num_envs, progress=progress
    )


def expert_cluster(checkpoint: str | Path, task: str, cluster: str | None = None) -> str:
    """The cluster an expert teaches: its task's (``HGPT-Cluster-042`` -> ``042``), or ``cluster`` for an expert
    trained on a task that is not a cluster's. A ``cluster`` that contradicts the task is refused: recording it
    would make distillation use the expert on motions it never learnt."""
    if not task.startswith(CLUSTER_PREFIX):
        if cluster is None:
            raise CheckpointError(f"{checkpoint} was trained on task {task!r}, not a cluster's: pass --cluster ID")
        return cluster
    own = cluster_of(task)
    if cluster is not None and cluster != own:
        raise CheckpointError(
            f"{checkpoint} is the expert of cluster {own} ({task}), not of cluster {cluster}; drop --cluster, or "
            "evaluate that cluster's own expert"
        )
    return own
