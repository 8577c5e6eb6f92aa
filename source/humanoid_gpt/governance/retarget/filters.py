"""Zero-phase smoothing of the human input, identical in batch and streaming (streaming answers ``lookahead`` frames
late).

Optical mocap carries frame-to-frame jitter that IK passes on to the joints as jerk. A causal low-pass would lag
(a running limb moves 3-5 m/s: 30 ms of lag is 10 cm), so the filter is a short centred Gaussian: frame t is smoothed
from frames t-L..t+L, the first and last frames repeated at the ends. In a stream, frame t can be smoothed once frame
t+L has arrived, so :meth:`Smoother.push` returns frame t-L; :meth:`Smoother.flush` returns the last L at the end.
``sigma`` = 0 turns it off (no delay).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


def gaussian_kernel(sigma_frames: float) -> np.ndarray:
    """Weights (2L+1,) of a Gaussian truncated at 2.5 sigma (L = 0: a single weight 1)."""
    if sigma_frames <= 0:
        return np.ones(1)
    half = int(math.ceil(2.5 * sigma_frames))
    k = np.arange(-half, half + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma_frames) ** 2)
    return w / w.sum()


def _average(weights: np.ndarray, P: list[np.ndarray], Q: list[np.ndarray] | None):
    p = sum(w * x for w, x in zip(weights, P, strict=True))
    if Q is None:
        return p, None
    centre = Q[len(Q) // 2]
    acc = np.zeros_like(centre)
    for w, q in zip(weights, Q, strict=True):
        sign = np.where(np.sum(q * centre, axis=-1, keepdims=True) < 0, -1.0, 1.0)  # q and -q: the same rotation
        acc = acc + w * sign * q
    return p, acc / np.linalg.norm(acc, axis=-1, keepdims=True)


def smooth_sequence(kernel: np.ndarray, P: np.ndarray, Q: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Smooth a whole sequence P (T, ...), Q (T, ..., 4) with ``kernel`` (ends repeated): the same sums, in the same
    order, as a :class:`Smoother` fed the frames one by one."""
    half = len(kernel) // 2
    if half == 0:
        return P, Q
    T = P.shape[0]
    idx = np.clip(np.arange(-half, T + half), 0, T - 1)
    Pp = P[idx]
    out_p = sum(w * Pp[k : k + T] for k, w in enumerate(kernel))
    if Q is None:
        return out_p, None
    Qp = Q[idx]
    centre = Qp[half : half + T]
    acc = np.zeros_like(centre)
    for k, w in enumerate(kernel):
        q = Qp[k : k + T]
        sign = np.where(np.sum(q * centre, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        acc = acc + w * sign * q
    return out_p, acc / np.linalg.norm(acc, axis=-1, keepdims=True)


class Smoother:
    """The streaming form of :func:`smooth_sequence`."""

    def __init__(self, kernel: np.ndarray):
        self.kernel = kernel
        self.half = len(kernel) // 2
        self.reset()

    def reset(self) -> None:
        self._p: deque = deque(maxlen=len(self.kernel))
        self._q: deque = deque(maxlen=len(self.kernel))
        self._count = 0

    def push(self, p: np.ndarray, q: np.ndarray | None):
        """Add raw frame t; return the smoothed frame t - L as (p, q), or None while the window fills."""
        if self._count == 0:
            self._p.clear()
            self._q.clear()
            for _ in range(self.half):  # the first frame repeated before the start
                self._p.append(p)
                self._q.append(q)
        self._p.append(p)
        self._q.append(q)
        self._count += 1
        if len(self._p) < len(self.kernel):
            return None
        return _average(self.kernel, list(self._p), None if q is None else list(self._q))

    def flush(self) -> list:
        """The smoothed last L frames (the last raw frame repeated after the end)."""
        out = []
        if self._count == 0:
            return out
        for _ in range(self.half):
            self._p.append(self._p[-1])
            self._q.append(self._q[-1])
            if len(self._p) == len(self.kernel):
                q = None if self._q[-1] is None else list(self._q)
                out.append(_average(self.kernel, list(self._p), q))
        self._count = 0
        return out
