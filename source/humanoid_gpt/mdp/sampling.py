"""Where episodes start: uniform over the motion, or adaptive, more often where episodes fail.

Adaptive sampling follows BeyondMimic (Liao et al. 2025): every clip is cut into bins of ``bin_seconds``; each failure
counts in the bin where it happened, and an exponential moving average (weight ``ema`` per control step) keeps each
bin's recent failures per step. An episode starts in a bin with probability proportional to its failures (optionally
smoothed over the bins just after it, so starts land a little before the hard part) plus ``uniform_ratio`` x its
uniform probability. As in BeyondMimic the failures are counts over all envs, so while episodes fail every few
steps the starts follow the failures, and as failures become rare they drift back to uniform.

Bins span every clip of the library, so clips that fail more are sampled more (clip level) and, within a clip, so
are the hard stretches (phase level); the uniform part keeps the library's clip weights (the HME cluster balance).
Both backends call the same object: ``record`` with the clips and times of the episodes that just failed, ``sample``
for new starts, ``step`` once per control step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from humanoid_gpt.errors import ConfigError


@dataclass
class StartSamplingConfig:
    adaptive: bool = False
    """False: clips by the library's weights, times uniform (reference state initialization as in DeepMimic)."""
    bin_seconds: float = 1.0  # BeyondMimic: one bin per second of motion
    uniform_ratio: float = 0.1  # weight of the uniform distribution against failures per step (BeyondMimic 0.1)
    ema: float = 0.001  # weight of one control step's failures in the moving average (BeyondMimic 0.001)
    kernel_size: int = 1  # bins a failure's weight is spread back over (1: only its own bin; BeyondMimic 1)
    kernel_decay: float = 0.8  # weight of each bin further back (BeyondMimic's lambda)

    def validate(self) -> None:
        if self.bin_seconds <= 0:
            raise ConfigError(f"sampling.bin_seconds must be > 0, got {self.bin_seconds}")
        if not self.uniform_ratio > 0.0:
            raise ConfigError(
                f"sampling.uniform_ratio must be > 0 (else motion no episode fails in is never started), got "
                f"{self.uniform_ratio}"
            )
        if not 0.0 < self.ema <= 1.0:
            raise ConfigError(f"sampling.ema must be within (0, 1], got {self.ema}")
        if self.kernel_size < 1 or not 0.0 < self.kernel_decay <= 1.0:
            raise ConfigError("sampling.kernel_size must be >= 1 and sampling.kernel_decay within (0, 1]")


class StartSampler:
    """Episode starts (clip ids, times in s) for a motion library, uniform or adaptive per ``cfg``."""

    def __init__(self, library, cfg: StartSamplingConfig) -> None:
        cfg.validate()
        self.library, self.cfg = library, cfg
        device, duration = library.duration.device, library.duration.double()
        bins = torch.clamp((duration / cfg.bin_seconds).ceil().long(), min=1)
        self.clip_of_bin = torch.repeat_interleave(torch.arange(len(bins), device=device), bins)
        self.first_bin = torch.cumsum(bins, 0) - bins
        self.last_bin = self.first_bin + bins - 1
        self.bin_start = (
            torch.arange(len(self.clip_of_bin), device=device) - self.first_bin[self.clip_of_bin]
        ).double()
        self.bin_start = self.bin_start * cfg.bin_seconds
        self.bin_length = torch.clamp(duration[self.clip_of_bin] - self.bin_start, max=cfg.bin_seconds).clamp_min(0)
        self.failures = torch.zeros(len(self.clip_of_bin), dtype=torch.float64, device=device)
        self._new = torch.zeros_like(self.failures)

    @property
    def num_bins(self) -> int:
        return len(self.clip_of_bin)

    def uniform(self) -> torch.Tensor:
        """Each bin's probability when starts ignore failures: the clip's weight times the bin's share of the clip."""
        lib = self.library
        clip_mass = lib.weights.double() / lib.weights.double().sum()
        share = self.bin_length / lib.duration.double()[self.clip_of_bin].clamp_min(1e-9)
        return clip_mass[self.clip_of_bin] * share

    def probabilities(self) -> torch.Tensor:
        """Each bin's probability of the next start."""
        uniform = self.uniform()
        uniform = uniform / uniform.sum()
        if not self.cfg.adaptive:
            return uniform
        p = self._smoothed(self.failures) + self.cfg.uniform_ratio * uniform
        total = float(p.sum())
        return p / total if total > 0.0 and math.isfinite(total) else uniform

    def _smoothed(self, counts: torch.Tensor) -> torch.Tensor:
        """Bin i gets decay^k x the failures of bin i + k of the same clip, k < kernel_size (kernel normalized)."""
        k, decay = self.cfg.kernel_size, self.cfg.kernel_decay
        if k == 1:
            return counts
        weights = torch.tensor([decay**j for j in range(k)], dtype=counts.dtype, device=counts.device)
        weights = weights / weights.sum()
        out = counts * weights[0]
        for j in range(1, k):
            ahead = torch.zeros_like(counts)
            ahead[:-j] = counts[j:] * (self.clip_of_bin[j:] == self.clip_of_bin[:-j])
            out = out + weights[j] * ahead
        return out

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` (clip id, time) starts."""
        if not self.cfg.adaptive:
            return self.library.sample(n, generator)
        bins = torch.multinomial(self.probabilities(), n, replacement=True, generator=generator)
        u = torch.rand(n, generator=generator, device=bins.device, dtype=torch.float64)
        times = (self.bin_start[bins] + u * self.bin_length[bins]).to(self.library.duration.dtype)
        return self.clip_of_bin[bins], times

    def bin_of(self, clip_ids: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The bin of each (clip, time); times past a clip's end count in its last bin."""
        local = (times.double() / self.cfg.bin_seconds).floor().long().clamp_min(0)
        return torch.minimum(self.first_bin[clip_ids] + local, self.last_bin[clip_ids])

    def record(self, clip_ids: torch.Tensor, times: torch.Tensor) -> None:
        """Episodes that failed at ``times`` of ``clip_ids`` (counted at the next :meth:`step`)."""
        if self.cfg.adaptive and len(clip_ids):
            self._new += torch.bincount(self.bin_of(clip_ids, times), minlength=self.num_bins).double()

    def step(self) -> None:
        """One control step: fold the failures recorded since the last step into the moving average."""
        if self.cfg.adaptive:
            self.failures.mul_(1.0 - self.cfg.ema).add_(self._new, alpha=self.cfg.ema)
            self._new.zero_()

    def state(self) -> dict:
        return {"failures": self.failures.clone(), "new": self._new.clone()}

    def load_state(self, state: dict) -> None:
        if state["failures"].shape != self.failures.shape:
            raise ValueError(
                f"a saved start-sampler state of {state['failures'].shape[0]} bins does not fit {self.num_bins} bins"
            )
        self.failures.copy_(state["failures"])
        self._new.copy_(state["new"])
