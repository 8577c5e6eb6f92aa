"""Rotation helpers on numpy arrays (the readers are numpy end to end; the project's torch helpers are for training).

Matrices act on column vectors. Quaternions are (w, x, y, z), the project's convention.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

_AXIS = {"x": 0, "y": 1, "z": 2}


def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about one coordinate axis ('x', 'y' or 'z') by ``angle`` radians (...)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i = _AXIS[axis.lower()]
    j, k = (i + 1) % 3, (i + 2) % 3
    out[..., i, i] = 1.0
    out[..., j, j] = c
    out[..., k, k] = c
    out[..., j, k] = -s
    out[..., k, j] = s
    return out


def intrinsic_rotation(axes: str, angles: np.ndarray) -> np.ndarray:
    """R = R_a1(t1) @ R_a2(t2) @ ...: rotations about the listed axes, each about the already rotated frame.

    ``angles`` (..., len(axes)) in radians. An empty ``axes`` gives identities.
    """
    angles = np.asarray(angles, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for n, axis in enumerate(axes):
        out = out @ axis_rotation(axis, angles[..., n])
    return out


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) with w >= 0 from rotation matrices (..., 3, 3)."""
    shape = m.shape[:-2]
    q = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat(scalar_first=True)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(shape + (4,))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shortest-arc spherical interpolation between unit quaternions (..., 4) with weights t (...)."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are one rotation: take the short way
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact to rounding and avoids 0/0
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)
