"""Distilling the retained experts of a registry into one student, on any backend that can build the env."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from humanoid_gpt import settings
from humanoid_gpt.clusters import ClusterManifest, active_manifest
from humanoid_gpt.experts.checkpoint import CheckpointError
from humanoid_gpt.experts.evaluation import expert_tracking_config
from humanoid_gpt.experts.registry import ExpertRegistry, RegistryError
from humanoid_gpt.experts.train import seed_everything
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.students import build_student, preset
from humanoid_gpt.students.checkpoint import student_meta
from humanoid_gpt.students.dagger import DaggerConfig
from humanoid_gpt.students.teachers import TeacherPool
from humanoid_gpt.students.trainer import DaggerTrainer, init_distributed

MakeEnv = Callable[[dict[str, list[Path]], TrackingConfig, int, int], tuple[object, Callable[[], torch.Tensor]]]
"""(cluster id -> clip paths, task config, num_envs, seed) -> (env, per-env cluster index)."""


@dataclass
class DistillRun:
    registry: Path
    student: str = "gpt-s"
    context: int | None = None  # H; the preset's when None
    log_root: Path | None = None
    run_name: str | None = None
    resume: Path | None = None  # a run folder (its latest checkpoint) or a checkpoint file
    overrides: dict = field(default_factory=dict)  # StudentConfig fields replacing the preset's
    dagger: DaggerConfig = field(default_factory=DaggerConfig)

    @classmethod
    def from_args(cls, args) -> DistillRun:
        given = vars(args)
        dagger = DaggerConfig(**{f.name: given[f.name] for f in fields(DaggerConfig) if given.get(f.name) is not None})
        names = {f.name for f in fields(cls)} - {"dagger"}
        return cls(**{k: v for k, v in given.items() if k in names and v is not None}, dagger=dagger)

    def run_dir(self) -> Path:
        if self.resume is not None:
            return self.resume if self.resume.is_dir() else self.resume.parent
        root = self.log_root or settings.output_root() / "students"
        return root / self.student / (self.run_name or time.strftime("%Y-%m-%d_%H-%M-%S"))


def latest_student_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(run_dir.glob("student_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None


def teacher_task(registry: ExpertRegistry) -> tuple[list[str], TrackingConfig]:
    """The retained clusters (teacher order) and the task config their experts share (from the first one; the
    teacher pool refuses experts that differ from it in action or observation)."""
    retained = registry.retained()
    if not retained:
        raise RegistryError("the expert registry retains no expert: nothing to distill (see the retention rule)")
    clusters = sorted(retained)
    return clusters, expert_tracking_config(retained[clusters[0]].checkpoint)


def distill(
    run: DistillRun,
    g1: G1,
    make_env: MakeEnv,
    manifest: ClusterManifest | None = None,
    device: str = "cpu",
    on_iteration: Callable[[int, dict], None] | None = None,
) -> Path:
    """Train (or resume) a student on the registry's retained experts; returns the run folder. ``on_iteration``
    receives each iteration's statistics (default: print a progress line)."""
    registry = ExpertRegistry.load(run.registry)
    clusters, tracking = teacher_task(registry)
    manifest = manifest or active_manifest()
    cfg = preset(run.student, **({"context": run.context} if run.context else {}), **run.overrides)
    resume_from = None
    if run.resume is not None:
        resume_from = latest_student_checkpoint(run.resume) if run.resume.is_dir() else run.resume
        if resume_from is None:
            raise CheckpointError(f"{run.resume} holds no student checkpoint (student_<iteration>.pt) to resume from")
    rank = init_distributed(device)
    seed_everything(run.dagger.seed + rank)
    env, cluster_index = make_env(
        {c: manifest.clip_paths(c) for c in clusters}, tracking, run.dagger.num_envs, run.dagger.seed + rank
    )
    obs = env.get_observations()
    teachers = TeacherPool(
        registry,
        clusters,
        tracking,
        int(obs["teacher"].shape[-1]),
        env.num_actions,
        g1,
        run.dagger.max_resident_teachers,
    )
    meta = {
        **student_meta(cfg, g1, tracking.to_dict()),
        "teachers": {c: str(p) for c, p in zip(clusters, teachers.checkpoints, strict=True)},
    }
    run_dir = run.run_dir()
    trainer = DaggerTrainer(env, build_student(cfg), teachers, cluster_index, run.dagger, meta, run_dir, device)
    if resume_from is not None:
        trainer.resume(resume_from)
    if rank == 0:
        write_text_atomic(
            run_dir / "config.json",
            json.dumps(
                {
                    "run": {k: str(v) for k, v in asdict(run).items() if k != "dagger"},
                    "dagger": run.dagger.to_dict(),
                    "student": cfg.to_dict(),
                    "tracking": tracking.to_dict(),
                    "teachers": meta["teachers"],
                },
                indent=1,
            ),
        )
    trainer.learn(on_iteration=on_iteration or print_progress)
    env.close()
    return run_dir


def print_progress(iteration: int, stats: dict) -> None:
    length = stats.get("episode_length_s")
    extra = f", episodes {length:.2f} s" if length is not None else ""
    print(
        f"iteration {iteration}: loss {stats['loss']:.4f}, beta {stats['beta']:.2f}, lr {stats['lr']:.2e}, "
        f"{stats['env_steps_per_s']:.0f} env-steps/s, {stats['train_tokens_per_s']:.0f} train tokens/s{extra}",
        flush=True,
    )
