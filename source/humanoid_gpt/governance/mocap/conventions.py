"""Units and up axes: what every reader converts to (metres, Z up, right-handed) and how it guesses the source's.

Up axis. Y-up sources (BVH and ASF/AMC by convention, many SMPL exports) are turned Z-up by the proper rotation
(x, y, z) -> (z, x, y). It maps the usual Y-up character convention (rest pose facing +z, left along +x) onto the
robot's (x forward, y left, z up). The other common choice, (x, y, z) -> (x, -z, y), differs from it only by a 90
degree turn about the vertical; ours is the one under which Unitree's G1 retargeting of LAFAN1 has the same heading
as the BVH (G1 root xy = 0.74 x Hips xy, no rotation). Orientations are conjugated, R' = C R C^T, so that identity
still means the rest pose and forward kinematics with the converted offsets reproduces the converted positions.

Units. A human's standing height is 1.2-2.2 m. When the unit is not given, the reader measures the body in file units
and picks, among metres, centimetres, millimetres and inches, the unit that makes it closest to 1.7 m (on a log
scale: neighbouring candidates are at least 2.54x apart, so a 1.1-2.7 m person in centimetres is still read right).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: Metres per unit.
UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254}
_UNIT_ALIASES = {
    "m": "m", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "cm": "cm", "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "mm": "mm", "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "in": "in", "inch": "in", "inches": "in",
}  # fmt: skip
TYPICAL_STATURE_M = 1.7
PLAUSIBLE_STATURE_M = (1.0, 2.4)

#: (x, y, z) Y-up -> (z, x, y) Z-up: p_zup = Y_UP_TO_Z_UP @ p_yup.
Y_UP_TO_Z_UP = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
UP_AXES = ("y", "z")


class MocapWarning(UserWarning):
    """A mocap file was read, but a guess (unit, up axis) or a repair (dropped partial frame) deserves a look."""


def parse_unit(unit: str | float) -> tuple[str, float]:
    """A unit name ('cm', 'inches', ...) or a number of metres per file unit -> (name, metres per unit)."""
    if isinstance(unit, int | float) and not isinstance(unit, bool):
        if not math.isfinite(unit) or unit <= 0:
            raise ValueError(f"unit scale {unit!r} must be a positive number of metres per file unit")
        return ("custom", float(unit))
    name = _UNIT_ALIASES.get(str(unit).strip().lower())
    if name is None:
        raise ValueError(f"unknown unit {unit!r}: use one of {', '.join(UNIT_SCALES)} or metres per unit as a number")
    return name, UNIT_SCALES[name]


def detect_unit(stature_in_file_units: float, source: str) -> tuple[str, float]:
    """The unit among :data:`UNIT_SCALES` that makes an estimated standing height closest to 1.7 m.

    Warns (:class:`MocapWarning`) when even the best unit gives a height outside 1.0-2.4 m."""
    if not (stature_in_file_units > 0 and math.isfinite(stature_in_file_units)):
        raise ValueError(f"{source}: cannot measure the body to detect the unit; pass unit=")
    name = min(UNIT_SCALES, key=lambda u: abs(math.log(stature_in_file_units * UNIT_SCALES[u] / TYPICAL_STATURE_M)))
    metres = stature_in_file_units * UNIT_SCALES[name]
    lo, hi = PLAUSIBLE_STATURE_M
    if not lo <= metres <= hi:
        warnings.warn(
            f"{source}: unit detected as '{name}' but the body would be {metres:.2f} m tall; pass unit= if wrong",
            MocapWarning,
            stacklevel=3,
        )
    return name, UNIT_SCALES[name]


def parse_up_axis(up_axis: str, source: str) -> str:
    axis = str(up_axis).strip().lower().lstrip("+")
    if axis not in UP_AXES:
        raise ValueError(f"{source}: up axis {up_axis!r} not supported; use 'y' or 'z'")
    return axis


def z_up_matrix(up_axis: str) -> np.ndarray:
    """C with p_zup = C @ p_file for a file whose up axis is ``up_axis`` ('y' or 'z')."""
    return Y_UP_TO_Z_UP.copy() if up_axis == "y" else np.eye(3)


def detect_up_axis(positions: np.ndarray, head: int, feet: list[int]) -> str | None:
    """'x', 'y', 'z' (or '-y' ...) along which the head is above the feet in most frames; None if undecided.

    Uses the median over frames of head minus the mean of the feet: clear when the performer is upright a good part
    of the clip. Returns None when no axis carries at least 60% of that vector's length."""
    up = np.median(positions[:, head] - positions[:, feet].mean(axis=1), axis=0)
    norm = float(np.linalg.norm(up))
    if not norm > 0:
        return None
    i = int(np.argmax(np.abs(up)))
    if abs(up[i]) < 0.6 * norm:
        return None
    return ("-" if up[i] < 0 else "") + "xyz"[i]


def skeleton_span(parents: np.ndarray, lengths: np.ndarray) -> float:
    """The longest path between two joints along the bones (e.g. toe tip to finger tip): a size that does not depend
    on the pose. ``lengths[j]`` is the bone from ``parents[j]`` to j. For a full human skeleton it is about
    1.2-1.45x the standing height (:data:`SPAN_PER_STATURE`)."""
    n = len(parents)
    down = np.zeros(n)  # longest path from j down into its subtree
    best = 0.0
    for j in range(n - 1, -1, -1):  # children after parents: a reverse sweep sees every child before its parent
        p = parents[j]
        if p >= 0:
            reach = down[j] + lengths[j]
            best = max(best, down[p] + reach)  # two branches meeting at p
            down[p] = max(down[p], reach)
    return float(best)


SPAN_PER_STATURE = 1.3
