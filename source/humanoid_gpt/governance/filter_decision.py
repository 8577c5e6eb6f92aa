"""What the filter decides about a clip: a :class:`Reason` (a code, a message, the frames it covers) and the
:class:`FilterDecision` (keep, trim or drop, every reason, the kept segments), and the helpers over the ``[start,
stop)`` frame ranges they carry (shown inclusive, ``120-449``, in tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Action = Literal["keep", "trim", "drop"]


@dataclass
class Reason:
    """Why frames (or the whole clip, ``frames == []``) must go: a short ``code`` (``support``, ``penetration``,
    ``label:sitting``, ...), a message with the measured value and the threshold, ``[start, stop)`` frame ranges."""

    code: str
    message: str
    frames: list[tuple[int, int]] = field(default_factory=list)

    @property
    def whole_clip(self) -> bool:
        return not self.frames

    @property
    def num_frames(self) -> int:
        return sum(b - a for a, b in self.frames)

    def describe(self) -> str:
        where = "whole clip" if self.whole_clip else f"frames {format_ranges(self.frames)}"
        return f"{self.code}: {self.message} ({where})"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "frames": [list(r) for r in self.frames]}

    @classmethod
    def from_dict(cls, data: dict) -> Reason:
        return cls(data["code"], data["message"], [(int(a), int(b)) for a, b in data.get("frames", [])])


@dataclass
class FilterDecision:
    """The verdict on one clip: ``action`` keep / trim / drop, every reason, the kept ``segments`` (``[start,
    stop)`` frames at the clip's rate), the clip's physical scores and labels."""

    name: str
    path: str | None
    action: Action
    frames: int
    fps: float
    reasons: list[Reason] = field(default_factory=list)
    segments: list[tuple[int, int]] = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    @property
    def kept_frames(self) -> int:
        return sum(b - a for a, b in self.segments)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "action": self.action,
            "frames": self.frames,
            "fps": self.fps,
            "seconds": round((self.frames - 1) / self.fps, 3) if self.frames else 0.0,
            "kept_frames": self.kept_frames,
            "segments": [list(s) for s in self.segments],
            "reasons": [r.to_dict() for r in self.reasons],
            "labels": list(self.labels),
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FilterDecision:
        return cls(
            data["name"],
            data.get("path"),
            data["action"],
            int(data["frames"]),
            float(data["fps"]),
            [Reason.from_dict(r) for r in data.get("reasons", [])],
            [(int(a), int(b)) for a, b in data.get("segments", [])],
            dict(data.get("scores", {})),
            list(data.get("labels", [])),
        )


# Frame-range helpers ------------------------------------------------------------------------------------------------


def ranges_of(mask: np.ndarray, min_length: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in ``mask`` at least ``min_length`` long."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length]


def mask_of(ranges: Iterable[tuple[int, int]], length: int, margin: int = 0) -> np.ndarray:
    """A boolean mask of ``length`` frames, True over ``ranges`` widened by ``margin`` frames on both sides."""
    out = np.zeros(length, dtype=bool)
    for a, b in ranges:
        out[max(0, a - margin) : min(length, b + margin)] = True
    return out


def format_ranges(ranges: Sequence[tuple[int, int]], limit: int = 6) -> str:
    """``[(120, 450), (800, 801)]`` -> ``"120-449, 800"`` (inclusive, as people count frames)."""
    parts = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in ranges[:limit]]
    return ", ".join(parts) + (f" (+{len(ranges) - limit} more)" if len(ranges) > limit else "")
