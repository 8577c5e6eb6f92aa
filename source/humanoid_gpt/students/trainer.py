"""The DAgger loop over any env with ``student`` and ``teacher`` observation groups (the native MuJoCo backend, or
Isaac Lab's ``HGPT-Distill`` through rsl_rl's wrapper), single process or torch.distributed (one env set per rank,
gradients averaged by DistributedDataParallel)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from humanoid_gpt.runs import CheckpointError, restore_rng, rng_state, save_checkpoint
from humanoid_gpt.students.base import Student
from humanoid_gpt.students.checkpoint import read_student_checkpoint
from humanoid_gpt.students.dagger import (
    DaggerConfig,
    Rollout,
    WindowBuffer,
    distillation_loss,
    lr_lambda,
    make_optimizer,
    student_core,
    with_history,
)
from humanoid_gpt.students.teachers import TeacherPool

RESUMABLE = ("max_iterations", "max_minutes", "save_interval")
"""DAgger settings a resumed run may change; any other difference makes it another experiment."""


def init_distributed(device: str) -> int:
    """Join the process group torchrun describes (WORLD_SIZE > 1; NCCL on GPUs, gloo on CPU); returns the rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank() if dist.is_initialized() else 0


class DaggerTrainer:
    """``cluster_index()`` returns, for every env, the index (into ``teachers.clusters``) of its motion's cluster.
    ``meta`` (see :func:`student_meta`) goes into every checkpoint."""

    def __init__(
        self,
        env,
        student: Student,
        teachers: TeacherPool,
        cluster_index: Callable[[], torch.Tensor],
        cfg: DaggerConfig,
        meta: dict,
        log_dir: Path | None = None,
        device: str = "cpu",
    ) -> None:
        cfg.validate(student.cfg.context)
        self.env, self.teachers, self.cluster_index, self.cfg, self.meta = env, teachers, cluster_index, cfg, meta
        self.device = torch.device(device)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        student = student.to(self.device)
        self.model = student
        if dist.is_initialized():  # the normalizer all-reduces its own statistics (rsl_rl's EmpiricalNormalization)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(student, device_ids=ids, forward_sync_buffers=False)
        self.optimizer = make_optimizer(student, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        self.buffer = WindowBuffer(cfg.buffer_iterations)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1000 * self.rank)
        self.iteration = 0
        self.log_dir = log_dir
        self.writer = None
        if log_dir is not None and self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))
        self._reset_streams()

    @property
    def student(self) -> Student:
        return student_core(self.model)

    def _reset_streams(self) -> None:
        self.obs = self.env.get_observations()
        self.cache, self.count = self.student.initial_state(self.env.num_envs, self.device)
        self.first = torch.ones(self.env.num_envs, dtype=torch.bool, device=self.device)
        self.history: Rollout | None = None  # the last tokens before the next rollout (students with an overlap)

    # Data -----------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> tuple[Rollout, dict]:
        """Roll out one iteration with the student (teacher actions mixed in with probability beta)."""
        student, n = self.student, self.env.num_envs
        student.eval()
        beta = self.cfg.beta(self.iteration)
        tokens, labels, firsts, teacher_steps, logs = [], [], [], 0, {}
        for _ in range(self.cfg.steps_per_iteration):
            token = self.obs["student"].to(self.device)
            action, self.cache, self.count = student.step(token, self.cache, self.count)
            label = self.teachers.act(self.obs["teacher"].to(self.device), self.cluster_index())
            use_teacher = torch.rand(n, generator=self.generator) < beta
            teacher_steps += int(use_teacher.sum())
            tokens.append(token)
            labels.append(label)
            firsts.append(self.first)
            self.obs, _, done, extras = self.env.step(torch.where(use_teacher[:, None].to(self.device), label, action))
            done = done.to(self.device).bool()
            Student.reset_state(self.cache, self.count, done)
            self.first = done
            for key, value in extras.get("log", {}).items():
                logs.setdefault(key, []).append(float(value))
        rollout = Rollout(torch.stack(tokens, 1), torch.stack(labels, 1), torch.stack(firsts, 1))
        student.normalizer.train()
        student.normalizer.update(rollout.tokens.flatten(0, 1))
        stats = {k.strip("/"): sum(v) / len(v) for k, v in logs.items()}
        stats.update(beta=beta, teacher_action_share=teacher_steps / (n * self.cfg.steps_per_iteration))
        return rollout, stats

    # Learning -------------------------------------------------------------------------------------------------------

    def update(self, windows: Rollout) -> float:
        """One gradient step on ``windows``; returns the loss before the step."""
        self.model.train()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        with autocast:
            loss, _ = distillation_loss(self.model, windows, self.cfg.smooth_l1_beta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def learn(self, iterations: int | None = None, on_iteration: Callable[[int, dict], None] | None = None) -> None:
        """Run until ``cfg.max_iterations`` (or ``iterations`` more), checkpointing every ``save_interval``."""
        end = self.cfg.max_iterations if iterations is None else self.iteration + iterations
        context = self.student.cfg.context
        deadline = time.time() + 60 * self.cfg.max_minutes if self.cfg.max_minutes else float("inf")
        while self.iteration < end and time.time() < deadline:
            start = time.time()
            rollout, stats = self.collect()
            self.buffer.add(self._windows(rollout, context))
            collected = time.time()
            losses = [
                self.update(self.buffer.sample(self.cfg.batch_windows, self.generator))
                for _ in range(self.cfg.updates_per_iteration)
            ]
            trained = time.time()
            stats.update(
                loss=sum(losses) / len(losses),
                lr=self.scheduler.get_last_lr()[0],
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

    def _windows(self, rollout: Rollout, context: int) -> Rollout:
        """Training windows of a rollout; students that need a burn-in get the tokens before each window too."""
        overlap = self.student.training_overlap()
        joined = with_history(rollout, self.history, overlap)
        self.history = joined.last(overlap) if overlap else None
        return joined.windows(context, overlap)

    def _log(self, stats: dict) -> None:
        if self.writer is None:
            return
        for key, value in stats.items():
            self.writer.add_scalar(f"distill/{key}", value, self.iteration)
        self.writer.flush()

    # Checkpoints ------------------------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Everything an exact resume needs (rank 0 writes; atomic)."""
        if self.rank != 0:
            return
        save_checkpoint(
            path,
            {
                "meta": {**self.meta, "iteration": self.iteration, "dagger": self.cfg.to_dict()},
                "model": self.student.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "buffer": self.buffer.state_dict(),
                "rng": {**rng_state(getattr(self.env, "generator", None)), "trainer": self.generator.get_state()},
                # The episodes in flight: envs that can snapshot themselves continue exactly on resume.
                "streams": {
                    "env": self.env.snapshot() if hasattr(self.env, "snapshot") else None,
                    "cache": self.cache,
                    "count": self.count,
                    "first": self.first,
                    "history": None if self.history is None else asdict(self.history),
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
        self.student.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.buffer.load_state_dict(payload["buffer"])
        restore_rng(payload["rng"], getattr(self.env, "generator", None))
        self.generator.set_state(payload["rng"]["trainer"])
        self.iteration = int(saved["iteration"])
        streams = payload.get("streams") or {}
        if streams.get("env") is not None and hasattr(self.env, "restore"):
            self.env.restore(streams["env"])
            self.obs = self.env.get_observations()
            self.cache, self.count, self.first = streams["cache"], streams["count"], streams["first"]
            history = streams.get("history")
            self.history = None if history is None else Rollout(**history)
        else:  # the backend cannot snapshot its envs: episodes restart
            self._reset_streams()
        return self.iteration
