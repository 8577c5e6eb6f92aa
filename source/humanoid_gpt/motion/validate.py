"""Checks a clip must pass before anything trains on it. Each finding names the field, the first bad frame and why.

Errors make a clip unusable (NaN, non-unit quaternions, impossible heights or speeds, joint angles so far outside the
G1's limits that the joint order must be wrong, a root quaternion stored in the other order); warnings flag clips a
curator should look at (small limit excess, very fast joints). The quaternion-order test never uses the heading
(:func:`quaternion_order_verdict`): pelvis tilt, and with the robot model the planted feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.kinematics import FOOT_BODIES, forward_kinematics, lowest_foot_points
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

if TYPE_CHECKING:
    from humanoid_gpt.robot.g1 import G1

Severity = Literal["error", "warning"]
QuatOrder = Literal["wxyz", "xyzw"]
QUAT_ORDERS: tuple[QuatOrder, ...] = ("wxyz", "xyzw")


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
    max_foot_sink: float = 0.25  # m below the floor (5th percentile over frames) before the height is called wrong
    """m/s: faster root motion is a teleport or a unit error (sprinting humans reach ~10 m/s)."""
    max_joint_speed: float = 40.0
    """rad/s: a warning above this (the G1's motors top out near 30 rad/s)."""
    upright_tilt: float = 1.2
    """rad: twice the median pelvis tilt (from world up) a reading of the root quaternion may have and still count as
    upright (so 0.6 rad) when telling the quaternion order (see :func:`quaternion_order_verdict`)."""
    order_margin: float = 0.2
    """rad: how much more upright (median pelvis tilt) one reading of the root quaternion must be than the other to
    decide the order from the pelvis alone."""
    foot_flat: float = 0.3
    """rad: the stance tilt of the flatter foot (25th percentile over frames) below which a reading has its feet flat
    on the ground."""
    foot_margin: float = 0.05
    """rad: how much flatter (stance tilt of the flatter foot) the feet of one reading must be than the other's, and
    at least ``foot_ratio`` times, to decide the quaternion order from the feet."""
    foot_ratio: float = 1.5
    skate_margin: float = 0.03
    """m/s: how much slower the planted foot of one reading must move than the other's, and at least
    ``skate_ratio`` times, to decide the quaternion order from foot skating."""
    skate_ratio: float = 3.0


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
            Finding(
                "error",
                "unit_quaternion",
                "root_quat",
                f,
                f"norm {norm[f]:.4f}, expected 1 ({bad.sum()} frames): the quaternion is not a rotation; check "
                "the columns (root x, y, z, then the quaternion) and the export",
            )
        ]
    return []


def tilt(quat_wxyz: np.ndarray) -> np.ndarray:
    """Angle (rad) between the pelvis z axis and world up, per frame."""
    g = R.projected_gravity(torch.from_numpy(quat_wxyz / np.linalg.norm(quat_wxyz, axis=-1, keepdims=True)))
    return torch.arccos((-g[..., 2]).clamp(-1.0, 1.0)).numpy()


def as_wxyz(raw: np.ndarray, order: QuatOrder) -> np.ndarray:
    """Quaternions stored in ``order`` as (w, x, y, z)."""
    if order == "wxyz":
        return np.asarray(raw)
    if order == "xyzw":
        return np.asarray(raw)[..., [3, 0, 1, 2]]
    raise ValueError(f"quaternion order must be one of {QUAT_ORDERS}, got {order!r}")


