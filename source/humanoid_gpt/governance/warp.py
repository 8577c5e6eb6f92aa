"""Time-warp augmentation: each kept clip played uniformly faster and slower, about 5x the data with the original.

A warp by factor ``s`` is the clip re-timed at ``fps * s`` (the same frames, played ``s`` times as fast: duration
divided by ``s``, every velocity multiplied by it), then resampled to the corpus rate with
:meth:`MotionClip.resample` (linear joints and root position, slerp root rotation). A warped clip whose joints then
move faster than the G1's motors allow (``G1_VELOCITY_LIMITS`` of the retargeter, times ``velocity_tolerance``) is
dropped with that reason, naming the joint and its peak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from humanoid_gpt.catalog.store import warp_name
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.governance.filter_decision import Reason, format_ranges, ranges_of
from humanoid_gpt.governance.filter_frames import velocity_excess
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


class WarpConfigError(HGPTError, ValueError):
    """A warp setting that cannot work: the message names it."""


@dataclass(frozen=True)
class WarpConfig:
    """Speed factors of the time warp (the original, 1.0, is always kept) and the velocity rule."""

    factors: tuple[float, ...] = (0.8, 0.9, 1.1, 1.25)
    """Playback speeds: 1.25 is a quarter faster (duration / 1.25), 0.8 a fifth slower. With the original, about
    5x the frames (sum of 1 / factor: 5.07)."""
    velocity_tolerance: float = 1.0
    """A warped clip whose joint speed exceeds this multiple of a motor's limit anywhere is dropped."""

    def __post_init__(self) -> None:
        factors = tuple(float(f) for f in self.factors)
        bad = [f for f in factors if not (np.isfinite(f) and 0.1 <= f <= 10.0)]
        if bad:
            raise WarpConfigError(f"warps.factors: {bad} are not speed factors in [0.1, 10] (1.25 = 25% faster)")
        if len(set(factors)) != len(factors):
            raise WarpConfigError(f"warps.factors: {list(factors)} lists a factor twice")
        if not self.velocity_tolerance > 0:
            raise WarpConfigError(f"warps.velocity_tolerance must be positive, got {self.velocity_tolerance}")
        object.__setattr__(self, "factors", factors)

    @property
    def all_factors(self) -> tuple[float, ...]:
        """1.0 first, then the configured factors (without a repeated 1.0)."""
        return (1.0, *(f for f in self.factors if f != 1.0))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | list | None) -> WarpConfig:
        """From a YAML ``warps:`` section: a mapping of the fields, or just the list of factors."""
        if data is None:
            return cls()
        if isinstance(data, list | tuple):
            return cls(factors=tuple(data))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WarpConfigError(f"unknown warp setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if k == "factors" else v for k, v in data.items()})


@dataclass
class WarpResult:
    """One warp of a clip: ``clip`` at the target rate, or None when dropped for ``reason``."""

    factor: float
    clip: MotionClip | None
    reason: Reason | None = None
    peak_speed_ratio: float = 0.0
    joint_vel: np.ndarray | None = None  # of the warped clip (reused by the corpus: computed once)

    @property
    def kept(self) -> bool:
        return self.clip is not None


def time_warp(clip: MotionClip, factor: float, fps: float) -> MotionClip:
    """``clip`` played ``factor`` times as fast, at ``fps`` (duration / factor; velocities x factor). Factor 1 at
    the clip's own rate is the clip itself (no resampling round-off)."""
    if not factor > 0:
        raise WarpConfigError(f"a warp factor must be positive, got {factor}")
    retimed = clip.replace(fps=clip.fps * factor) if factor != 1.0 else clip
    out = retimed if abs(retimed.fps - fps) < 1e-9 else retimed.resample(fps)
    prov = dict(clip.provenance or {})
    prov["warp"] = float(factor)
    return out.replace(name=warp_name(clip.name, factor), provenance=prov, fps=float(fps))


def warp_clip(clip: MotionClip, g1: G1, fps: float, config: WarpConfig = WarpConfig()) -> list[WarpResult]:
    """The original (factor 1.0) and every configured warp of ``clip`` at ``fps``, each checked against the G1's
    joint-velocity limits. Too-fast warps come back with ``clip=None`` and a ``warp_velocity`` reason."""
    out = []
    for factor in config.all_factors:
        warped = time_warp(clip, factor, fps)
        joint_vel = warped.joint_vel()
        fast, peak = velocity_excess(warped, g1, config.velocity_tolerance, joint_vel)
        j = int(peak.argmax())
        if fast.any():
            reason = Reason(
                "warp_velocity",
                f"warp x{factor:g}: {g1.joint_names[j]} at {peak[j]:.2f}x its motor's speed limit "
                f"(> {config.velocity_tolerance:g}x) in frames {format_ranges(ranges_of(fast))} at {fps:g} fps",
            )
            out.append(WarpResult(factor, None, reason, float(peak[j])))
        else:
            out.append(WarpResult(factor, warped, None, float(peak[j]), joint_vel))
    return out
