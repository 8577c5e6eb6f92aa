"""The common in-memory form of human mocap: a :class:`Skeleton` and a :class:`HumanMotion`.

Every reader returns a :class:`HumanMotion` in one convention: global joint positions in metres, world Z up,
right-handed (the horizontal heading is whatever the source had after the up-axis change, see
:mod:`.conventions`), global joint orientations as unit quaternions (w, x, y, z) when the source has them, and a
provenance record of what was read and guessed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from humanoid_gpt.errors import MotionFormatError
from humanoid_gpt.governance.mocap._math import quat_slerp


class MocapFormatError(MotionFormatError):
    """A mocap file cannot be read: the message names the file, the line or field, and the fix."""


def mocap_error(path: object, where: str, problem: str, fix: str) -> MocapFormatError:
    """``<path>: <where>: <problem>. Fix: <fix>`` as one error, so every reader words its errors alike."""
    where = f"{where}: " if where else ""
    return MocapFormatError(f"{path}: {where}{problem}. Fix: {fix}")


@dataclass
class Skeleton:
    """A joint tree at rest.

    ``names`` (J,); ``parents`` (J,) int with -1 for the root and every parent before its children; ``offsets``
    (J, 3) each joint's rest offset from its parent, in metres, in world axes (Z up), i.e. what the parent's global
    orientation rotates in forward kinematics: p_j = p_parent + R_parent @ offsets[j]. A root's offset is its rest
    position. Orientations in :class:`HumanMotion` are relative to this rest pose (identity = rest).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        n = len(self.names)
        if self.parents.shape != (n,) or self.offsets.shape != (n, 3):
            raise ValueError(f"skeleton of {n} joints needs parents ({n},) and offsets ({n}, 3)")
        for j, p in enumerate(self.parents):
            if not -1 <= p < j:
                raise ValueError(f"joint {self.names[j]!r}: parent index {p} must be -1 or come before the joint")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]

    def bone_lengths(self) -> np.ndarray:
        """(J,) rest distance of each joint from its parent (0 for roots)."""
        lengths = np.linalg.norm(self.offsets, axis=1)
        lengths[self.parents < 0] = 0.0
        return lengths


@dataclass
class HumanMotion:
    """A human motion read from a mocap file.

    ``positions`` (T, J, 3) global joint positions, metres, Z up. ``rotations`` (T, J, 4) global joint orientations,
    quaternions (w, x, y, z) relative to the skeleton's rest pose, or None when the source has only positions.
    ``skeleton`` describes the joint tree (None when the joints' parents are unknown). ``joint_names`` default to the
    skeleton's; ``canonical`` gives each joint's canonical name (:mod:`.names`) or None. ``provenance`` records the
    path, format, source unit and scale applied, the file's up axis and how the frame rate was obtained
    (``fps_source``: "file", "option", "cmu_default").
    """

    name: str
    fps: float
    skeleton: Skeleton | None
    positions: np.ndarray
    rotations: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)
    joint_names: tuple[str, ...] = ()
    canonical: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64)
        if self.rotations is not None:
            self.rotations = np.asarray(self.rotations, dtype=np.float64)
        if not self.joint_names:
            if self.skeleton is None:
                raise ValueError("a HumanMotion without a skeleton needs joint_names")
            self.joint_names = self.skeleton.names
        self.joint_names = tuple(self.joint_names)
        if self.skeleton is not None and self.skeleton.names != self.joint_names:
            raise ValueError("joint_names differ from the skeleton's names")
        self.canonical = tuple(self.canonical) if self.canonical else (None,) * len(self.joint_names)
        t, j = self.positions.shape[:2] if self.positions.ndim == 3 else (0, -1)
        if self.positions.shape != (t, len(self.joint_names), 3) or len(self.canonical) != len(self.joint_names):
            raise ValueError(f"positions {self.positions.shape} do not match {len(self.joint_names)} joints")
        if self.rotations is not None and self.rotations.shape != (t, j, 4):
            raise ValueError(f"rotations {self.rotations.shape} do not match positions {self.positions.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return max(self.num_frames - 1, 0) / self.fps

    def joint(self, name: str) -> int:
        """Index of a joint by its own name, else by its canonical name, else by its own name ignoring case."""
        for names in (self.joint_names, self.canonical):
            if name in names:
                return names.index(name)
        lower = [n.lower() for n in self.joint_names]
        if name.lower() in lower:
            return lower.index(name.lower())
        known = ", ".join(f"{n} ({c})" if c else n for n, c in zip(self.joint_names, self.canonical, strict=True))
        raise KeyError(f"{self.name}: no joint {name!r}; joints (canonical name in brackets): {known}")

    def height(self) -> float:
        """Estimated standing height, metres, from the positions (works whatever the rest pose looks like).

        Per frame: the top joint's height above the lowest joint of that frame; then the 90th percentile over frames,
        which is the upright height as long as the performer stands for at least a tenth of the clip (a median would
        drop for clips spent mostly on the floor). The top joint is ``head_top`` when the skeleton has one (ASF's head
        end), else ``head`` (the head joint, about 0.9 of the stature), else the highest joint of each frame.
        """
        z = self.positions[..., 2]
        top = next((self.canonical.index(c) for c in ("head_top", "head") if c in self.canonical), None)
        top_z = z.max(axis=1) if top is None else z[:, top]
        return float(np.percentile(top_z - z.min(axis=1), 90))

    def replace(self, **changes) -> HumanMotion:
        return dataclasses.replace(self, **changes)

    def slice(self, start: int, stop: int | None = None) -> HumanMotion:
        """Frames [start, stop) as a new motion (copies)."""
        s = np.s_[start:stop]
        rotations = None if self.rotations is None else self.rotations[s].copy()
        first = range(self.num_frames)[s]
        prov = {**self.provenance, "slice": [first.start, first.stop] if len(first) else [start, start]}
        return self.replace(positions=self.positions[s].copy(), rotations=rotations, provenance=prov)

    def resample(self, fps: float) -> HumanMotion:
        """The motion at another frame rate over the same duration: positions interpolated linearly, orientations by
        slerp. The last new frame is at or before the last old one (no extrapolation)."""
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = int(np.floor(self.duration * fps + 1e-9)) + 1
        x = np.arange(n) * (self.fps / fps)  # new frame times in old frame units
        i0 = np.clip(np.floor(x).astype(np.int64), 0, max(self.num_frames - 2, 0))
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        w = (x - i0)[:, None]
        positions = (1.0 - w[..., None]) * self.positions[i0] + w[..., None] * self.positions[i1]
        rotations = None
        if self.rotations is not None:
            wj = np.broadcast_to(w, (n, self.num_joints))
            rotations = quat_slerp(self.rotations[i0], self.rotations[i1], wj)
        prov = {**self.provenance, "resampled_from_fps": self.fps}
        return self.replace(fps=float(fps), positions=positions, rotations=rotations, provenance=prov)
