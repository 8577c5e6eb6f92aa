"""Checks a clip must pass before anything trains on it. Each finding names the field, the first bad frame and why.

Errors make a clip unusable (NaN, non-unit quaternions, impossible heights or speeds, joint angles so far outside the
G1's limits that the joint order must be wrong); warnings flag clips a curator should look at (small limit excess,
very fast joints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str
    field: str
    frame: int | None
    message: str

    def __str__(self) -> str:
        at = f" at frame {self.frame}" if self.frame is not None else ""
        return f"{self.severity}: {self.field}{at}: {self.message}"


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of :func:`validate_clip`. Defaults pass every clip of LAFAN1-G1 and G1 Moves."""

    quat_norm_tol: float = 1e-2
    """A root quaternion whose norm is off by more than this is corrupt (smaller drift is renormalized on read)."""
    joint_limit_tol: float = 0.05
    """rad a joint may exceed the model's limit before a warning (retargeting rounds at the limits)."""
    joint_limit_gross: float = 0.5
    """rad beyond a limit that, in more than ``gross_fraction`` of frames, means the joint order is wrong: an error."""
    gross_fraction: float = 0.05
    min_root_height: float = -0.05
    max_root_height: float = 2.5
    max_root_speed: float = 12.0
    """m/s: faster root motion is a teleport or a unit error (sprinting humans reach ~10 m/s)."""
    max_joint_speed: float = 40.0
    """rad/s: a warning above this (the G1's motors top out near 30 rad/s)."""
    upright_tilt: float = 1.2
    """rad: a clip whose pelvis is tilted more than this in most frames, but upright with the quaternion read in the
    other order, stores its quaternion in the wrong order."""


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def check_finite(clip: MotionClip) -> list[Finding]:
    out = []
    for name in ("root_pos", "root_quat", "joint_pos"):
        bad = ~np.isfinite(getattr(clip, name))
        if bad.any():
            frame, col = np.argwhere(bad)[0]
            label = clip.joint_names[col] if name == "joint_pos" else f"{name}[{col}]"
            out.append(Finding("error", "finite", label, int(frame), f"NaN or inf ({bad.any(axis=1).sum()} frames)"))
    return out


def check_quaternion(clip: MotionClip, cfg: ValidationConfig) -> list[Finding]:
    norm = np.linalg.norm(clip.root_quat, axis=1)
    bad = np.abs(norm - 1.0) > cfg.quat_norm_tol
    if bad.any():
        f = _first(bad)
        return [
            Finding("error", "unit_quaternion", "root_quat", f, f"norm {norm[f]:.4f}, expected 1 ({bad.sum()} frames)")
        ]
    return []


def tilt(quat_wxyz: np.ndarray) -> np.ndarray:
    """Angle (rad) between the pelvis z axis and world up, per frame."""
    g = R.projected_gravity(torch.from_numpy(quat_wxyz / np.linalg.norm(quat_wxyz, axis=-1, keepdims=True)))
    return torch.arccos((-g[..., 2]).clamp(-1.0, 1.0)).numpy()


def quaternion_order_suspect(quat_wxyz: np.ndarray, cfg: ValidationConfig = ValidationConfig()) -> bool:
    """True when the root is tilted in most frames but would be upright were the quaternion read in the other order.

    Motion clips are mostly upright; a (w, x, y, z) quaternion read as (x, y, z, w) puts the pelvis on its side.
    """
    stated = np.median(tilt(quat_wxyz))
    # A file that stores (w, x, y, z) where (x, y, z, w) was expected reads as (z, w, x, y): roll back by one.
    other = np.median(tilt(np.roll(quat_wxyz, -1, axis=1)))
    return bool(stated > cfg.upright_tilt and other < 0.5 * cfg.upright_tilt)


def check_quaternion_order(clip: MotionClip, cfg: ValidationConfig) -> list[Finding]:
    if quaternion_order_suspect(clip.root_quat, cfg):
        return [
            Finding(
                "error",
                "quaternion_order",
                "root_quat",
                None,
                "the pelvis lies on its side in most frames but is upright with the quaternion components "
                "rotated by one place: the file stores the quaternion in the other order (w,x,y,z vs x,y,z,w)",
            )
        ]
    return []


