"""The motion library: many clips as flat torch tensors, queried in batches by (clip, time).

Every per-frame quantity a tracker needs (reference joints, root and body poses and velocities) is computed once at
build time (forward kinematics included; clips from a built corpus bring theirs cached) and packed into two tensors:
one of values that interpolate linearly and one of quaternions that slerp. A query is then two gathers and one blend
for any number of environments, with no Python loop over environments or clips.

Quaternion tracks are made sign-continuous at build time and each frame stores the angle to the next one, so a
query's slerp is two sines and a weighted sum (about 4x faster than a general slerp).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.motion.clip import ClipKinematics, MotionClip
from humanoid_gpt.motion.kinematics import clip_body_states
from humanoid_gpt.robot.g1 import G1, G1_KEYPOINT_NAMES
from humanoid_gpt.state import KinematicState


class MotionLibrary:
    """Clips packed for batched queries. Build with :meth:`from_clips`, or from a built corpus with
    :func:`humanoid_gpt.catalog.store.load_library`."""

    def __init__(
        self,
        names: list[str],
        fps: torch.Tensor,
        num_frames: torch.Tensor,
        linear: torch.Tensor,
        quats: torch.Tensor,
        num_joints: int,
        body_names: tuple[str, ...],
        weights: Sequence[float] | torch.Tensor | None = None,
    ) -> None:
        self.names = list(names)
        self.body_names = tuple(body_names)
        self.num_joints = num_joints
        self.device = linear.device
        self.fps = fps.to(self.device, linear.dtype)
        self.num_frames = num_frames.to(self.device, torch.long)
        self.start = torch.cumsum(self.num_frames, 0) - self.num_frames
        self.duration = (self.num_frames - 1).to(linear.dtype) / self.fps
        self._num_linear = linear.shape[1]
        self._num_quats = quats.shape[1]
        self._data = torch.cat([linear, *_slerp_table(quats, self.num_frames)], dim=1)  # one row per frame
        self.set_weights(torch.ones(len(names)) if weights is None else weights)
        self._layout = _linear_layout(num_joints, len(body_names))
        width = self._layout["body_ang_vel"].stop
        if width != linear.shape[1]:
            raise ConfigError(f"packed motion tensor has {linear.shape[1]} columns, layout needs {width}")

    @classmethod
    def from_clips(
        cls,
        clips: Sequence[MotionClip],
        g1: G1,
        body_names: tuple[str, ...] = G1_KEYPOINT_NAMES,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        weights: Sequence[float] | None = None,
    ) -> MotionLibrary:
        """Pack ``clips`` with the states of ``body_names``: a clip's cached kinematics (clips from a built corpus,
        :class:`~humanoid_gpt.motion.clip.ClipKinematics`) when they cover those bodies, else forward kinematics
        and central differences over the clip. A segment of a corpus clip thus keeps the whole clip's velocities
        at its edges (central differences across them) where a segment cut from a file has one-sided ones."""
        if not clips:
            raise ConfigError("a motion library needs at least one clip")
        for clip in clips:
            if clip.num_frames < 2:
                raise ConfigError(f"clip {clip.name!r} has {clip.num_frames} frame(s); a library clip needs at least 2")
        num_joints, b = clips[0].joint_pos.shape[1], len(body_names)
        layout = _linear_layout(num_joints, b)
        total = sum(c.num_frames for c in clips)
        # Filled clip by clip in the library's precision: no float64 copy of every frame on the way.
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        linear = np.empty((total, layout["body_ang_vel"].stop), dtype=np_dtype)
        quats = np.empty((total, 1 + b, 4), dtype=np_dtype)
        at = 0
        for clip in clips:
            k, n = _kinematics(clip, g1, body_names), clip.num_frames
            rows = linear[at : at + n]
            rows[:, layout["joint_pos"]] = clip.joint_pos
            rows[:, layout["root_pos"]] = clip.root_pos
            for key in ("joint_vel", "root_lin_vel", "root_ang_vel"):
                rows[:, layout[key]] = getattr(k, key)
            for key in ("body_pos", "body_lin_vel", "body_ang_vel"):
                rows[:, layout[key]] = getattr(k, key).reshape(n, -1)
            quats[at : at + n, 0] = clip.root_quat
            quats[at : at + n, 1:] = k.body_quat
            at += n
        as_t = lambda x: torch.as_tensor(x, device=device).to(dtype)  # noqa: E731
        return cls(
            [c.name for c in clips],
            torch.tensor([c.fps for c in clips], dtype=torch.float64),
            torch.tensor([c.num_frames for c in clips]),
            as_t(linear),
            as_t(quats),
            num_joints,
            body_names,
            weights,
        )

    @property
    def num_clips(self) -> int:
        return len(self.names)

    @property
    def total_frames(self) -> int:
        return int(self.num_frames.sum())

    def set_weights(self, weights: Sequence[float] | torch.Tensor) -> None:
        """Per-clip sampling weights (non-negative, not all zero); a later stage sets them from clusters."""
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if w.shape != (self.num_clips,) or (w < 0).any() or w.sum() <= 0 or not torch.isfinite(w).all():
            raise ConfigError(f"weights must be {self.num_clips} finite non-negative numbers, not all zero")
        self.weights = w

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` (clip id, time) pairs: clips by weight, times uniform over each clip's duration."""
        ids = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        u = torch.rand(n, generator=generator, device=self.device, dtype=self.duration.dtype)
        return ids, u * self.duration[ids]

    def frames(self, clip_ids: torch.Tensor, times: torch.Tensor) -> KinematicState:
        """Reference states at ``times`` (s) of clips ``clip_ids``; times are clamped to each clip's span."""
        n, b, q, d = clip_ids.shape[0], len(self.body_names), self._num_quats, self._num_linear
        f = (times.to(self.fps.dtype) * self.fps[clip_ids]).clamp_min(0.0)
        last = self.num_frames[clip_ids] - 1
        i0 = torch.minimum(f.floor().long(), last)
        alpha = (f - i0).clamp(0.0, 1.0).unsqueeze(-1)
        g0 = self.start[clip_ids] + i0
        g1 = g0 + (i0 < last).long()
        rows = torch.index_select(self._data, 0, torch.cat([g0, g1]))  # index_select: ~4x faster than x[idx]
        r0, r1 = rows[:n], rows[n:]
        lin = torch.lerp(r0[:, :d], r1[:, :d], alpha)
        q0 = r0[:, d : d + 4 * q].view(n, q, 4)
        q1 = r1[:, d : d + 4 * q].view(n, q, 4)
        theta = r0[:, d + 4 * q : d + 5 * q].unsqueeze(-1)
        inv_sin = r0[:, d + 5 * q :].unsqueeze(-1)
        a = alpha.unsqueeze(-1)
        quat = torch.addcmul(q0 * (torch.sin((1.0 - a) * theta) * inv_sin), q1, torch.sin(a * theta) * inv_sin)
        L = self._layout
        return KinematicState(
            joint_pos=lin[:, L["joint_pos"]],
            joint_vel=lin[:, L["joint_vel"]],
            root_pos=lin[:, L["root_pos"]],
            root_quat=quat[:, 0],
            root_lin_vel=lin[:, L["root_lin_vel"]],
            root_ang_vel=lin[:, L["root_ang_vel"]],
            body_pos=lin[:, L["body_pos"]].view(n, b, 3),
            body_quat=quat[:, 1:],
            body_lin_vel=lin[:, L["body_lin_vel"]].view(n, b, 3),
            body_ang_vel=lin[:, L["body_ang_vel"]].view(n, b, 3),
        )


