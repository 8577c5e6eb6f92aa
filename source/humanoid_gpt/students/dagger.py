"""Parallel DAgger: the student drives every env, its cluster's expert labels every step, the student learns to
copy the labels over windows of H consecutive tokens.

Each iteration rolls out ``steps_per_iteration`` steps in all envs. The executed action is the student's, or with
probability beta (a schedule that decays to zero after warm-up) the teacher's. The last ``buffer_iterations``
rollouts are kept (DAgger's aggregated dataset) and cut into windows of H tokens; every position is labelled and a
position is masked out of the loss once an episode boundary lies between it and the window's start, so no window
mixes two episodes. AdamW, linear warm-up then cosine decay, gradient clipping, bf16 autocast on GPU.

Students whose actions reach further back than their training window (the banded KV GPT: R = n_layer (W - 1) + 1
tokens) ask for an overlap: each window then also carries the R - 1 tokens before it, continued across iterations
(:func:`with_history`), and the student's own ``loss_mask`` says which positions are exact (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.flags import option
from humanoid_gpt.students.base import Student


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


@dataclass
class Rollout:
    """One iteration's data, env-major: tokens (N, T, D), teacher labels (N, T, A), first (N, T) marks tokens that
    begin an episode."""

    tokens: torch.Tensor
    labels: torch.Tensor
    first: torch.Tensor

    def windows(self, context: int, overlap: int = 0) -> Rollout:
        """Cut into windows of ``context`` tokens: (N * T / H, H, ...). With ``overlap`` the rollout starts with that
        many tokens of earlier history (:func:`with_history`) and each window also carries the ``overlap`` tokens
        before it: (N * (T - overlap) / H, overlap + H, ...)."""
        if not overlap:
            cut = lambda x: x.reshape(-1, context, *x.shape[2:])  # noqa: E731
        else:
            length = context + overlap
            cut = lambda x: x.unfold(1, length, context).movedim(-1, 2).reshape(-1, length, *x.shape[2:])  # noqa: E731
        return Rollout(cut(self.tokens), cut(self.labels), cut(self.first))

    def last(self, steps: int) -> Rollout:
        """The last ``steps`` tokens of every env (copies: a checkpoint of them stores only them)."""
        return Rollout(self.tokens[:, -steps:].clone(), self.labels[:, -steps:].clone(), self.first[:, -steps:].clone())


def with_history(rollout: Rollout, history: Rollout | None, steps: int) -> Rollout:
    """``rollout`` with the ``steps`` tokens before it prepended (``history``: the previous rollout's last ones). With
    no history (the first rollout, or envs restarted) the prefix is zeros that the loss never counts: the rollout's
    envs begin episodes at its first token."""
    if steps == 0:
        return rollout
    if history is None:
        n = rollout.tokens.shape[0]
        zeros = lambda x: x.new_zeros((n, steps, *x.shape[2:]))  # noqa: E731
        history = Rollout(zeros(rollout.tokens), zeros(rollout.labels), zeros(rollout.first))
    cat = lambda name: torch.cat([getattr(history, name), getattr(rollout, name)], dim=1)  # noqa: E731
    return Rollout(cat("tokens"), cat("labels"), cat("first"))


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


class WindowBuffer:
    """The aggregated dataset: windows of the last ``capacity`` rollouts."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rollouts: list[Rollout] = []
        self._joined: Rollout | None = None

    def add(self, windows: Rollout) -> None:
        self.rollouts = (self.rollouts + [windows])[-self.capacity :]
        self._joined = None

    def __len__(self) -> int:
        return sum(r.tokens.shape[0] for r in self.rollouts)

    def sample(self, batch: int, generator: torch.Generator) -> Rollout:
        data = self.all()
        idx = torch.randint(0, data.tokens.shape[0], (batch,), generator=generator)
        return Rollout(data.tokens[idx], data.labels[idx], data.first[idx])

    def all(self) -> Rollout:
        if self._joined is None:
            cat = lambda name: torch.cat([getattr(r, name) for r in self.rollouts])  # noqa: E731
            self._joined = Rollout(cat("tokens"), cat("labels"), cat("first"))
        return self._joined

    def state_dict(self) -> dict:
        return {"rollouts": [asdict(r) for r in self.rollouts]}

    def load_state_dict(self, state: dict) -> None:
        self.rollouts, self._joined = [Rollout(**r) for r in state["rollouts"]], None


def student_core(model: nn.Module) -> Student:
    """The Student inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)
