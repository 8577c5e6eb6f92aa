"""``hgpt distill`` with its teachers read: other labs' tracker files (``--teacher``, ``--teacher-map``) are read here,
through the deploy stage (layout, actuation and task settings), and handed to
:func:`humanoid_gpt.students.distill.distill`. The reading lives with the callers because deploy imports students:
students never import deploy. Every entry point that distils (the CLI, the main job, ``scripts/distill.py``, the
evidence scripts) comes through :func:`run_distill`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from humanoid_gpt.backends import Backend
from humanoid_gpt.catalog.manifests import ClusterManifest, active_manifest
from humanoid_gpt.deploy.layouts import layout_names
from humanoid_gpt.deploy.policies import policy_setup
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.io_utils import read_yaml
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.students.distill import (
    DistillRun,
    check_foreign_backend,
    check_teachers,
    distill,
    foreign_taught,
    student_config,
)
from humanoid_gpt.students.teachers import ForeignTeachers


def foreign_teachers(run: DistillRun, g1: G1, manifest: ClusterManifest | None = None) -> ForeignTeachers | None:
    """The tracker files teaching ``run`` (``--teacher-map`` per cluster, ``--teacher`` for every other cluster of the
    manifest) and how each runs, or None when the registry's experts teach."""
    check_teachers(run)
    if not foreign_taught(run):
        return None
    manifest = manifest or active_manifest(run.manifest)
    named = teacher_map(run.teacher_map, manifest) if run.teacher_map is not None else {}
    files = {c: named.get(c, run.teacher) for c in sorted(manifest.clusters)}
    files = {c: Path(f) for c, f in files.items() if f is not None}
    setups = {}
    for path in dict.fromkeys(files.values()):
        setup = policy_setup(str(path), g1, run.layout)
        if setup.layout == "humanoid-gpt":
            raise ConfigError(
                f"--teacher {path}: not another lab's tracker layout ({', '.join(layout_names())}); our experts "
                "teach through --registry"
            )
        setups[path] = setup
    check_foreign_backend(run)
    return ForeignTeachers(files, setups)


def teacher_map(path: Path, manifest: ClusterManifest) -> dict[str, Path]:
    """Cluster id -> tracker file, from a YAML mapping; files relative to the YAML's folder. A cluster the manifest
    does not have, or a file that does not exist, is an error naming the map, the cluster and the fix."""
    raw = read_yaml(path, "teacher map")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: a teacher map is a mapping of cluster ids to tracker files (000: policy.onnx)")
    out = {}
    for cluster, file in raw.items():
        cluster = str(cluster)
        if cluster not in manifest.clusters:
            known = ", ".join(sorted(manifest.clusters)[:8])
            raise ConfigError(f"{path}: cluster {cluster!r} is not in the manifest (its clusters: {known}, ...)")
        if not isinstance(file, str) or not file:
            raise ConfigError(f"{path}: cluster {cluster}: {file!r} is not a tracker file's path (000: policy.onnx)")
        target = Path(file).expanduser()
        target = target if target.is_absolute() else path.parent / target
        if not target.is_file():
            raise ConfigError(
                f"{path}: cluster {cluster}: no tracker file at {target}; fix the path (relative to {path.parent})"
            )
        out[cluster] = target
    return out


def run_distill(
    run: DistillRun,
    g1: G1,
    backend: Backend | None = None,
    manifest: ClusterManifest | None = None,
    on_iteration: Callable[[int, dict], None] | None = None,
) -> Path:
    """:func:`~humanoid_gpt.students.distill.distill` with the tracker files read by :func:`foreign_teachers`;
    returns the run folder. The run's own options are refused first, before any teacher file is read, as they always
    were."""
    student_config(run)
    foreign = foreign_teachers(run, g1, manifest)
    return distill(run, g1, backend, manifest, on_iteration, foreign=foreign)


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