def _linear_layout(num_joints: int, num_bodies: int) -> dict[str, slice]:
    """The columns of each quantity in a library's tensor of linearly interpolated values, in packing order."""
    j, b = num_joints, num_bodies
    sizes = {
        "joint_pos": j,
        "joint_vel": j,
        "root_pos": 3,
        "root_lin_vel": 3,
        "root_ang_vel": 3,
        "body_pos": 3 * b,
        "body_lin_vel": 3 * b,
        "body_ang_vel": 3 * b,
    }
    layout, offset = {}, 0
    for key, size in sizes.items():
        layout[key] = slice(offset, offset + size)
        offset += size
    return layout


def _kinematics(clip: MotionClip, g1: G1, body_names: Sequence[str]) -> ClipKinematics:
    """The clip's cached kinematics of ``body_names`` when it has them all, else computed (forward kinematics)."""
    cached = clip.kinematics
    if cached is not None and cached.covers(body_names):
        return cached.select(body_names)
    bs = clip_body_states(g1, clip, tuple(body_names))
    return ClipKinematics(
        tuple(body_names),
        bs.pos,
        bs.quat,
        bs.lin_vel,
        bs.ang_vel,
        clip.joint_vel(),
        clip.root_lin_vel("world"),
        clip.root_ang_vel("world"),
    )


def _slerp_table(quats: torch.Tensor, num_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per frame: sign-continuous quaternions (F, Q*4), the angle to the next frame of the same clip (F, Q) and
    1 / sin of it (F, Q). The angle is floored at 1e-6 rad, where sin(t x) / sin(x) = t to float precision: the
    slerp weights then become the linear ones, without a branch at query time."""
    q = quats.double().clone()
    starts = (torch.cumsum(num_frames, 0) - num_frames).tolist()
    for s, n in zip(starts, num_frames.tolist(), strict=True):  # per clip, at build time only
        seg = q[s : s + n]
        dots = (seg[1:] * seg[:-1]).sum(-1)
        flips = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(q.dtype), dim=0)
        seg[1:] *= flips.unsqueeze(-1)
    nxt = torch.cat([q[1:], q[-1:]])
    last = (torch.cumsum(num_frames, 0) - 1).to(q.device)
    nxt[last] = q[last]
    dot = (q * nxt).sum(-1).clamp(-1.0, 1.0)
    theta = torch.acos(dot).clamp_min(1e-6)
    out = (q.flatten(1), theta, 1.0 / torch.sin(theta))
    return tuple(x.to(quats.dtype) for x in out)
