"""The DAgger loop over any env with ``student`` and ``teacher`` observation groups (the native MuJoCo backend, or
Isaac Lab's ``HGPT-Distill`` through rsl_rl's wrapper), single process or torch.distributed (one env set per rank,
gradients averaged by DistributedDataParallel).

:class:`DaggerRunner` is to :class:`~humanoid_gpt.students.dagger.Dagger` what rsl_rl's ``OnPolicyRunner`` is to
``PPO``: it steps the env, logs, and saves and resumes checkpoints; the algorithm owns the student and its learning.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from humanoid_gpt.runs import CheckpointError, restore_rng, rng_state, save_checkpoint
from humanoid_gpt.students.base import Student
from humanoid_gpt.students.checkpoint import read_student_checkpoint
from humanoid_gpt.students.dagger import Dagger, DaggerConfig
from humanoid_gpt.students.storage import Rollout

if TYPE_CHECKING:
    from humanoid_gpt.students.teachers import ForeignTeacher, TeacherPool

RESUMABLE = ("max_iterations", "max_minutes", "save_interval")
"""DAgger settings a resumed run may change; any other difference makes it another experiment."""


def init_distributed(device: str) -> int:
    """Join the process group torchrun describes (WORLD_SIZE > 1; NCCL on GPUs, gloo on CPU); returns the rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank() if dist.is_initialized() else 0


