"""Running a trained expert: its policy rebuilt from a checkpoint, evaluated on its cluster's clips and judged into the
expert registry (:func:`judge_expert`: what ``hgpt experts eval`` does for one expert and the main job for each)."""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rsl_rl.utils import resolve_callable

from humanoid_gpt.backends import load_backend
from humanoid_gpt.catalog.manifests import CLUSTER_PREFIX, ClusterManifest, cluster_of
from humanoid_gpt.catalog.refs import load_clip_refs
from humanoid_gpt.experts.checkpoint import load_checkpoint
from humanoid_gpt.experts.registry import ExpertRecord, ExpertRegistry
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.metrics import cached_evaluation
from humanoid_gpt.motion.clip import MotionClip, scored_windows, spread
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


def retention_windows(manifest: ClusterManifest, cluster: str, g1: G1, clips: int, seconds: float) -> list[MotionClip]:
    """What an expert is judged on in bounded time: one window of ``seconds`` from each of up to ``clips`` of its
    cluster's clips, spread through the cluster (a window under 1 s is left out)."""
    refs = spread(manifest.clip_refs(cluster), clips)
    return [w for clip in load_clip_refs(refs, g1) for w in scored_windows(clip, seconds, 1)]


@dataclass(frozen=True)
class Judged:
    """One expert evaluated and recorded: its registry record (verdict and reasons), its checkpoint's metadata (task,
    config hash, PPO config) and the evaluation (per clip and aggregate)."""

    record: ExpertRecord
    meta: dict
    result: dict


def judge_expert(
    registry: ExpertRegistry,
    g1: G1,
    checkpoint: Path,
    clips: Sequence[MotionClip],
    cluster: str | None = None,
    num_envs: int = 16,
    recorded_as: str | Path | None = None,
    cache: Path | None = None,
) -> Judged:
    """Evaluate the expert at ``checkpoint`` on ``clips`` and record it in ``registry`` (not saved) under its cluster
    (see :func:`expert_cluster`), judged by the registry's retention rule; one function, so that the command and the
    main job keep and drop experts alike. ``recorded_as``: the checkpoint path the registry keeps (default:
    ``checkpoint``); ``cache``: a file holding the result, so that a resumed caller does not evaluate again."""
    meta = load_checkpoint(checkpoint)["infos"]["hgpt"]
    cluster = expert_cluster(checkpoint, meta["task"], cluster)
    evaluate = lambda: evaluate_expert(g1, checkpoint, clips, num_envs)  # noqa: E731
    result = evaluate() if cache is None else cached_evaluation(cache, checkpoint, evaluate)
    aggregate = result["aggregate"]
    record = registry.add(cluster, meta["task"], recorded_as or checkpoint, meta["config_hash"], aggregate)
    return Judged(record, meta, result)
