"""Quaternion maths on batched torch tensors, scalar first (w, x, y, z), any leading batch shape.

One convention everywhere in the project: (w, x, y, z), as MuJoCo and Isaac Lab store it. Files that store (x, y, z, w)
(the G1 CSV) are converted once, on read, with :func:`xyzw_to_wxyz`.
"""

from __future__ import annotations

import torch

_EPS = 1e-9


def xyzw_to_wxyz(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[..., 3:4], q[..., :3]], dim=-1)


def wxyz_to_xyzw(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[..., 1:], q[..., :1]], dim=-1)


def quat_normalize(q: torch.Tensor) -> torch.Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def quat_canonical(q: torch.Tensor) -> torch.Tensor:
    """The same rotation with w >= 0 (q and -q are one rotation)."""
    return torch.where(q[..., :1] < 0, -q, q)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b (apply b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_apply(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * torch.linalg.cross(xyz, v, dim=-1)
    return v + w * t + torch.linalg.cross(xyz, t, dim=-1)


def quat_apply_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v by the inverse of unit quaternions q (world to body frame)."""
    return quat_apply(quat_conjugate(q), v)


def quat_to_rotvec(q: torch.Tensor) -> torch.Tensor:
    """The SO(3) log map: axis * angle (..., 3), angle in [0, pi]."""
    q = quat_canonical(q)
    xyz = q[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle/2) tends to 2 as the angle goes to 0: use the series there to stay finite.
    scale = torch.where(sin_half > 1e-6, angle / sin_half.clamp_min(_EPS), 2.0 + sin_half**2 / 3.0)
    return xyz * scale


def rotvec_to_quat(r: torch.Tensor) -> torch.Tensor:
    """The SO(3) exp map from axis * angle (..., 3) to a unit quaternion."""
    angle = r.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    scale = torch.where(angle > 1e-6, torch.sin(half) / angle.clamp_min(_EPS), 0.5 - angle**2 / 48.0)
    return torch.cat([torch.cos(half), r * scale], dim=-1)


def quat_angle(q: torch.Tensor) -> torch.Tensor:
    """Rotation angle in [0, pi] of unit quaternions (the SO(3) geodesic distance to identity)."""
    return 2.0 * torch.atan2(q[..., 1:].norm(dim=-1), q[..., 0].abs())


def quat_error_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between two orientations, rad."""
    return quat_angle(quat_mul(quat_conjugate(b), a))


def quat_slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc; t broadcasts as (..., 1)."""
    dot = (a * b).sum(-1, keepdim=True)
    b = torch.where(dot < 0, -b, b)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6
    safe = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    wa = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * theta) / safe)
    wb = torch.where(near, t, torch.sin(t * theta) / safe)
    return quat_normalize(wa * a + wb * b)


def yaw_quat(q: torch.Tensor) -> torch.Tensor:
    """The heading part of q: the rotation about world z with q's yaw."""
    w, x, y, z = q.unbind(-1)
    yaw = torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    zeros = torch.zeros_like(yaw)
    return torch.stack([torch.cos(0.5 * yaw), zeros, zeros, torch.sin(0.5 * yaw)], dim=-1)


def roll_pitch(q: torch.Tensor) -> torch.Tensor:
    """Roll and pitch (..., 2) of the intrinsic z-y-x (yaw, pitch, roll) Euler angles, rad, pitch clamped at +-pi/2."""
    w, x, y, z = q.unbind(-1)
    roll = torch.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = torch.asin((2 * (w * y - z * x)).clamp(-1.0, 1.0))
    return torch.stack([roll, pitch], dim=-1)


def projected_gravity(q: torch.Tensor) -> torch.Tensor:
    """World gravity direction (0, 0, -1) seen in the body frame of q."""
    g = torch.zeros(q.shape[:-1] + (3,), dtype=q.dtype, device=q.device)
    g[..., 2] = -1.0
    return quat_apply_inverse(q, g)


def finite_difference(x: torch.Tensor, dt: float) -> torch.Tensor:
    """Time derivative along dim 0: central differences inside, one-sided at the ends (same length as x)."""
    if x.shape[0] < 2:
        return torch.zeros_like(x)
    d = torch.empty_like(x)
    d[1:-1] = (x[2:] - x[:-2]) / (2.0 * dt)
    d[0] = (x[1] - x[0]) / dt
    d[-1] = (x[-1] - x[-2]) / dt
    return d


def angular_velocity(q: torch.Tensor, dt: float, frame: str = "world") -> torch.Tensor:
    """Angular velocity (T, 3) of an orientation track q (T, 4), by central differences on SO(3).

    ``frame="world"`` gives omega in the world frame (log(q[t+1] q[t-1]^-1) / 2dt); ``"body"`` in the body frame.
    """
    if q.shape[0] < 2:
        return torch.zeros(q.shape[:-1] + (3,), dtype=q.dtype, device=q.device)
    prev = torch.cat([q[:1], q[:-2], q[-2:-1]])
    nxt = torch.cat([q[1:2], q[2:], q[-1:]])
    span = torch.full((q.shape[0], 1), 2.0 * dt, dtype=q.dtype, device=q.device)
    span[0] = span[-1] = dt
    if frame == "world":
        delta = quat_mul(nxt, quat_conjugate(prev))
    elif frame == "body":
        delta = quat_mul(quat_conjugate(prev), nxt)
    else:
        raise ValueError(f"frame must be 'world' or 'body', got {frame!r}")
    return quat_to_rotvec(delta) / span
