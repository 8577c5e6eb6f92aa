"""``hgpt distill`` with its teacher read: another lab's tracker file (``--teacher``) is read here, through the deploy
stage (its layout, actuation and task settings), and handed to :func:`humanoid_gpt.students.distill.distill`. The
reading lives with the callers because deploy imports students: students never import deploy. Every entry point that
distils (the CLI, the main job, ``scripts/distill.py``, the evidence scripts) comes through :func:`run_distill`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from humanoid_gpt.backends import Backend
from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.deploy.layouts import layout_names
from humanoid_gpt.deploy.policies import PolicySetup, policy_setup
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.students.distill import (
    DistillRun,
    check_foreign_backend,
    check_teachers,
    distill,
    student_config,
)


def foreign_teacher(run: DistillRun, g1: G1) -> PolicySetup | None:
    """How ``run.teacher`` (another lab's tracker) runs, or None when the registry's experts teach. Exactly one of the
    two must be given."""
    check_teachers(run)
    if run.teacher is None:
        return None
    setup = policy_setup(str(run.teacher), g1, run.layout)
    if setup.layout == "humanoid-gpt":
        raise ConfigError(
            f"--teacher {run.teacher}: not another lab's tracker layout ({', '.join(layout_names())}); our experts "
            "teach through --registry"
        )
    check_foreign_backend(run)
    return setup


def run_distill(
    run: DistillRun,
    g1: G1,
    backend: Backend | None = None,
    manifest: ClusterManifest | None = None,
    on_iteration: Callable[[int, dict], None] | None = None,
) -> Path:
    """:func:`~humanoid_gpt.students.distill.distill` with ``run.teacher`` read by :func:`foreign_teacher`; returns the
    run folder. The run's own options are refused first, before any teacher file is read, as they always were."""
    student_config(run)
    return distill(run, g1, backend, manifest, on_iteration, foreign=foreign_teacher(run, g1))


def run_distill_processes(run: DistillRun, nproc: int) -> None:
    """``hgpt distill`` in ``nproc`` processes (torch.distributed.run, one host): each simulates its own envs,
    DistributedDataParallel averages the gradients, rank 0 writes the checkpoints and curves. The run travels as
    command-line flags, which carry no student overrides."""
    import subprocess
    import sys

    from humanoid_gpt.flags import to_flags

    if run.overrides:
        raise ConfigError(
            f"distill.nproc > 1 launches `hgpt distill`, whose flags cannot carry the student overrides "
            f"{run.overrides}; use distill.context >= 31 for a TCN, or nproc 1"
        )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd += ["-m", "humanoid_gpt.cli", "distill", *to_flags(run)]
    subprocess.run(cmd, check=True)