class DaggerRunner:
    """``cluster_index()`` returns, for every env, the index (into ``teachers.clusters``) of its motion's cluster.
    ``meta`` (see :func:`~humanoid_gpt.students.checkpoint.student_meta`) goes into every checkpoint; with a
    ``log_dir``, checkpoints and TensorBoard curves are written there (by rank 0)."""

    def __init__(
        self,
        env: Any,
        student: Student,
        teachers: TeacherPool | ForeignTeacher,
        cluster_index: Callable[[], torch.Tensor],
        cfg: DaggerConfig,
        meta: dict,
        log_dir: Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.env, self.cluster_index, self.cfg, self.meta = env, cluster_index, cfg, meta
        self.alg = Dagger(student, teachers, cfg, device)
        self.iteration = 0
        self.log_dir = log_dir
        self.writer = None
        if log_dir is not None and self.alg.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))
        self._reset_streams()

    def _reset_streams(self) -> None:
        """Episodes as the env has them now, the student's streams empty (a fresh run, or an env that cannot
        snapshot itself)."""
        self.obs = self.env.get_observations()
        self.alg.init_streams(self.env.num_envs)

    # Data -----------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> tuple[Rollout, dict]:
        """Roll out one iteration with the student (teacher actions mixed in with probability beta)."""
        self.alg.student.eval()
        beta = self.cfg.beta(self.iteration)
        logs: dict[str, list[float]] = {}
        for _ in range(self.cfg.steps_per_iteration):
            action = self.alg.act(self.obs, self.cluster_index(), beta)
            self.obs, _, done, extras = self.env.step(action)
            self.alg.process_env_step(done)
            for key, value in extras.get("log", {}).items():
                logs.setdefault(key, []).append(float(value))
        rollout, teacher_share = self.alg.finish_rollout()
        stats = {k.strip("/"): sum(v) / len(v) for k, v in logs.items()}
        stats.update(beta=beta, teacher_action_share=teacher_share)
        return rollout, stats

    # The loop -------------------------------------------------------------------------------------------------------

    def learn(self, iterations: int | None = None, on_iteration: Callable[[int, dict], None] | None = None) -> None:
        """Run until ``cfg.max_iterations`` (or ``iterations`` more), checkpointing every ``save_interval``."""
        end = self.cfg.max_iterations if iterations is None else self.iteration + iterations
        context = self.alg.student.cfg.context
        deadline = time.time() + 60 * self.cfg.max_minutes if self.cfg.max_minutes else float("inf")
        while self.iteration < end and time.time() < deadline:
            start = time.time()
            rollout, stats = self.collect()
            self.alg.aggregate(rollout)
            collected = time.time()
            loss = self.alg.update()
            trained = time.time()
            stats.update(
                loss=loss,
                lr=self.alg.learning_rate,
                env_steps_per_s=rollout.tokens.numel() / rollout.tokens.shape[-1] / (collected - start),
                train_tokens_per_s=self.cfg.updates_per_iteration
                * self.cfg.batch_windows
                * context
                / (trained - collected),
            )
            self.iteration += 1
            self._log(stats)
            if on_iteration is not None:
                on_iteration(self.iteration, stats)
            last = self.iteration == end or time.time() >= deadline
            if self.log_dir is not None and (self.iteration % self.cfg.save_interval == 0 or last):
                self.save(self.log_dir / f"student_{self.iteration}.pt")

    def _log(self, stats: dict) -> None:
        if self.writer is None:
            return
        for key, value in stats.items():
            self.writer.add_scalar(f"distill/{key}", value, self.iteration)
        self.writer.flush()

    # Checkpoints ------------------------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Everything an exact resume needs (rank 0 writes; atomic)."""
        if self.alg.rank != 0:
            return
        alg = self.alg
        save_checkpoint(
            path,
            {
                "meta": {**self.meta, "iteration": self.iteration, "dagger": self.cfg.to_dict()},
                "model": alg.student.state_dict(),
                "optimizer": alg.optimizer.state_dict(),
                "scheduler": alg.scheduler.state_dict(),
                "buffer": alg.buffer.state_dict(),
                "rng": {**rng_state(getattr(self.env, "generator", None)), "trainer": alg.generator.get_state()},
                # The episodes in flight: envs that can snapshot themselves continue exactly on resume.
                "streams": {
                    "env": self.env.snapshot() if hasattr(self.env, "snapshot") else None,
                    "cache": alg.cache,
                    "count": alg.count,
                    "first": alg.first,
                    "history": None if alg.history is None else asdict(alg.history),
                },
            },
        )

    def resume(self, path: Path) -> int:
        """Restore model, normalizer, optimizer, schedule, dataset, RNG and iteration from ``path`` after checking it
        belongs to this run (same student, robot, task and DAgger settings)."""
        payload = read_student_checkpoint(path)
        saved = payload["meta"]
        for key in ("student", "robot", "obs_layout", "tracking", "teachers"):
            if saved.get(key) != self.meta.get(key):
                raise CheckpointError(f"{path}: its {key} differs from this run's; resume with the same options")
        theirs = {k: v for k, v in saved["dagger"].items() if k not in RESUMABLE}
        ours = {k: v for k, v in self.cfg.to_dict().items() if k not in RESUMABLE}
        changed = sorted(k for k in ours if theirs.get(k) != ours[k])
        if changed:
            raise CheckpointError(f"{path}: DAgger settings {', '.join(changed)} differ from this run's")
        alg = self.alg
        alg.student.load_state_dict(payload["model"])
        alg.optimizer.load_state_dict(payload["optimizer"])
        alg.scheduler.load_state_dict(payload["scheduler"])
        alg.buffer.load_state_dict(payload["buffer"])
        restore_rng(payload["rng"], getattr(self.env, "generator", None))
        alg.generator.set_state(payload["rng"]["trainer"])  # the key predates the split: checkpoints keep it
        self.iteration = int(saved["iteration"])
        streams = payload.get("streams") or {}
        if streams.get("env") is not None and hasattr(self.env, "restore"):
            self.env.restore(streams["env"])
            self.obs = self.env.get_observations()
            alg.cache, alg.count, alg.first = streams["cache"], streams["count"], streams["first"]
            history = streams.get("history")
            alg.history = None if history is None else Rollout(**history)
        else:  # the backend cannot snapshot its envs: episodes restart
            self._reset_streams()
        return self.iteration
