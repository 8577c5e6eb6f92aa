"""The filter's per-frame reasons (:func:`frame_reasons`): which frames of a G1 clip to cut out and why, from its
forward kinematics (:class:`~humanoid_gpt.governance.quality.FrameMeasures`; the list is in
:mod:`~humanoid_gpt.governance.filter`), each reason with its measured value, its threshold and its frame ranges."""

from __future__ import annotations

import numpy as np

from humanoid_gpt.governance.filter_config import FilterConfig
from humanoid_gpt.governance.filter_decision import Reason, mask_of, ranges_of
from humanoid_gpt.governance.quality import FrameMeasures
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


def _motor_limits(g1: G1) -> np.ndarray:
    from humanoid_gpt.governance.retarget.retargeter import G1_VELOCITY_LIMITS

    key = lambda j: j.removeprefix("left_").removeprefix("right_").removesuffix("_joint")  # noqa: E731
    return np.array([G1_VELOCITY_LIMITS[key(j)] for j in g1.joint_names])


def velocity_excess(
    clip: MotionClip, g1: G1, tolerance: float = 1.0, joint_vel: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, whether any joint is faster than ``tolerance`` x its G1 motor limit (T,), and each joint's peak
    speed as a fraction of its limit (29,). Central differences (``clip.joint_vel()`` unless ``joint_vel`` is
    given), as the motion library computes joint velocities."""
    speed = np.abs(clip.joint_vel() if joint_vel is None else joint_vel) / _motor_limits(g1)
    return (speed > tolerance).any(axis=1), speed.max(axis=0) if len(speed) else np.zeros(len(g1.joint_names))


def step_velocity_excess(clip: MotionClip, g1: G1, tolerance: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`velocity_excess` with one-sided differences: a frame counts when the step to the previous or the
    next frame is too fast (central differences halve a one-frame pop and hide it)."""
    if clip.num_frames < 2:
        return np.zeros(clip.num_frames, dtype=bool), np.zeros(len(g1.joint_names))
    step = np.abs(np.diff(clip.joint_pos, axis=0)) * clip.fps / _motor_limits(g1)  # (T-1, 29)
    speed = np.zeros_like(clip.joint_pos)
    speed[1:] = step
    speed[:-1] = np.maximum(speed[:-1], step)
    return (speed > tolerance).any(axis=1), speed.max(axis=0)


def _stretch(mask: np.ndarray, seconds: float, fps: float) -> list[tuple[int, int]]:
    return ranges_of(mask, max(1, int(round(seconds * fps))))


def frame_reasons(clip: MotionClip, g1: G1, config: FilterConfig, m: FrameMeasures) -> list[Reason]:
    """Every per-frame reason of ``clip`` given its measures ``m`` (module docstring)."""
    cfg, fps, T = config, clip.fps, clip.num_frames
    out: list[Reason] = []
    parts = {"feet": m.foot_low.min(axis=1), **m.group_low}
    lowest = np.min(np.stack(list(parts.values())), axis=0)

    deep = -lowest > cfg.penetration_m
    if deep.any():
        worst = min(parts, key=lambda k: parts[k].min())
        out.append(
            Reason(
                "penetration",
                f"{worst} up to {-1000 * lowest.min():.0f} mm below the floor (> {1000 * cfg.penetration_m:.0f} mm)",
                ranges_of(deep),
            )
        )
    air = _stretch(lowest > cfg.float_height, cfg.max_airborne_seconds, fps)
    if air:
        longest = max(b - a for a, b in air) / fps
        out.append(
            Reason(
                "floating",
                f"the whole body over {100 * cfg.float_height:.0f} cm above the floor for up to {longest:.1f} s "
                f"(> {cfg.max_airborne_seconds:g} s, longer than a jump)",
                air,
            )
        )
    planted = (m.foot_low < cfg.skate_contact) & (m.foot_tilt < cfg.skate_tilt)
    skate = _stretch((planted & (m.foot_speed > cfg.skate_speed)).any(axis=1), cfg.skate_seconds, fps)
    if skate:
        out.append(
            Reason(
                "skating",
                f"a planted foot slides faster than {cfg.skate_speed:g} m/s for {cfg.skate_seconds:g} s or more",
                skate,
            )
        )
    lo, hi = g1.joint_limits[:, 0], g1.joint_limits[:, 1]
    excess = np.maximum(0.0, np.maximum(clip.joint_pos - hi, lo - clip.joint_pos))
    over = excess.max(axis=1) > cfg.limit_tolerance
    if over.any():
        j = int(excess.max(axis=0).argmax())
        out.append(
            Reason(
                "joint_limits",
                f"{g1.joint_names[j]} up to {excess[:, j].max():.2f} rad past its range (> {cfg.limit_tolerance:g})",
                ranges_of(over),
            )
        )
    fast, peak = step_velocity_excess(clip, g1, cfg.velocity_tolerance)
    if fast.any():
        j = int(peak.argmax())
        out.append(
            Reason(
                "joint_velocity",
                f"{g1.joint_names[j]} at {peak[j]:.2f}x its motor's speed limit (> {cfg.velocity_tolerance:g}x)",
                ranges_of(fast),
            )
        )
    collide = _stretch(m.collision_depth > cfg.self_collision_depth, cfg.self_collision_seconds, fps)
    if collide:
        out.append(
            Reason(
                "self_collision",
                f"robot parts interpenetrate up to {100 * m.collision_depth.max():.0f} cm (> "
                f"{100 * cfg.self_collision_depth:g} cm for {cfg.self_collision_seconds:g} s or more)",
                collide,
            )
        )
    if T > 3:
        jerk = np.abs(np.diff(clip.joint_pos, n=3, axis=0)).max(axis=1) * fps**3  # (T-3,): frames t..t+3
        spike = np.zeros(T, dtype=bool)
        for k in np.flatnonzero(jerk > cfg.jerk_spike):
            spike[k : k + 4] = True
        if spike.any():
            out.append(
                Reason(
                    "jerk",
                    f"joint jerk spikes up to {jerk.max():.2g} rad/s^3 (> {cfg.jerk_spike:.2g}): a pop in the data",
                    ranges_of(spike),
                )
            )
    z = clip.root_pos[:, 2]
    odd = (z < cfg.root_height_min) | (z > cfg.root_height_max)
    if odd.any():
        out.append(
            Reason(
                "root_height",
                f"pelvis at {z.min():.2f}-{z.max():.2f} m, outside "
                f"[{cfg.root_height_min:g}, {cfg.root_height_max:g}] m",
                ranges_of(odd),
            )
        )
    if T > 1:
        speed = np.linalg.norm(clip.root_lin_vel("world"), axis=1)
        quick = speed > cfg.root_speed_max
        if quick.any():
            out.append(
                Reason(
                    "root_speed",
                    f"pelvis at up to {speed.max():.1f} m/s (> {cfg.root_speed_max:g} m/s)",
                    ranges_of(quick),
                )
            )
    down = {g: m.group_low[g] < h for g, h in cfg.support_height.items() if g in m.group_low}
    support = _stretch(np.any(list(down.values()), axis=0), cfg.support_seconds, fps) if down else []
    if support:
        inside = mask_of(support, T)
        groups = [g for g, d in down.items() if (d & inside).any()]
        out.append(
            Reason(
                "support",
                f"{', '.join(groups)} on the floor for {cfg.support_seconds:g} s or more (crawling, kneeling, "
                "getting up, lying)",
                support,
            )
        )
    nonflat = non_flat_ground(m, config, fps)
    if nonflat:
        out.append(
            Reason(
                "non_flat_ground",
                f"a foot rests still and level over {100 * cfg.step_height:.0f} cm above the floor, or two resting "
                "feet differ by as much (stairs, a box, a slope)",
                nonflat,
            )
        )
    retarget = (clip.provenance or {}).get("retarget") or {}
    if cfg.retarget_flagged and retarget.get("residual_mm"):
        residual = np.asarray(retarget["residual_mm"], dtype=np.float64)
        threshold = float(retarget.get("report", {}).get("threshold_mm", 100.0))
        if len(residual) == T:
            flagged = ~(residual <= threshold)
            if flagged.any():
                out.append(
                    Reason(
                        "retarget",
                        f"the IK could not follow the human: keypoint residual up to {np.nanmax(residual):.0f} mm "
                        f"(> {threshold:.0f} mm)",
                        ranges_of(flagged),
                    )
                )
    return out


def non_flat_ground(m: FrameMeasures, config: FilterConfig, fps: float) -> list[tuple[int, int]]:
    """Frames where a foot rests (still, level) on something: higher than ``step_height`` above the clip's floor
    level, or two resting feet at heights ``step_height`` apart."""
    cfg = config
    n = max(1, int(round(cfg.rest_seconds * fps)))
    still = (m.foot_speed < cfg.rest_speed) & (m.foot_vspeed < cfg.rest_speed) & (m.foot_tilt < cfg.rest_tilt)
    rest = np.stack([mask_of(ranges_of(still[:, f], n), len(still)) for f in range(2)], axis=1)
    floor = float(np.percentile(m.foot_low.min(axis=1), 5)) if len(m.foot_low) else 0.0
    high = (rest & (m.foot_low - floor > cfg.step_height)).any(axis=1)
    apart = rest.all(axis=1) & (np.abs(m.foot_low[:, 0] - m.foot_low[:, 1]) > cfg.step_height)
    return ranges_of(high | apart)
