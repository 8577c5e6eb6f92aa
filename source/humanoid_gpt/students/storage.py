"""DAgger's data, apart from the algorithm that makes and learns from it (as rsl_rl keeps its rollout storage apart
from PPO): one iteration's rollout, the training windows cut from it, and the aggregated dataset of the last
rollouts (:class:`WindowBuffer`). Everything here is plain tensors, so a checkpoint stores it as it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


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
