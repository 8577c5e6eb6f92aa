"""The interface every student implements: a causal sequence policy over tokens, and the same policy one token at a
time with a fixed-size cache (what runs on the robot and in the streaming ONNX).

- ``forward(tokens)``: (B, T, obs_dim) raw observations, T <= H -> (B, T, num_actions); action t sees tokens <= t.
- ``step(token, cache, count)``: (B, obs_dim) -> (action, cache, count). ``count`` (B,) is how many earlier tokens of
  the episode the cache holds (at most H-1). A fresh or reset cache (zeros, count 0) is an episode start.

``step`` over an episode equals ``forward`` on its last H tokens, at every step including the first H-1.

Training hooks (docs/architecture.md, stage 4): DAgger asks a student how much burn-in history a training window needs
(``training_overlap``), which positions of a window to supervise (``loss_mask``), and whether its ``forward`` takes
the episode starts of a window (``uses_episode_starts``). The defaults are the window model's.
"""

from __future__ import annotations

import torch
from rsl_rl.modules import EmpiricalNormalization
from torch import nn

from humanoid_gpt.students.config import StudentConfig


def window_mask(first: torch.Tensor) -> torch.Tensor:
    """(B, H) True at positions whose window, from its start up to them, lies in one episode: the window students'
    loss mask (here, with the interface that uses it, so no student depends on the training algorithm)."""
    later_starts = first.clone()
    later_starts[:, 0] = False
    return later_starts.cumsum(dim=1) == 0


class Student(nn.Module):
    uses_episode_starts: bool = False
    """True when ``forward(tokens, first)`` keeps episodes within a window apart (the banded KV GPT)."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.normalizer = EmpiricalNormalization(cfg.obs_dim)

    # Subclasses implement these on normalized inputs ------------------------------------------------------------------

    def cache_shape(self) -> tuple[int, ...]:
        """Shape of one env's cache."""
        raise NotImplementedError

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step_normalized(
        self, x: torch.Tensor, cache: torch.Tensor, count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    # The interface ----------------------------------------------------------------------------------------------------

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] > self.cfg.context:
            raise ValueError(f"{tokens.shape[1]} tokens exceed the context H={self.cfg.context}")
        return self.sequence(self.normalizer(tokens))

    def step(
        self, token: torch.Tensor, cache: torch.Tensor, count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action, cache = self.step_normalized(self.normalizer(token), cache, count)
        return action, cache, self.next_count(count)

    def next_count(self, count: torch.Tensor) -> torch.Tensor:
        """The count after one more token (the window students remember at most H-1 earlier tokens)."""
        return torch.clamp(count + 1, max=self.cfg.context - 1)

    def training_overlap(self) -> int:
        """Tokens of earlier history prepended (unsupervised) to each training window of H tokens."""
        return 0

    def loss_mask(self, first: torch.Tensor) -> torch.Tensor:
        """(B, T) True at the positions of training windows whose action the loss counts; ``first`` (B, T) marks
        tokens that begin an episode. Window students: positions not preceded, within the window, by a later start."""
        return window_mask(first)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """An empty cache and count for ``batch`` envs at the start of their episodes."""
        cache = torch.zeros((batch, *self.cache_shape()), device=device)
        return cache, torch.zeros(batch, dtype=torch.long, device=device)

    @staticmethod
    def reset_state(cache: torch.Tensor, count: torch.Tensor, starts: torch.Tensor) -> None:
        """Forget the history of envs where ``starts`` (B,) is True: their next token begins an episode."""
        cache[starts] = 0.0
        count[starts] = 0

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
