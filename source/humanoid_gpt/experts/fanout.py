"""Training every cluster of a manifest: one after another locally, or as independent jobs on Ray or on SLURM
through submitit (each job is a whole ``train_expert`` run; clusters never share state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from humanoid_gpt.catalog.manifests import ClusterManifest, task_id
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.experts.train import ExpertRun, train_expert

Executor = Literal["local", "ray", "submitit"]


def train_cluster(run: ExpertRun) -> str:
    """One job: train the cluster's expert on the run's backend. Top-level, so Ray and submitit can pickle it."""
    from humanoid_gpt.robot import load_g1

    return str(train_expert(run, load_g1()))


def cluster_runs(
    manifest: ClusterManifest, template: ExpertRun, clusters: Sequence[str] | None = None
) -> list[ExpertRun]:
    """One run per cluster, from a template run (budget, envs, seed, log root)."""
    chosen = sorted(manifest.clusters) if clusters is None else list(clusters)
    return [replace(template, task=task_id(c)) for c in chosen]


def train_all(
    runs: Sequence[ExpertRun],
    executor: Executor = "local",
    slurm_folder: Path | None = None,
    slurm_params: dict | None = None,
    ray_address: str | None = None,
) -> list[str]:
    """Train ``runs`` and return their run folders, in order.

    ``local``: sequentially in this process. ``ray``: one remote task per run on ``ray_address`` (a local Ray
    instance when None). ``submitit``: one SLURM job per run (``slurm_params`` as for ``update_parameters``; on a
    machine without SLURM, submitit's local executor runs them as subprocesses).
    """
    if executor == "local":
        return [train_cluster(r) for r in runs]
    if executor == "ray":
        import ray

        ray.init(address=ray_address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        job = ray.remote(num_cpus=1)(train_cluster)
        return ray.get([job.remote(r) for r in runs])
    if executor == "submitit":
        import submitit

        folder = slurm_folder or Path("outputs/submitit")
        ex = submitit.AutoExecutor(folder=str(folder))
        ex.update_parameters(**(slurm_params or {"timeout_min": 24 * 60, "cpus_per_task": 2}))
        jobs = [ex.submit(train_cluster, r) for r in runs]
        return [j.result() for j in jobs]
    raise ConfigError(f"executor must be 'local', 'ray' or 'submitit', got {executor!r}")
