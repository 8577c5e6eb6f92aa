"""Contact locking: a G1 foot planted while the human's is planted stays where it landed.

Human contacts come from :meth:`.targets.TargetBuilder.human_contacts` (height above the foot joint's resting height
and causal speed). While a foot is in contact, its horizontal target is frozen at the position it had when the
contact began (the ankle of a flat foot, the toe of a foot on its toe); when the contact ends, the frozen offset
returns to zero as a critically damped spring (time scale ``release_time``) so the foot neither jumps nor jerks back
to the human-following target. The G1's own bone lengths differ from the human's, so without the lock a
foot following the human's leg directions slides a little while the human's stands still.

The state is per foot and advances one frame at a time: batch retargeting and streaming run the same
:meth:`ContactLock.apply`, so they give the same targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Human contact modes per foot: no contact, flat (or heel: the ankle is planted), toe (heel up, toe planted).
NONE, FLAT, TOE = 0, 1, 2


@dataclass
class ContactLock:
    """Per-foot lock state. ``fps`` sets the release fade.

    A flat foot is locked by its ankle; a foot on its toe by its toe (the ankle then pivots about the toe as the
    heel rises). Switching between the two re-anchors at the current position, so the target never jumps."""

    fps: float
    release_time: float = 0.1
    mode: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    anchor: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    offset: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    rate: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))  # d(offset)/dt

    def reset(self) -> None:
        self.mode[:] = NONE
        self.offset[:] = 0.0
        self.rate[:] = 0.0

    def apply(self, feet_xy: np.ndarray, modes: np.ndarray, toe_xy: np.ndarray) -> np.ndarray:
        """New horizontal ankle targets (2, 2) for raw targets ``feet_xy`` (2, 2), human contact modes (2,) and each
        foot's toe point relative to its ankle at the target orientation ``toe_xy`` (2, 2)."""
        out = np.empty((2, 2))
        dt = 1.0 / self.fps
        omega = 2.0 / self.release_time
        for f in range(2):
            mode = int(modes[f])
            if mode != NONE:
                if self.mode[f] == NONE:
                    ankle = feet_xy[f] + self.offset[f]  # where the foot is now (fade included)
                    self.anchor[f] = ankle + (toe_xy[f] if mode == TOE else 0.0)
                elif mode != self.mode[f]:
                    ankle = self.anchor[f] - (toe_xy[f] if self.mode[f] == TOE else 0.0)
                    self.anchor[f] = ankle + (toe_xy[f] if mode == TOE else 0.0)
                self.mode[f] = mode
                out[f] = self.anchor[f] - (toe_xy[f] if mode == TOE else 0.0)
                offset = out[f] - feet_xy[f]
                self.rate[f] = (offset - self.offset[f]) / dt
                self.offset[f] = offset
            else:
                # Released: the offset returns to zero as a critically damped spring, starting from its current
                # rate, so the foot's velocity does not jump (a jump in velocity is a spike in jerk).
                self.mode[f] = NONE
                self.rate[f] += dt * (-(omega**2) * self.offset[f] - 2.0 * omega * self.rate[f])
                self.offset[f] += dt * self.rate[f]
                out[f] = feet_xy[f] + self.offset[f]
        return out
