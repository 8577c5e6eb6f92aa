"""The teleop jitter buffer: G1 frames in as they arrive, out in sequence order at their playout time, with a
counter for every frame it drops, holds or misses.

Counters: ``received`` (frames accepted into the jitter buffer), ``played``; dropped before the buffer:
``malformed`` (bad magic, version, kind, size or CRC, non-finite values, a human-joint frame), ``unsigned`` (no tag
while a key is set), ``bad_signature`` (a tag that does not match the key), ``implausible`` (a finite frame no G1
reference can be: see :func:`~humanoid_gpt.deploy.teleop_protocol.implausible`); in the buffer: ``duplicate`` (a
sequence number already received), ``late`` (arrived after a newer frame was played), ``superseded`` (due at the same
tick as a newer frame, which is the one played: a burst), ``lost`` (sequence numbers that never arrived, within a
window of ``window`` frames behind the newest: a jump cannot count more), ``restarts`` (new streams, below),
``underrun`` (a control tick with no new frame: the last reference is held).

Streams: the sequence number is unwrapped across its 2^32 wrap. A frame starts a new stream (the buffer forgets the
old one: its pending frames are counted superseded, its missing ones lost) when its sequence number is more than
``window`` away from the newest (a sender restarted, or skipped ahead), when it is behind the newest but stamped later
(a sender restarted its numbers, not its clock), or after ``RESTART_RUN`` frames in a row that were all behind (a
sender restarted both).

Jitter buffer: playout at sender time + clock offset + ``delay``, the offset being the smallest arrival - send time
seen in the stream (the fastest path), so packets delayed by less than ``delay`` play on time and in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from humanoid_gpt.deploy.teleop_protocol import Frame

WINDOW = 256  # sequence numbers: how far a frame may be from the newest before it starts a new stream
RESTART_RUN = 8  # frames in a row behind the newest that mean the sender restarted


@dataclass
class Counters:
    """What happened to every datagram (the module docstring defines each)."""

    received: int = 0
    played: int = 0
    malformed: int = 0
    unsigned: int = 0
    bad_signature: int = 0
    implausible: int = 0
    duplicate: int = 0
    late: int = 0
    superseded: int = 0
    lost: int = 0
    restarts: int = 0
    underrun: int = 0


class JitterBuffer:
    """Frames in, frames out in sequence order at their playout time (sender time + offset + ``delay_s``).
    ``check`` (optional) says why a frame is implausible; such frames are dropped and counted."""

    def __init__(
        self, delay_s: float = 0.06, window: int = WINDOW, check: Callable[[Frame], str | None] | None = None
    ) -> None:
        self.delay_s, self.window, self.check = delay_s, window, check
        self.counters = Counters()
        self.refusals: dict[str, str] = {}  # counter -> the last refusal's reason, for the report
        self._lost_closed = 0  # sequence numbers that left the window (or ended a stream) without arriving
        self._new_stream()

    def _new_stream(self) -> None:
        self._pending: dict[int, tuple[Frame, float]] = {}  # unwrapped sequence -> (frame, arrival time)
        self._seen: set[int] = set()  # received sequence numbers within the window
        self._offset: float | None = None
        self._first: int | None = None
        self._newest: int | None = None
        self._newest_stamp = 0
        self._last_raw: int | None = None
        self._behind = 0  # frames in a row that were behind the newest
        self._played: int | None = None  # unwrapped sequence of the last frame played

    def refuse(self, counter: str, reason: str) -> None:
        """Count a frame dropped before the buffer under ``counter``, keeping ``reason`` for the report."""
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.refusals[counter] = reason

    def _low(self) -> int:
        assert self._first is not None and self._newest is not None
        return max(self._first, self._newest - self.window + 1)

    def _missing(self) -> int:
        return 0 if self._newest is None else self._newest - self._low() + 1 - len(self._seen)

    def _restarts(self, frame: Frame, delta: int) -> bool:
        if abs(delta) >= self.window:  # no network reorders this far: the sender restarted or skipped ahead
            return True
        if delta <= 0 and frame.timestamp_us > self._newest_stamp:  # behind in sequence, ahead in time
            return True
        return delta <= 0 and self._behind + 1 >= RESTART_RUN  # a run of old numbers: restarted clock and all

    def _sequence(self, frame: Frame) -> int:
        """The frame's unwrapped sequence number in the current stream (starting a new stream when it says so),
        with the window moved on and the sequence numbers leaving it counted lost when they never arrived."""
        if self._last_raw is not None:
            delta = (frame.sequence - self._last_raw + 2**31) % 2**32 - 2**31  # signed distance, wrap-aware
            if self._restarts(frame, delta):
                self.counters.restarts += 1
                self.counters.superseded += len(self._pending)
                self._lost_closed += self._missing()
                self._new_stream()
        if self._last_raw is None or self._newest is None or self._first is None:
            self._last_raw = self._first = self._newest = frame.sequence
            self._newest_stamp = frame.timestamp_us
            return frame.sequence
        seq = self._newest + delta
        if delta <= 0:
            self._behind += 1
            self._first = min(self._first, seq)  # reordered before the stream's first frame
            return seq
        self._behind = 0
        low = self._low()
        self._newest, self._last_raw, self._newest_stamp = seq, frame.sequence, frame.timestamp_us
        for s in range(low, self._low()):  # these leave the window: the ones that never arrived are lost
            if s in self._seen:
                self._seen.discard(s)
            else:
                self._lost_closed += 1
        return seq

    def push(self, frame: Frame, arrival_s: float) -> None:
        if self.check is not None and (reason := self.check(frame)) is not None:
            self.refuse("implausible", reason)
            return
        seq = self._sequence(frame)
        if seq in self._seen:
            self.counters.duplicate += 1
            return
        self._seen.add(seq)
        self.counters.received += 1
        self.counters.lost = self._lost_closed + self._missing()
        offset = arrival_s - frame.timestamp_us * 1e-6
        self._offset = offset if self._offset is None else min(self._offset, offset)
        if self._played is not None and seq <= self._played:
            self.counters.late += 1
            return
        self._pending[seq] = (frame, arrival_s)

    def pop(self, now_s: float) -> tuple[Frame, float] | None:
        """The newest frame due at ``now_s`` (older due frames are superseded) and its arrival time, or None."""
        if self._offset is None:
            return None
        due = [s for s, (f, _) in self._pending.items() if f.timestamp_us * 1e-6 + self._offset + self.delay_s <= now_s]
        if not due:
            self.counters.underrun += 1
            return None
        newest = max(due)
        popped = {s: self._pending.pop(s) for s in due}
        self._played = newest
        self.counters.played += 1
        self.counters.superseded += len(due) - 1
        return popped[newest]
