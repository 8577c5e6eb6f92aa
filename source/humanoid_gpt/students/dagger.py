"""Parallel DAgger: the student drives every env, its cluster's expert labels every step, the student learns to
copy the labels over windows of H consecutive tokens.

Each iteration rolls out ``steps_per_iteration`` steps in all envs. The executed action is the student's, or with
probability beta (a schedule that decays to zero after warm-up) the teacher's. The last ``buffer_iterations``
rollouts are kept (DAgger's aggregated dataset) and cut into windows of H tokens; every position is labelled and a
position is masked out of the loss once an episode boundary lies between it and the window's start, so no window
mixes two episodes. AdamW, linear warm-up then cosine decay, gradient clipping, bf16 autocast on GPU.

Students whose actions reach further back than their training window (the banded KV GPT: R = n_layer (W - 1) + 1
tokens) ask for an overlap: each window then also carries the R - 1 tokens before it, continued across iterations
(:func:`~humanoid_gpt.students.storage.with_history`), and the student's own ``loss_mask`` says which positions are
exact (docs/architecture.md).

This module is the algorithm (:class:`Dagger`, rsl_rl's ``PPO``): it owns the student, its optimizer and schedule and
the dataset, and never sees an env. :class:`~humanoid_gpt.students.runner.DaggerRunner` (rsl_rl's
``OnPolicyRunner``) steps the env, logs, and saves and resumes checkpoints; the data live in
:mod:`humanoid_gpt.students.storage`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.flags import option
from humanoid_gpt.students.base import Student
from humanoid_gpt.students.storage import Rollout, WindowBuffer, with_history

if TYPE_CHECKING:  # the teachers read expert checkpoints: only a type here, so config readers stay light
    from humanoid_gpt.students.teachers import ForeignTeacher, TeacherPool


@dataclass
class DaggerConfig:
    num_envs: int = option("parallel envs", minimum=1, default=256)
    steps_per_iteration: int = option("control steps per rollout (whole windows of H)", minimum=1, default=32)
    max_iterations: int = option("DAgger iterations", minimum=1, default=1000)
    max_minutes: float | None = option("also stop after this wall-clock budget", minimum=0.0, default=None)
    buffer_iterations: int = option("rollouts kept for training (bounds memory)", minimum=1, default=8)
    updates_per_iteration: int = option("gradient steps per iteration", minimum=1, default=8)
    batch_windows: int = option("windows of H tokens per gradient step", minimum=1, default=256)
    lr: float = option("peak learning rate (AdamW)", minimum=0.0, default=3e-4)
    min_lr: float = option("learning rate at the end of the cosine decay", minimum=0.0, default=3e-5)
    weight_decay: float = option("AdamW weight decay (matrices only)", minimum=0.0, default=0.01)
    warmup_updates: int = option("linear learning-rate warm-up, in gradient steps", minimum=0, default=100)
    grad_clip: float = option("gradient norm clip", minimum=0.0, default=1.0)
    smooth_l1_beta: float = option("SmoothL1 transition point", minimum=0.0, default=1.0)
    beta_start: float = option("probability of executing the teacher's action at iteration 0", minimum=0.0, default=1.0)
    beta_end: float = option("the same after the warm-up", minimum=0.0, default=0.0)
    beta_iterations: int = option("iterations over which teacher actions fade out", minimum=0, default=50)
    max_resident_teachers: int = option("experts kept in memory at once", minimum=1, default=8)
    balance_temperature: float = option(
        "cluster balance of the clips sampled: 0 as the data is, 1 every cluster equally often in total (HME)",
        minimum=0.0,
        default=1.0,
    )
    save_interval: int = option("iterations between checkpoints", minimum=1, default=50)
    seed: int = option("seed of the envs, the student and the sampler", default=1)

    def validate(self, context: int) -> None:
        if self.steps_per_iteration % context:
            raise ConfigError(
                f"--steps-per-iteration {self.steps_per_iteration} must be a whole number of windows of the context "
                f"H={context} (--context)"
            )
        if not 0.0 <= self.balance_temperature <= 1.0:
            raise ConfigError(
                f"--balance-temperature {self.balance_temperature} must be within [0, 1] (0: clips as the data is, "
                "1: every cluster equal)"
            )
        if not 0.0 <= self.beta_end <= 1.0 or not 0.0 <= self.beta_start <= 1.0:
            raise ConfigError("beta_start and beta_end are probabilities in [0, 1]")
        if min(self.num_envs, self.buffer_iterations, self.updates_per_iteration, self.batch_windows) < 1:
            raise ConfigError("num_envs, buffer_iterations, updates_per_iteration and batch_windows must be positive")

    def beta(self, iteration: int) -> float:
        if iteration >= self.beta_iterations:
            return self.beta_end
        return self.beta_start + (self.beta_end - self.beta_start) * iteration / max(self.beta_iterations, 1)

    def total_updates(self) -> int:
        return self.max_iterations * self.updates_per_iteration

    def to_dict(self) -> dict:
        return asdict(self)


def lr_lambda(cfg: DaggerConfig) -> Callable[[int], float]:
    """Multiplier of ``cfg.lr`` at an update: linear warm-up, then cosine down to ``cfg.min_lr``."""
    total, floor = max(cfg.total_updates(), cfg.warmup_updates + 1), cfg.min_lr / cfg.lr

    def f(update: int) -> float:
        if update < cfg.warmup_updates:
            return (update + 1) / cfg.warmup_updates
        progress = min(1.0, (update - cfg.warmup_updates) / (total - cfg.warmup_updates))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def make_optimizer(model: nn.Module, cfg: DaggerConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (nanoGPT's split: no decay on biases and norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def distillation_loss(
    student: nn.Module, windows: Rollout, smooth_l1_beta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """SmoothL1 between the student's actions and the teacher labels over every unmasked position (the student's
    ``loss_mask``); also the number of positions counted."""
    core = student_core(student)
    mask = core.loss_mask(windows.first)
    actions = student(windows.tokens, windows.first) if core.uses_episode_starts else student(windows.tokens)
    per_position = F.smooth_l1_loss(actions, windows.labels, reduction="none", beta=smooth_l1_beta)
    counted = mask.sum()
    return (per_position.mean(-1) * mask).sum() / counted.clamp(min=1), counted


def student_core(model: nn.Module) -> Student:
    """The Student inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)