def check_joint_limits(clip: MotionClip, limits: np.ndarray, cfg: ValidationConfig) -> list[Finding]:
    lo, hi = limits[:, 0], limits[:, 1]
    excess = np.maximum(lo - clip.joint_pos, clip.joint_pos - hi)  # > 0 beyond a limit
    out = []
    gross = (excess > cfg.joint_limit_gross).mean(axis=0) > cfg.gross_fraction
    if gross.any():
        names = [clip.joint_names[j] for j in np.flatnonzero(gross)]
        out.append(
            Finding(
                "error",
                "joint_order",
                "joint_pos",
                None,
                f"{len(names)} joints ({', '.join(names[:4])}{'...' if len(names) > 4 else ''}) are more "
                f"than {cfg.joint_limit_gross} rad beyond the G1's limits in over "
                f"{cfg.gross_fraction:.0%} of frames: the columns are probably not in the G1 joint order "
                f"({G1_JOINT_NAMES[0]}, {G1_JOINT_NAMES[1]}, ...)",
            )
        )
    over = excess > cfg.joint_limit_tol
    if over.any():
        frame, j = np.unravel_index(np.argmax(excess), excess.shape)
        out.append(
            Finding(
                "warning",
                "joint_limits",
                clip.joint_names[j],
                int(frame),
                f"{excess[frame, j]:.3f} rad beyond the limit ({over.any(axis=1).sum()} frames, "
                f"{over.any(axis=0).sum()} joints past the {cfg.joint_limit_tol} rad tolerance)",
            )
        )
    return out


def check_root(clip: MotionClip, cfg: ValidationConfig) -> list[Finding]:
    out = []
    z = clip.root_pos[:, 2]
    bad = (z < cfg.min_root_height) | (z > cfg.max_root_height)
    if bad.any():
        f = _first(bad)
        out.append(
            Finding(
                "error",
                "root_height",
                "root_pos[2]",
                f,
                f"pelvis height {z[f]:.3f} m outside [{cfg.min_root_height}, {cfg.max_root_height}] m "
                "(wrong units or axis convention? the G1 CSV is in metres, z up)",
            )
        )
    if clip.num_frames > 1:
        speed = np.linalg.norm(np.diff(clip.root_pos, axis=0), axis=1) * clip.fps
        fast = speed > cfg.max_root_speed
        if fast.any():
            f = _first(fast)
            out.append(
                Finding(
                    "error",
                    "root_speed",
                    "root_pos",
                    f,
                    f"root moves at {speed[f]:.1f} m/s (> {cfg.max_root_speed}): a jump in the data or a "
                    "wrong frame rate",
                )
            )
        jspeed = np.abs(np.diff(clip.joint_pos, axis=0)) * clip.fps
        fastj = jspeed > cfg.max_joint_speed
        if fastj.any():
            frame, j = np.unravel_index(np.argmax(jspeed), jspeed.shape)
            out.append(
                Finding(
                    "warning",
                    "joint_speed",
                    clip.joint_names[j],
                    int(frame),
                    f"{jspeed[frame, j]:.1f} rad/s (> {cfg.max_joint_speed}) in {fastj.any(axis=1).sum()} frames",
                )
            )
    return out


def validate_clip(clip: MotionClip, limits: np.ndarray, cfg: ValidationConfig = ValidationConfig()) -> list[Finding]:
    """All findings for ``clip`` against joint ``limits`` (29, 2); an empty list means the clip is clean."""
    if clip.num_frames < 2:
        return [Finding("error", "length", "frames", None, f"{clip.num_frames} frames; a clip needs at least 2")]
    if not clip.fps > 0:
        return [Finding("error", "fps", "fps", None, f"frame rate {clip.fps} must be positive")]
    findings = check_finite(clip)
    if findings:  # the other checks are meaningless on NaN
        return findings
    return (
        check_quaternion(clip, cfg)
        + check_quaternion_order(clip, cfg)
        + check_joint_limits(clip, limits, cfg)
        + check_root(clip, cfg)
    )
