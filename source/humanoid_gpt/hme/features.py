"""Per-frame motion features the Periodic Autoencoders read, windows over them, and clip segments.

Features (74 per frame, after resampling to the PAE rate, 50 Hz by default), chosen to be invariant to where the
robot stands and which way it faces (the release's 36 + 35 + 3 layout, in a translation- and heading-free form):

- pose (36): root height z (1); root orientation with the heading (yaw) removed, as the first two columns of its
  rotation matrix (6); the 29 joint angles in the G1 order (29);
- velocities (35): root linear and angular velocity in the pelvis frame (3 + 3); the 29 joint velocities (29);
- root velocity in the gravity-aligned heading frame (3): forward, lateral, vertical (m/s).

Velocities are central differences at the PAE rate. A window holds ``window_frames`` samples ``frame_step`` frames
apart (41 samples every 5th frame: 4 s at 50 Hz); windows start every ``hop`` frames. Segments cut long clips into
pieces of ``segment_seconds`` (frames at the file's own rate) so a cluster is a kind of motion, not a file. See
docs/architecture.md (stage 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.hme.config import HMEError, PAEConfig
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

FEATURE_SPEC = "g1-hme-74/v1"
"""Identifies the feature layout below; PAE checkpoints record it and refuse other layouts."""

FEATURE_NAMES: tuple[str, ...] = (
    ("root_height",)
    + tuple(f"root_tilt_6d_{i}" for i in range(6))
    + tuple(f"q_{j}" for j in G1_JOINT_NAMES)
    + tuple(f"root_lin_vel_body_{a}" for a in "xyz")
    + tuple(f"root_ang_vel_body_{a}" for a in "xyz")
    + tuple(f"qd_{j}" for j in G1_JOINT_NAMES)
    + tuple(f"root_lin_vel_heading_{a}" for a in "xyz")
)
FEATURE_DIM = len(FEATURE_NAMES)  # 74
JOINT_POS = slice(7, 36)
JOINT_VEL = slice(42, 71)


def frame_features(clip: MotionClip, rate: float = 50.0) -> np.ndarray:
    """The (T', 74) float32 features of ``clip`` resampled to ``rate``; non-finite values raise naming the clip,
    the channel and the frame."""
    _check_clip(clip)
    c = clip if abs(clip.fps - rate) < 1e-9 else clip.resample(rate)
    q = R.quat_normalize(torch.from_numpy(c.root_quat))
    heading = R.yaw_quat(q)
    tilt = R.quat_mul(R.quat_conjugate(heading), q)  # orientation with the heading removed
    axes = torch.eye(3, dtype=q.dtype)
    col_x = R.quat_apply(tilt, axes[0].expand(len(q), 3))
    col_y = R.quat_apply(tilt, axes[1].expand(len(q), 3))
    v_world = torch.from_numpy(c.root_lin_vel("world"))
    feats = torch.cat(
        [
            torch.from_numpy(c.root_pos[:, 2:3]),
            col_x,
            col_y,
            torch.from_numpy(c.joint_pos),
            R.quat_apply_inverse(q, v_world),
            torch.from_numpy(c.root_ang_vel("body")),
            torch.from_numpy(c.joint_vel()),
            R.quat_apply_inverse(heading, v_world),
        ],
        dim=1,
    ).numpy()
    check_features(feats, clip.name)
    return feats.astype(np.float32)


def _check_clip(clip: MotionClip) -> None:
    """Non-finite input named in the clip's own frames and fields (resampling and differences would smear it)."""
    for field, names in (("root_pos", "xyz"), ("root_quat", "wxyz"), ("joint_pos", clip.joint_names)):
        bad = ~np.isfinite(getattr(clip, field))
        if bad.any():
            frame, col = map(int, np.argwhere(bad)[0])
            raise HMEError(
                f"clip {clip.name!r}: non-finite {field} ({names[col]}) at frame {frame} (of {clip.num_frames}; "
                f"{int(bad.any(1).sum())} frames affected), so its HME features would be NaN. Fix: repair or drop "
                "the clip (`hgpt motions check` names the bad field); clips loaded through "
                "humanoid_gpt.motion.load_clip are validated and never have NaNs"
            )


def check_features(feats: np.ndarray, name: str) -> None:
    """Raise :class:`HMEError` naming the clip, channel and frame of the first non-finite feature."""
    bad = ~np.isfinite(feats)
    if bad.any():
        frame, channel = map(int, np.argwhere(bad)[0])
        label = FEATURE_NAMES[channel] if feats.shape[1] == FEATURE_DIM else f"channel {channel}"
        raise HMEError(
            f"clip {name!r}: non-finite HME feature {label} at frame {frame} (of {feats.shape[0]} at the PAE rate; "
            f"{int(bad.any(1).sum())} frames affected). Fix: repair or drop the clip (`hgpt motions check` names the "
            "bad field); clips loaded through humanoid_gpt.motion.load_clip are validated and never have NaNs"
        )


# Windows ----------------------------------------------------------------------------------------------------------


def window_starts(num_frames: int, cfg: PAEConfig, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Start frames (at the PAE rate) of the windows that fit inside frames [lo, hi), every ``hop`` frames."""
    hi = num_frames if hi is None else min(hi, num_frames)
    last = hi - cfg.span
    if last < lo:
        return np.zeros(0, dtype=np.int64)
    return np.arange(lo, last + 1, cfg.hop, dtype=np.int64)


def gather_windows(features: torch.Tensor, starts: torch.Tensor, cfg: PAEConfig) -> torch.Tensor:
    """Windows (W, D, N) from per-frame features (T, D) at window ``starts`` (W,)."""
    offsets = torch.arange(cfg.window_frames, device=features.device) * cfg.frame_step
    return features[starts[:, None] + offsets].transpose(1, 2)


def too_short_error(name: str, frames: int, cfg: PAEConfig) -> HMEError:
    return HMEError(
        f"clip {name!r} is {max(frames - 1, 0) / cfg.rate:.2f} s long ({frames} frames at {cfg.rate:g} Hz); a PAE "
        f"window needs {(cfg.span - 1) / cfg.rate:.2f} s ({cfg.span} frames). Fix: leave it out of the HME sources, "
        "set skip_short: true in the HME config to leave such clips out, or shorten pae.window_seconds (then refit)"
    )


# Segments ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of a clip at the file's rate, and the frames [lo, hi) at the PAE rate inside them."""

    start: int
    stop: int
    lo: int
    hi: int


def rate_range(start: int, stop: int, fps: float, rate: float) -> tuple[int, int]:
    """Frames [lo, hi) at ``rate`` whose times lie inside file frames [start, stop - 1] (at ``fps``)."""
    lo = math.ceil(start / fps * rate - 1e-9)
    hi = math.floor((stop - 1) / fps * rate + 1e-9) + 1
    return lo, hi


def segment_clip(num_frames: int, fps: float, segment_seconds: float, cfg: PAEConfig, name: str = "clip") -> list:
    """Cut a clip of ``num_frames`` at ``fps`` into :class:`Segment` of ``segment_seconds``; a tail shorter than half
    a segment, or holding no full window, joins the segment before it. A clip with no full window raises."""
    _, total = rate_range(0, num_frames, fps, cfg.rate)
    if total < cfg.span:
        raise too_short_error(name, total, cfg)
    length = max(1, int(round(segment_seconds * fps)))
    bounds = [[s, min(s + length, num_frames)] for s in range(0, num_frames, length)]
    if len(bounds) > 1:
        tail_lo, tail_hi = rate_range(*bounds[-1], fps, cfg.rate)
        if bounds[-1][1] - bounds[-1][0] < length / 2 or tail_hi - tail_lo < cfg.span:
            tail = bounds.pop()
            bounds[-1][1] = tail[1]
    return [Segment(s, e, *rate_range(s, e, fps, cfg.rate)) for s, e in bounds]


def clip_label(stem: str) -> str:
    """The motion label a file name carries: ``walk1_subject1`` -> ``walk``, ``dance__B_DadDance`` -> ``dance``."""
    if "__" in stem:
        return stem.split("__", 1)[0]
    action = stem.split("_subject", 1)[0] if "_subject" in stem else stem.split("_", 1)[0]
    return action.rstrip("0123456789") or stem