def _unit(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def foot_evidence(
    readings: dict[str, np.ndarray],
    root_pos: np.ndarray,
    joint_pos: np.ndarray,
    g1: G1,
    fps: float | None = None,
    pairs: int = 100,
) -> tuple[dict[str, float], dict[str, float] | None]:
    """What the feet say about each reading (name -> (T, 4) w, x, y, z) of the root quaternion, by one forward
    kinematics pass over up to ``pairs`` pairs of consecutive frames spread through the clip:

    - stance tilt (rad): the 25th percentile over frames of the tilt of the flatter foot (its ankle roll link's z axis
      from world up): near zero when a planted foot is flat;
    - stance skating (m/s, needs ``fps``): the median horizontal speed of the lower foot: near zero when the planted
      foot stays put.

    Neither depends on the heading. A misread root quaternion turns the whole body about the pelvis, so the feet
    tilt and, as the misreading changes with the pelvis's own motion, slide.
    """
    names = list(readings)
    n = len(root_pos)
    starts = np.unique(np.linspace(0, max(n - 2, 0), min(max(n - 1, 1), pairs)).astype(int))
    idx = np.stack([starts, np.minimum(starts + 1, n - 1)], axis=1).reshape(-1)
    qpos = np.concatenate(
        [np.concatenate([root_pos[idx], _unit(readings[k][idx]), joint_pos[idx]], axis=1) for k in names]
    )
    states = forward_kinematics(g1, qpos, bodies=FOOT_BODIES)
    m = len(idx)
    tilts, skates = {}, {}
    for i, k in enumerate(names):
        tilts[k] = float(np.percentile(tilt(states.quat[i * m : (i + 1) * m]).min(axis=1), 25))
        if fps:
            pos = states.pos[i * m : (i + 1) * m].reshape(-1, 2, len(FOOT_BODIES), 3)  # pair, frame, foot, xyz
            lower, rows = np.argmin(pos[:, 0, :, 2], axis=1), np.arange(len(pos))
            step = np.linalg.norm(pos[rows, 1, lower, :2] - pos[rows, 0, lower, :2], axis=1)
            skates[k] = float(np.median(step) * fps)
    return tilts, (skates if fps else None)


@dataclass(frozen=True)
class OrderVerdict:
    """Which of two readings of a root quaternion is the real one, and why.

    ``best`` is None when the evidence does not decide or the cues disagree; ``by`` names the cues that decided.
    ``pelvis``: each reading's median pelvis tilt (rad); ``feet``: its stance foot tilt (rad) and ``skating``: its
    stance foot speed (m/s), when forward kinematics (and the frame rate) were available.
    """

    best: str | None
    by: str
    pelvis: dict[str, float]
    feet: dict[str, float] | None = None
    skating: dict[str, float] | None = None

    def describe(self) -> str:
        fmt = lambda d: ", ".join(f"{k} {v:.2f}" for k, v in d.items())  # noqa: E731
        parts = [f"median pelvis tilt {fmt(self.pelvis)} rad"]
        if self.feet is not None:
            parts.append(f"stance foot tilt {fmt(self.feet)} rad")
        if self.skating is not None:
            parts.append(f"stance foot speed {fmt(self.skating)} m/s")
        return "; ".join(parts)


def _pick(scores: dict[str, float], limit: float, margin: float, ratio: float = 1.0) -> str | None:
    (a, sa), (b, sb) = sorted(scores.items(), key=lambda kv: kv[1])
    return a if sa < limit and sb - sa > margin and sb >= ratio * sa else None


def quaternion_order_verdict(
    readings: dict[str, np.ndarray],
    root_pos: np.ndarray | None = None,
    joint_pos: np.ndarray | None = None,
    g1: G1 | None = None,
    cfg: ValidationConfig = ValidationConfig(),
    fps: float | None = None,
) -> OrderVerdict:
    """Decide between two readings (name -> (T, 4) w, x, y, z) of the same stored root quaternions.

    No cue uses the heading, so the test works whichever way the clip faces: a body's tilt from world up and a
    planted foot's speed do not change when the motion is turned about z. The cues:

    - pelvis tilt: the real reading keeps the pelvis near upright (median tilt < ``upright_tilt / 2``) and clearly
      more upright than the other (by ``order_margin``). A misread quaternion is another rotation whose tilt follows
      the heading: at most headings far from upright, but near one heading (180 degrees for w-first data read
      x-first, 0 for x-first data read w-first) upright too, and then the pelvis cannot tell.
    - foot tilt and foot skating (need ``g1``, ``root_pos``, ``joint_pos``; skating also ``fps``), see
      :func:`foot_evidence`: the real reading plants flat feet that stay put (stance tilt below ``foot_flat`` and
      ``foot_ratio`` x / ``foot_margin`` below the other's; stance speed ``skate_ratio`` x / ``skate_margin`` below).
      These decide at every heading, the pelvis's blind one included.

    The cues that decide must agree. ``best`` is None when none decides (a clip lying on the floor, say) or they
    disagree.
    """
    if len(readings) != 2:
        raise ValueError("quaternion_order_verdict compares exactly two readings")
    pelvis = {k: float(np.median(tilt(q))) for k, q in readings.items()}
    cues = {"pelvis tilt": _pick(pelvis, 0.5 * cfg.upright_tilt, cfg.order_margin)}
    feet = skating = None
    if g1 is not None and root_pos is not None and joint_pos is not None:
        feet, skating = foot_evidence(readings, root_pos, joint_pos, g1, fps)
        cues["foot tilt"] = _pick(feet, cfg.foot_flat, cfg.foot_margin, cfg.foot_ratio)
        if skating is not None:
            cues["foot skating"] = _pick(skating, math.inf, cfg.skate_margin, cfg.skate_ratio)
    decided = {cue: best for cue, best in cues.items() if best is not None}
    if len(set(decided.values())) > 1:
        by = "cues disagree: " + ", ".join(f"{cue} says {best}" for cue, best in decided.items())
        return OrderVerdict(None, by, pelvis, feet, skating)
    best = next(iter(decided.values()), None)
    return OrderVerdict(best, " and ".join(decided) or "undecided", pelvis, feet, skating)


# The two ways a quaternion read in the wrong order shows up once it is in (w, x, y, z): stored (w, x, y, z) but read
# as (x, y, z, w) it reads as (z, w, x, y) (roll back by one to repair); stored (x, y, z, w) but read as (w, x, y, z)
# it reads as (x, y, z, w) (roll forward by one).
_MISREADS = {
    "stored w, x, y, z but read as x, y, z, w": -1,
    "stored x, y, z, w but read as w, x, y, z": 1,
}


def quaternion_order_misread(
    quat_wxyz: np.ndarray,
    cfg: ValidationConfig = ValidationConfig(),
    root_pos: np.ndarray | None = None,
    joint_pos: np.ndarray | None = None,
    g1: G1 | None = None,
    fps: float | None = None,
) -> tuple[str, OrderVerdict] | None:
    """How the root quaternion was misread (see ``_MISREADS``) with the evidence, or None when the stated reading is
    not beaten. Heading-independent (see :func:`quaternion_order_verdict`); pass ``g1``, ``root_pos``, ``joint_pos``
    (and ``fps``) to use the feet too, which also covers the heading where the pelvis alone cannot tell.

    Forward kinematics only runs when the pelvis does not already clear the stated reading.
    """
    pelvis_stated = float(np.median(tilt(quat_wxyz)))
    for how, shift in _MISREADS.items():
        other = np.roll(quat_wxyz, shift, axis=-1)
        pelvis_other = float(np.median(tilt(other)))
        if pelvis_other > pelvis_stated + cfg.order_margin:
            continue  # the other reading is clearly less upright: nothing to suspect, no kinematics needed
        if g1 is None and pelvis_other >= 0.5 * cfg.upright_tilt:
            continue  # without the feet only an upright other reading can win
        verdict = quaternion_order_verdict({"stated": quat_wxyz, "other": other}, root_pos, joint_pos, g1, cfg, fps)
        if verdict.best == "other":
            return how, verdict
    return None


def quaternion_order_suspect(quat_wxyz: np.ndarray, cfg: ValidationConfig = ValidationConfig(), **fk) -> bool:
    """True when the root quaternion looks stored in the other order (w, x, y, z vs x, y, z, w): the reading with the
    components rotated by one place is clearly the real one (:func:`quaternion_order_verdict`). ``fk``: optional
    ``root_pos``, ``joint_pos``, ``g1``, ``fps`` (see :func:`quaternion_order_misread`)."""
    return quaternion_order_misread(quat_wxyz, cfg, **fk) is not None


def check_quaternion_order(clip: MotionClip, cfg: ValidationConfig, g1: G1 | None = None) -> list[Finding]:
    found = quaternion_order_misread(clip.root_quat, cfg, clip.root_pos, clip.joint_pos, g1, clip.fps)
    if found is None:
        return []
    how, verdict = found
    return [
        Finding(
            "error",
            "quaternion_order",
            "root_quat",
            None,
            f"the root pose is plausible only with the quaternion components rotated by one place (decided by "
            f"{verdict.by}: {verdict.describe()}): the file stores the quaternion in the other order ({how})",
        )
    ]


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


def check_degrees(clip: MotionClip, limits: np.ndarray) -> list[Finding]:
    """Joint angles in degrees: far outside the limits in radians, but inside them once converted."""
    lo, hi = limits[:, 0], limits[:, 1]
    as_rad = np.deg2rad(clip.joint_pos)
    outside = ((clip.joint_pos < lo - 0.5) | (clip.joint_pos > hi + 0.5)).mean()
    inside_if_degrees = ((as_rad >= lo - 0.1) & (as_rad <= hi + 0.1)).mean()
    if outside > 0.2 and inside_if_degrees > 0.98:
        return [
            Finding(
                "error",
                "joint_units",
                "joint_pos",
                None,
                f"joint angles look like degrees (up to {np.abs(clip.joint_pos).max():.0f}; {inside_if_degrees:.0%} "
                "of the values fit the G1's limits once divided by 57.3): the G1 formats store radians; convert them",
            )
        ]
    return []


def check_motion(clip: MotionClip) -> list[Finding]:
    """A clip whose frames are all the same pose is not a motion (a padded or broken export)."""
    still = np.ptp(clip.qpos(), axis=0).max() < 1e-9
    if still:
        return [
            Finding(
                "error",
                "no_motion",
                "frames",
                None,
                f"all {clip.num_frames} frames hold the same pose ({clip.duration / 60:.1f} min): not a motion; "
                "check the export (a padded or constant array)",
            )
        ]
    return []


MAX_PELVIS_TO_SOLE = 0.95
"""Metres, an upper bound of the drop from the G1's pelvis to its lowest sole point over every pose (0.88 m over
20k random poses with straight knees and any pelvis orientation; about 0.8 m standing)."""


def check_ground(clip: MotionClip, cfg: ValidationConfig, g1: G1) -> list[Finding]:
    """Feet far below the floor for most of the clip: a root height relative to the start, or another up axis."""
    # The G1's soles are never more than MAX_PELVIS_TO_SOLE below its pelvis: a clip whose pelvis stays high enough
    # cannot sink its feet past the limit, and needs no forward kinematics (loading every clip runs this check).
    if np.percentile(clip.root_pos[:, 2], 5) >= MAX_PELVIS_TO_SOLE - cfg.max_foot_sink:
        return []
    idx = np.unique(np.linspace(0, clip.num_frames - 1, min(clip.num_frames, 200)).astype(int))
    quat = clip.root_quat[idx] / np.linalg.norm(clip.root_quat[idx], axis=1, keepdims=True)
    qpos = np.concatenate([clip.root_pos[idx], quat, clip.joint_pos[idx]], axis=1)
    floor = float(np.percentile(lowest_foot_points(g1, qpos), 5))
    if floor < -cfg.max_foot_sink:
        return [
            Finding(
                "error",
                "root_height",
                "root_pos[2]",
                None,
                f"the feet are {-floor:.2f} m below the floor for most of the clip (pelvis at "
                f"{clip.root_pos[0, 2]:.3f} m in frame 0): the root height looks relative to the start, or the file "
                "uses another up axis; the G1 formats store the pelvis height above the floor (about 0.79 m standing)",
            )
        ]
    return []


def validate_clip(
    clip: MotionClip, limits: np.ndarray, cfg: ValidationConfig = ValidationConfig(), g1: G1 | None = None
) -> list[Finding]:
    """All findings for ``clip`` against joint ``limits`` (29, 2); an empty list means the clip is clean. With ``g1``
    the quaternion-order check also uses the feet (forward kinematics, only when the pelvis alone cannot clear it)."""
    if clip.num_frames < 2:
        return [Finding("error", "length", "frames", None, f"{clip.num_frames} frames; a clip needs at least 2")]
    if not clip.fps > 0:
        return [Finding("error", "fps", "fps", None, f"frame rate {clip.fps} must be positive")]
    findings = check_finite(clip)
    if findings:  # the other checks are meaningless on NaN
        return findings
    still = check_motion(clip)
    if still:
        return still
    degrees = check_degrees(clip, limits)
    findings = (
        check_quaternion(clip, cfg)
        + check_quaternion_order(clip, cfg, g1)
        + (degrees or check_joint_limits(clip, limits, cfg))  # in degrees, every limit finding would mislead
        + check_root(clip, cfg)
    )
    if g1 is not None and not any(f.check in ("root_height", "quaternion_order") for f in findings):
        findings += check_ground(clip, cfg, g1)
    return findings
