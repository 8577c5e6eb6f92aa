"""The teleop frame protocol: the UDP datagram of one frame, written by :func:`encode_frame` and read (checked,
optionally authenticated) by :func:`decode_frame`, and :func:`implausible`, what a G1 frame may not be.

UDP protocol (``hgpt teleop --source udp://HOST:PORT``), one frame per datagram, little-endian:

=========  =====  =================================================================================================
offset     bytes  field
=========  =====  =================================================================================================
0          4      magic ``HGTP``
4          1      version (1)
5          1      kind: 1 = G1 frame (36 float32: root xyz m, root quaternion w x y z, 29 joints rad, G1 order);
                  2 = human joint positions (J x 3 float32, metres, Z up, in the calibrated skeleton's joint order)
6          2      count: float32 values in the payload (u16)
8          4      sequence number (u32, +1 per frame, wraps; a sender may restart it)
12         8      sender timestamp, microseconds (u64, any epoch: only differences are used)
20         4 n    payload
20 + 4n    4      CRC-32 (zlib's) of all bytes before it
24 + 4n    32     optional: HMAC-SHA256 of all bytes before it, with the shared key (a signed frame)
=========  =====  =================================================================================================

An unsigned G1 frame is 168 bytes, a signed one 200. :func:`encode_frame` writes both (``key=``). The receiver
plays G1 frames (kind 1); kind 2 needs a calibrated retargeter on the robot side and is counted as malformed here.

With a key (``$HGPT_TELEOP_KEY`` or ``--key-file``), unsigned frames and frames whose tag does not match are dropped.
Without one, tags are not checked. The key authenticates the sender; it does not make frames fresh (a recorded
datagram can be replayed): use a new key per session on a shared network.

A decoded G1 frame can still be :func:`implausible` (a root quaternion far from unit length, joints far beyond their
limits, a root far away or at an impossible height): it is dropped, counted ``implausible``, before it can become
the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.robot.g1 import G1

MAGIC = b"HGTP"
VERSION = 1
KIND_G1 = 1
KIND_HUMAN = 2
KIND_NAMES = {KIND_G1: "G1", KIND_HUMAN: "human-joint"}
HEADER = struct.Struct("<4sBBHIQ")  # magic, version, kind, count, sequence, timestamp (us)
G1_FRAME_VALUES = 36
TAG_SIZE = 32  # HMAC-SHA256
KEY_ENV = "HGPT_TELEOP_KEY"
MIN_KEY_BYTES = 16

# A G1 reference outside these is not a pose but a broken or hostile sender.
QUAT_TOLERANCE = 0.1  # | |q| - 1 |: senders write float32 unit quaternions
JOINT_MARGIN_RAD = 0.2  # beyond the joint limits: retargeters clip to them, small excess is rounding
ROOT_RANGE_M = 100.0  # |x|, |y| of the root from the stream's origin
HEIGHT_RANGE_M = (0.0, 2.5)  # root (pelvis) height


class MalformedPacket(HGPTError, ValueError):
    """A datagram refused before the jitter buffer; ``counter`` names the counter it is counted in."""

    def __init__(self, message: str, counter: str = "malformed") -> None:
        super().__init__(message)
        self.counter = counter


@dataclass
class Frame:
    kind: int
    sequence: int
    timestamp_us: int
    values: np.ndarray  # float32: (36,) for a G1 frame, (J, 3) for human joints


def _tag(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).digest()


def encode_frame(frame: Frame, key: bytes | None = None) -> bytes:
    """The datagram of ``frame``; signed (an HMAC-SHA256 tag appended) when ``key`` is given."""
    values = np.ascontiguousarray(frame.values, dtype="<f4").ravel()
    header = HEADER.pack(MAGIC, VERSION, frame.kind, values.size, frame.sequence & 0xFFFFFFFF, frame.timestamp_us)
    body = header + values.tobytes()
    body += struct.pack("<I", zlib.crc32(body))
    return body + _tag(key, body) if key is not None else body


def decode_frame(data: bytes, key: bytes | None = None, kind: int | None = None) -> Frame:
    """The frame in ``data``; :class:`MalformedPacket` (with its counter) when it is not one of this protocol, not
    signed with ``key`` (when given), or not of ``kind`` (when given)."""
    if len(data) < HEADER.size + 4:
        raise MalformedPacket(f"{len(data)} bytes: shorter than a header")
    magic, version, frame_kind, count, sequence, stamp = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MalformedPacket(f"magic {magic!r}, not {MAGIC!r}")
    if version != VERSION:
        raise MalformedPacket(f"protocol version {version}, this code reads {VERSION}")
    end = HEADER.size + 4 * count + 4  # the CRC's end: a signed frame's tag follows
    if len(data) not in (end, end + TAG_SIZE):
        raise MalformedPacket(f"{len(data)} bytes for {count} values")
    (crc,) = struct.unpack_from("<I", data, end - 4)
    if crc != zlib.crc32(data[: end - 4]):
        raise MalformedPacket("CRC mismatch")
    if key is not None:
        if len(data) == end:
            raise MalformedPacket("unsigned frame while a key is set", "unsigned")
        if not hmac.compare_digest(data[end:], _tag(key, data[:end])):
            raise MalformedPacket("the HMAC tag does not match the key", "bad_signature")
    values = np.frombuffer(data, dtype="<f4", count=count, offset=HEADER.size).astype(np.float32)
    if frame_kind == KIND_G1:
        if count != G1_FRAME_VALUES:
            raise MalformedPacket(f"a G1 frame has {G1_FRAME_VALUES} values, not {count}")
    elif frame_kind == KIND_HUMAN:
        if count % 3:
            raise MalformedPacket(f"human joint positions come in threes, not {count}")
        values = values.reshape(-1, 3)
    else:
        raise MalformedPacket(f"unknown frame kind {frame_kind}")
    if kind is not None and frame_kind != kind:
        raise MalformedPacket(
            f"a {KIND_NAMES[frame_kind]} frame (kind {frame_kind}) in a stream of {KIND_NAMES[kind]} frames (kind "
            f"{kind}): stream one kind"
        )
    if not np.isfinite(values).all():
        raise MalformedPacket("non-finite values")
    return Frame(frame_kind, sequence, stamp, values)


def implausible(qpos: np.ndarray, g1: G1) -> str | None:
    """Why the G1 frame ``qpos`` (36,) cannot be a reference (None when it can): a root quaternion far from unit
    length, a joint beyond its limits by more than ``JOINT_MARGIN_RAD``, a root beyond ``ROOT_RANGE_M`` or a root
    height outside ``HEIGHT_RANGE_M``. Finite but absurd frames must never become what the robot tracks."""
    qpos = np.asarray(qpos, dtype=np.float64)
    norm = float(np.linalg.norm(qpos[3:7]))
    if abs(norm - 1.0) > QUAT_TOLERANCE:
        return f"root quaternion of norm {norm:.3g}, not a unit quaternion (1 +- {QUAT_TOLERANCE})"
    low, high = g1.joint_limits[:, 0] - JOINT_MARGIN_RAD, g1.joint_limits[:, 1] + JOINT_MARGIN_RAD
    outside = np.flatnonzero((qpos[7:] < low) | (qpos[7:] > high))
    if outside.size:
        j = int(outside[0])
        lo, hi = g1.joint_limits[j]
        return (
            f"{g1.joint_names[j]} at {qpos[7 + j]:.4g} rad, beyond its limits [{lo:.3g}, {hi:.3g}] by more than "
            f"{JOINT_MARGIN_RAD} rad" + (f" ({outside.size} joints out)" if outside.size > 1 else "")
        )
    if np.abs(qpos[:2]).max() > ROOT_RANGE_M:
        return f"root at x, y = {qpos[0]:.4g}, {qpos[1]:.4g} m: beyond {ROOT_RANGE_M:g} m of the origin"
    if not HEIGHT_RANGE_M[0] <= qpos[2] <= HEIGHT_RANGE_M[1]:
        return f"root height {qpos[2]:.4g} m, outside [{HEIGHT_RANGE_M[0]:g}, {HEIGHT_RANGE_M[1]:g}] m"
    return None