class Dagger:
    """DAgger's learning side, apart from the env loop so that any backend's env can drive it: the student (wrapped
    in DistributedDataParallel under torch.distributed, one env set per rank), its teachers, AdamW and the learning
    rate schedule, the aggregated dataset, the generator of the teacher mixing and the batch sampling (seeded per
    rank), and the student's streaming state over the envs (caches, episode starts, the overlap history).

    Per control step the runner calls :meth:`act` and :meth:`process_env_step`; per iteration
    :meth:`finish_rollout`, :meth:`aggregate` and :meth:`update`. ``teachers`` may be None when only
    :meth:`gradient_step` is used."""

    def __init__(
        self,
        student: Student,
        teachers: TeacherPool | ForeignTeacher | None,
        cfg: DaggerConfig,
        device: str = "cpu",
    ) -> None:
        cfg.validate(student.cfg.context)
        self.teachers, self.cfg = teachers, cfg
        self.device = torch.device(device)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        student = student.to(self.device)
        self.model: nn.Module = student
        if dist.is_initialized():  # the normalizer all-reduces its own statistics (rsl_rl's EmpiricalNormalization)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(student, device_ids=ids, forward_sync_buffers=False)
        self.optimizer = make_optimizer(student, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        self.buffer = WindowBuffer(cfg.buffer_iterations)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1000 * self.rank)
        # The student's streams over the envs (set by init_streams): caches, which tokens begin an episode.
        self.cache = self.count = self.first = torch.empty(0)
        self.history: Rollout | None = None  # the last tokens before the next rollout (students with an overlap)
        self._steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (token, label, first) per step
        self._teacher_steps = 0

    @property
    def student(self) -> Student:
        """The student itself (the model it trains may be its DistributedDataParallel wrapper)."""
        return student_core(self.model)

    def init_streams(self, num_envs: int) -> None:
        """Every env at the start of an episode: empty caches and no history."""
        self.cache, self.count = self.student.initial_state(num_envs, self.device)
        self.first = torch.ones(num_envs, dtype=torch.bool, device=self.device)
        self.history = None

    # Data -----------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, obs: Mapping[str, torch.Tensor], cluster_index: torch.Tensor, beta: float) -> torch.Tensor:
        """The actions to execute: the student's (streamed through its cache), or in each env with probability
        ``beta`` its teacher's (expert ``cluster_index[i]`` for env i). The student's token and the teacher's label
        are recorded either way: DAgger labels the states the student visits."""
        token = obs["student"].to(self.device)
        action, self.cache, self.count = self.student.step(token, self.cache, self.count)
        label = self.teachers.act(obs["teacher"].to(self.device), cluster_index)
        use_teacher = torch.rand(token.shape[0], generator=self.generator) < beta
        self._teacher_steps += int(use_teacher.sum())
        self._steps.append((token, label, self.first))
        return torch.where(use_teacher[:, None].to(self.device), label, action)

    def process_env_step(self, dones: torch.Tensor) -> None:
        """After the env stepped: envs whose episode ended forget their history, their next token begins one."""
        done = dones.to(self.device).bool()
        Student.reset_state(self.cache, self.count, done)
        self.first = done

    @torch.no_grad()
    def finish_rollout(self) -> tuple[Rollout, float]:
        """The rollout of the steps recorded since the last one, and the share of executed actions that were the
        teacher's. The normalizer learns the rollout's tokens only now, so the student acted with fixed statistics."""
        tokens, labels, firsts = zip(*self._steps, strict=True)
        rollout = Rollout(torch.stack(tokens, 1), torch.stack(labels, 1), torch.stack(firsts, 1))
        teacher_share = self._teacher_steps / (rollout.tokens.shape[0] * len(self._steps))
        self._steps, self._teacher_steps = [], 0
        self.student.normalizer.train()
        self.student.normalizer.update(rollout.tokens.flatten(0, 1))
        return rollout, teacher_share

    def training_windows(self, rollout: Rollout) -> Rollout:
        """Training windows of a rollout; students that need a burn-in get the tokens before each window too,
        continued from the previous rollout."""
        overlap = self.student.training_overlap()
        joined = with_history(rollout, self.history, overlap)
        self.history = joined.last(overlap) if overlap else None
        return joined.windows(self.student.cfg.context, overlap)

    def aggregate(self, rollout: Rollout) -> None:
        """DAgger's aggregation: the rollout's windows join the dataset (the oldest rollout beyond capacity leaves)."""
        self.buffer.add(self.training_windows(rollout))

    # Learning -------------------------------------------------------------------------------------------------------

    def update(self) -> float:
        """An iteration's learning: ``updates_per_iteration`` gradient steps on batches sampled from the dataset;
        returns their mean loss."""
        losses = [
            self.gradient_step(self.buffer.sample(self.cfg.batch_windows, self.generator))
            for _ in range(self.cfg.updates_per_iteration)
        ]
        return sum(losses) / len(losses)

    def gradient_step(self, windows: Rollout) -> float:
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

    @property
    def learning_rate(self) -> float:
        """The rate of the next gradient step (the schedule's)."""
        return self.scheduler.get_last_lr()[0]
