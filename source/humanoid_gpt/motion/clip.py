"""The canonical motion clip: the G1's root pose and 29 joint angles at a fixed rate, with provenance, and the
per-frame kinematics a built corpus cached for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

FRAME_FIELDS = frozenset({"fps", "root_pos", "root_quat", "joint_pos", "joint_names"})
"""The fields of :class:`MotionClip` that say what its frames are: changing one makes cached kinematics stale."""


@dataclass(frozen=True)
class ClipKinematics:
    """What a built corpus cached for each frame of a clip (:data:`humanoid_gpt.catalog.store.ARRAYS`, in the
    store's dtype, possibly memory-mapped): world-frame states of ``body_names`` by forward kinematics, and the joint
    and root velocities by central differences over the whole clip. With them a motion library needs no forward
    kinematics. A slice keeps the whole clip's velocities, so a segment's first and last frames have the central
    difference across its edge (the motion's true velocity there) rather than a one-sided one."""

    body_names: tuple[str, ...]
    body_pos: np.ndarray  # (T, B, 3) m, world frame
    body_quat: np.ndarray  # (T, B, 4) w, x, y, z
    body_lin_vel: np.ndarray  # (T, B, 3) m/s at each body's origin, world frame
    body_ang_vel: np.ndarray  # (T, B, 3) rad/s, world frame
    joint_vel: np.ndarray  # (T, 29) rad/s
    root_lin_vel: np.ndarray  # (T, 3) m/s, world frame
    root_ang_vel: np.ndarray  # (T, 3) rad/s, world frame

    @property
    def num_frames(self) -> int:
        return self.joint_vel.shape[0]

    def covers(self, names: Sequence[str]) -> bool:
        """Whether every body of ``names`` is cached (then :meth:`select` gives them without forward kinematics)."""
        return set(names) <= set(self.body_names)

    def select(self, names: Sequence[str]) -> ClipKinematics:
        """The states of bodies ``names`` (a subset of the cached ones, in any order)."""
        if tuple(names) == self.body_names:
            return self
        cols = [self.body_names.index(n) for n in names]
        bodies = {k: getattr(self, k)[:, cols] for k in ("body_pos", "body_quat", "body_lin_vel", "body_ang_vel")}
        return dataclasses.replace(self, body_names=tuple(names), **bodies)

    def slice(self, start: int, stop: int | None = None) -> ClipKinematics:
        """Frames [start, stop), velocities as cached for the whole clip (see the class docstring)."""
        s = np.s_[start:stop]
        arrays = {f.name: getattr(self, f.name)[s] for f in dataclasses.fields(self) if f.name != "body_names"}
        return dataclasses.replace(self, **arrays)


@dataclass
class MotionClip:
    """One motion of the G1.

    Arrays are float64 numpy, one row per frame: ``root_pos`` (T, 3) metres in the world frame, z up;
    ``root_quat`` (T, 4) pelvis orientation as (w, x, y, z); ``joint_pos`` (T, 29) radians in :data:`G1_JOINT_NAMES`
    order. ``provenance`` records where the clip came from: ``source`` (dataset), ``performer``, ``tags``, ``path``.
    ``kinematics``: what a built corpus cached for these frames (None for clips read from files); :meth:`replace`
    drops it when the frames change, so it never describes other frames than the clip's.
    """

    name: str
    fps: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    joint_pos: np.ndarray
    provenance: dict = field(default_factory=dict)
    joint_names: tuple[str, ...] = G1_JOINT_NAMES
    kinematics: ClipKinematics | None = None

    def __post_init__(self) -> None:
        self.root_pos = np.asarray(self.root_pos, dtype=np.float64)
        self.root_quat = np.asarray(self.root_quat, dtype=np.float64)
        self.joint_pos = np.asarray(self.joint_pos, dtype=np.float64)
        self.joint_names = tuple(self.joint_names)

    @property
    def num_frames(self) -> int:
        return self.joint_pos.shape[0]

    @property
    def dt(self) -> float:
        return 1.0 / self.fps

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    def qpos(self) -> np.ndarray:
        """MuJoCo generalized positions (T, 7 + 29): root position, root quaternion (w, x, y, z), joints."""
        return np.concatenate([self.root_pos, self.root_quat, self.joint_pos], axis=1)

    def replace(self, **changes) -> MotionClip:
        """A copy with ``changes``; one that changes the frames or their rate (:data:`FRAME_FIELDS`) drops the
        cached kinematics, unless it passes new ``kinematics`` itself."""
        if FRAME_FIELDS & changes.keys():
            changes.setdefault("kinematics", None)
        return dataclasses.replace(self, **changes)

    def slice(self, start: int, stop: int | None = None) -> MotionClip:
        """Frames [start, stop) as a new clip (copies: editing it never changes this one), cached kinematics
        sliced too."""
        s = np.s_[start:stop]
        return self.replace(
            root_pos=self.root_pos[s].copy(),
            root_quat=self.root_quat[s].copy(),
            joint_pos=self.joint_pos[s].copy(),
            kinematics=self.kinematics.slice(start, stop) if self.kinematics is not None else None,
        )

    # Derived quantities -------------------------------------------------------------------------------------------

    def joint_vel(self) -> np.ndarray:
        """Joint velocities (T, 29) rad/s, central differences."""
        return R.finite_difference(torch.from_numpy(self.joint_pos), self.dt).numpy()

    def root_lin_vel(self, frame: str = "world") -> np.ndarray:
        """Root linear velocity (T, 3) m/s, in the ``world`` frame or the pelvis (``body``) frame."""
        v = R.finite_difference(torch.from_numpy(self.root_pos), self.dt)
        if frame == "body":
            v = R.quat_apply_inverse(torch.from_numpy(self.root_quat), v)
        elif frame != "world":
            raise ValueError(f"frame must be 'world' or 'body', got {frame!r}")
        return v.numpy()

    def root_ang_vel(self, frame: str = "world") -> np.ndarray:
        """Root angular velocity (T, 3) rad/s, in the ``world`` frame or the pelvis (``body``) frame."""
        return R.angular_velocity(torch.from_numpy(self.root_quat), self.dt, frame=frame).numpy()

    def resample(self, fps: float) -> MotionClip:
        """The same motion at ``fps``: linear interpolation for positions and joints, slerp for the root rotation.

        The new clip spans the same duration; its last frame is at or before the original's last frame.
        """
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = int(np.floor(self.duration * fps + 1e-9)) + 1
        t = np.arange(n) / fps * self.fps  # fractional source frame of each new frame
        i0 = np.clip(np.floor(t).astype(np.int64), 0, self.num_frames - 1)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        a = (t - i0)[:, None]
        lerp = lambda x: x[i0] * (1.0 - a) + x[i1] * a  # noqa: E731
        quat = R.quat_slerp(
            torch.from_numpy(self.root_quat[i0]), torch.from_numpy(self.root_quat[i1]), torch.from_numpy(a)
        ).numpy()
        return self.replace(
            fps=float(fps), root_pos=lerp(self.root_pos), root_quat=quat, joint_pos=lerp(self.joint_pos)
        )


def clip_windows(clip: MotionClip, seconds: float, count: int) -> list[MotionClip]:
    """``count`` windows of ``seconds`` spread evenly through ``clip``: SR on minutes-long takes measures only the
    first fall, windows measure tracking all along the take."""
    n = int(seconds * clip.fps)
    if n >= clip.num_frames:
        return [clip]
    starts = torch.linspace(0, clip.num_frames - n - 1, count).long().tolist()
    return [clip.slice(s, s + n).replace(name=f"{clip.name}@{s / clip.fps:.0f}s") for s in starts]


def scored_windows(clip: MotionClip, seconds: float, count: int, min_seconds: float = 1.0) -> list[MotionClip]:
    """:func:`clip_windows` without windows shorter than ``min_seconds``: a clip that short measures no tracking."""
    return [w for w in clip_windows(clip, seconds, count) if w.duration >= min_seconds]


def spread(items: Sequence, count: int) -> list:
    """``count`` items spread evenly through ``items`` (all of them when there are fewer): a sample of a long list
    that still covers its beginning, middle and end."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]
