"""Live teleoperation: a motion stream (a mocap file played in real time, or UDP frames) -> frame-by-frame
retargeting -> a jitter buffer -> the G1 reference -> the streaming policy -> joint targets and the Unitree low-level
command (docs/architecture.md, stage 5). Here the G1 is the MuJoCo model in-process, driven by the low-level command
itself (per-motor kp, kd, q at the physics rate, torques clipped to the effort limits); on a robot the same loop would
publish the command and read ``rt/lowstate``. docs/teleop.md says how to run it on a robot's network.

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

Counters: ``received`` (frames accepted into the jitter buffer), ``played``; dropped before the buffer:
``malformed`` (bad magic, version, kind, size or CRC, non-finite values, a human-joint frame), ``unsigned`` (no tag
while a key is set), ``bad_signature`` (a tag that does not match the key), ``implausible`` (a finite frame no G1
reference can be: see :func:`implausible`); in the buffer: ``duplicate`` (a sequence number already received),
``late`` (arrived after a newer frame was played), ``superseded`` (due at the same tick as a newer frame, which is
the one played: a burst), ``lost`` (sequence numbers that never arrived, within a window of ``window`` frames behind
the newest: a jump cannot count more), ``restarts`` (new streams, below), ``underrun`` (a control tick with no new
frame: the last reference is held).

Streams: the sequence number is unwrapped across its 2^32 wrap. A frame starts a new stream (the buffer forgets the
old one: its pending frames are counted superseded, its missing ones lost) when its sequence number is more than
``window`` away from the newest (a sender restarted, or skipped ahead), when it is behind the newest but stamped later
(a sender restarted its numbers, not its clock), or after ``RESTART_RUN`` frames in a row that were all behind (a
sender restarted both).

Jitter buffer: playout at sender time + clock offset + ``delay``, the offset being the smallest arrival - send time
seen in the stream (the fastest path), so packets delayed by less than ``delay`` play on time and in order.

Safety: a policy action that is not finite or that the command builder refuses makes the loop send the damping
command (:func:`~humanoid_gpt.deploy.unitree.damping_cmd`) for that tick and restart the policy's history; after
``MAX_REFUSED`` such ticks in a row the session stops, leaving the damping command. Any error or interrupt that ends
the loop sends it too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import socket
import stat
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import ConfigError, HGPTError
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
WINDOW = 256  # sequence numbers: how far a frame may be from the newest before it starts a new stream
RESTART_RUN = 8  # frames in a row behind the newest that mean the sender restarted
MAX_REFUSED = 25  # policy actions refused in a row (half a second at 50 Hz) before the session stops
MAX_DELAY_S = 1.0

# A G1 reference outside these is not a pose but a broken or hostile sender.
QUAT_TOLERANCE = 0.1  # | |q| - 1 |: senders write float32 unit quaternions
JOINT_MARGIN_RAD = 0.2  # beyond the joint limits: retargeters clip to them, small excess is rounding
ROOT_RANGE_M = 100.0  # |x|, |y| of the root from the stream's origin
HEIGHT_RANGE_M = (0.0, 2.5)  # root (pelvis) height


class TeleopWarning(UserWarning):
    """A teleop setting that works but deserves a look (a socket reachable from the network, a readable key)."""


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


# Jitter buffer -------------------------------------------------------------------------------------------------------


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


# Sources --------------------------------------------------------------------------------------------------------------


class UdpReceiver:
    """A non-blocking UDP socket feeding a jitter buffer with G1 frames; ``poll()`` reads every datagram waiting.
    With ``key``, only frames signed with it get in."""

    def __init__(self, host: str, port: int, buffer: JitterBuffer, key: bytes | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for a burst (a sender catching up after a stall): what the kernel drops is counted lost, not seen.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise ConfigError(
                f"udp://{host}:{port}: cannot listen there ({e.strerror}). Fix: choose a free port (another program "
                "may hold this one) and an address of this machine (127.0.0.1 for loopback)"
            ) from None
        self.sock.setblocking(False)
        self.buffer, self.key = buffer, key
        self.decode_s: list[float] = []

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def poll(self, now=time.perf_counter) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            start = now()
            try:
                frame = decode_frame(data, self.key, KIND_G1)
            except MalformedPacket as e:
                self.buffer.refuse(e.counter, str(e))
                continue
            self.buffer.push(frame, start)
            self.decode_s.append(now() - start)

    def close(self) -> None:
        self.sock.close()


def parse_source(spec: str, allow_network: bool = False) -> tuple[str, str | Path, int | None]:
    """``udp://HOST:PORT`` -> ("udp", address, port); a file path -> ("file", path, None). An empty HOST is
    loopback; an address other than loopback is refused unless ``allow_network``, and then warned about."""
    if not spec.startswith("udp://"):
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(
                f"{spec}: no such file. Fix: a source is a mocap file (.bvh, .amc, .npy, .npz) or udp://HOST:PORT"
            )
        return "file", path, None
    host, colon, port = spec[len("udp://") :].rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(
            f"{spec}: a UDP source is udp://HOST:PORT with a port from 1 to 65535 (the sender's destination port). "
            "Fix: e.g. udp://127.0.0.1:9870"
        )
    try:
        address = socket.getaddrinfo(host or "127.0.0.1", int(port), socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(
            f"{spec}: {host!r} is not an IPv4 address or a name of this machine ({e}). Fix: 127.0.0.1 for loopback, "
            "or the address of the interface the sender reaches"
        ) from None
    if not ipaddress.ip_address(address).is_loopback:
        where = "every interface" if address == "0.0.0.0" else f"{address}"
        if not allow_network:
            raise ConfigError(
                f"{spec} listens on {where}, reachable from the network, and teleop listens on loopback unless told "
                "otherwise: whoever reaches the port sends the pose the robot tracks. Fix: pass --allow-network, "
                f"with a key (${KEY_ENV} or --key-file; docs/teleop.md), or use udp://127.0.0.1:{port}"
            )
    return "udp", address, int(port)


def load_key(key_file: str | Path | None = None) -> bytes | None:
    """The shared key: the content of ``key_file`` (trailing whitespace dropped), else ``$HGPT_TELEOP_KEY``, else
    None (frames are not authenticated). Never a command-line value: that shows in ``ps``. A key shorter than
    ``MIN_KEY_BYTES`` is refused; a key file others can read is warned about."""
    env = os.environ.get(KEY_ENV)
    if key_file is not None:
        path = Path(key_file)
        if env:
            raise ConfigError(f"both --key-file {path} and ${KEY_ENV} are set. Fix: unset one, so one key is used")
        try:
            key = path.read_bytes().rstrip()
        except OSError as e:
            raise ConfigError(f"--key-file {path}: cannot read it ({e.strerror}). Fix: name a readable file") from None
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(f"{path}: the key file is readable by others. Fix: chmod 600 {path}", TeleopWarning, 2)
        origin = f"--key-file {path}"
    elif env:
        key, origin = env.encode(), f"${KEY_ENV}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{origin}: the key has {len(key)} bytes; a shared key needs at least {MIN_KEY_BYTES}. Fix: make one "
            "with `openssl rand -hex 32` and give the sender the same"
        )
    return key


def mocap_frames(
    path: str | Path, g1: G1, seconds: float | None = None, fps: float | None = None
) -> Iterator[tuple[float, np.ndarray, float]]:
    """A mocap file as the stream a live client would send: (timestamp_s, G1 qpos (36,), retarget seconds) per frame,
    each human frame through :meth:`Retargeter.step` (calibrated on the file), in order. ``fps``: the rate of a file
    that stores none (see :func:`~humanoid_gpt.governance.mocap.read_mocap`)."""
    from humanoid_gpt.governance.mocap import read_mocap
    from humanoid_gpt.governance.retarget import Retargeter

    motion = read_mocap(path, fps)
    if seconds is not None:
        motion = motion.slice(0, int(seconds * motion.fps) + 1)
    retargeter = Retargeter.for_motion(motion, g1=g1)
    rotations = motion.rotations
    emitted = 0
    for t in range(motion.num_frames):
        start = time.perf_counter()
        out = retargeter.step(motion.positions[t], None if rotations is None else rotations[t])
        spent = time.perf_counter() - start
        if out is not None:
            yield emitted / motion.fps, out[0], spent  # frame t - lookahead: stamped with its own time
            emitted += 1
    for qpos, _ in retargeter.flush():
        yield emitted / motion.fps, qpos, 0.0
        emitted += 1


# The robot side -------------------------------------------------------------------------------------------------------


@dataclass
class StageTimes:
    """Seconds spent per control tick in each stage."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            k: {"p50_ms": float(np.percentile(v, 50) * 1e3), "p99_ms": float(np.percentile(v, 99) * 1e3), "n": len(v)}
            for k, v in self.samples.items()
            if v
        }


class SimulatedG1:
    """The G1 in MuJoCo driven by a streaming student ONNX following a live reference (G1 qpos frames), through the
    Unitree low-level command: each motor's kp, kd, q, dq and tau become its actuator's PD law, so the damping
    command damps here as on the robot."""

    def __init__(self, g1: G1, policy: str | Path, mode_machine: int = 0) -> None:
        import mujoco
        import torch

        from humanoid_gpt.deploy.runtime import OnnxStream
        from humanoid_gpt.mdp.config import RobotTensors, TrackingConfig

        self.g1, self.mode_machine = g1, mode_machine
        self.stream = OnnxStream(policy)
        meta = self.stream.meta
        self.relative = bool(meta["action_relative_to_reference"])
        self.dt = float(meta["control_dt"])
        physics_dt = float(meta.get("physics_dt", 0.005))
        self.decimation = max(1, round(self.dt / physics_dt))
        self.model = g1.model(actuators="position", timestep=physics_dt)
        self.data = mujoco.MjData(self.model)
        self.consts = RobotTensors.build(g1, TrackingConfig())
        self.action = torch.zeros(1, g1.num_joints)
        self.falls = 0
        self.damped = 0  # control ticks that sent the damping command
        self.refused_run = 0  # policy actions refused in a row
        self.last_refusal: str | None = None
        self.last_cmd = None
        self._prev_ref: np.ndarray | None = None

    def reset(self, qpos: np.ndarray) -> None:
        import mujoco

        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        mujoco.mj_forward(self.model, self.data)
        self.stream.reset()
        self.action.zero_()
        self._prev_ref = None

    def _state(self, qpos, qvel=None, prev=None):
        import torch

        from humanoid_gpt import rotations as R
        from humanoid_gpt.state import KinematicState

        q = torch.as_tensor(np.asarray(qpos), dtype=torch.float32)[None]
        if qvel is not None:  # the robot: MuJoCo's free joint angular velocity is in the body frame
            v = torch.as_tensor(np.asarray(qvel), dtype=torch.float32)[None]
            lin, ang, joint_vel = v[:, :3], R.quat_apply(q[:, 3:7], v[:, 3:6]), v[:, 6:]
        else:  # the reference: differences from the previous reference frame
            p = q if prev is None else torch.as_tensor(prev, dtype=torch.float32)[None]
            lin = (q[:, :3] - p[:, :3]) / self.dt
            ang = R.angular_velocity(torch.cat([p[:, 3:7], q[:, 3:7]]), self.dt)[-1:]
            joint_vel = (q[:, 7:] - p[:, 7:]) / self.dt
        empty3, empty4 = torch.zeros(1, 0, 3), torch.zeros(1, 0, 4)
        return KinematicState(q[:, 7:], joint_vel, q[:, :3], q[:, 3:7], lin, ang, empty3, empty4, empty3, empty3)

    def send(self, cmd) -> None:
        """Apply a :class:`~humanoid_gpt.deploy.unitree.LowCmd` as the motors would: force = kp (q - q_now) +
        kd (dq - dq_now) + tau per enabled motor (clipped to the effort limit by the actuator), none when disabled."""
        from humanoid_gpt.deploy.unitree import MOTOR_ENABLE

        for i, m in enumerate(cmd.motor_cmd[: self.g1.num_joints]):
            on = m.mode == MOTOR_ENABLE
            kp, kd = (m.kp, m.kd) if on else (0.0, 0.0)
            self.model.actuator_gainprm[i, 0] = kp
            self.model.actuator_biasprm[i, :3] = [(m.tau + kd * m.dq) if on else 0.0, -kp, -kd]
            self.data.ctrl[i] = m.q
        self.last_cmd = cmd

    def damp(self, reason: str) -> None:
        """Send the damping command (zero stiffness: the robot sinks, slowed), counting why."""
        from humanoid_gpt.deploy.unitree import damping_cmd

        self.send(damping_cmd(self.g1, self.mode_machine))
        self.damped += 1
        self.last_refusal = reason

    def tick(self, ref_qpos: np.ndarray, times: StageTimes) -> None:
        """One control step towards the reference pose ``ref_qpos`` (36,): observe, act, command, simulate. An
        action the command builder refuses (not finite, wrong size) sends the damping command instead and restarts
        the policy's history (a NaN in its cache would poison every later step)."""
        import mujoco
        import torch

        from humanoid_gpt.deploy.unitree import low_cmd
        from humanoid_gpt.mdp.observations import student_observation

        start = time.perf_counter()
        robot = self._state(self.data.qpos, self.data.qvel)
        ref = self._state(ref_qpos, prev=self._prev_ref)
        obs = student_observation(robot, ref, self.action, self.consts)
        t1 = time.perf_counter()
        action = self.stream.step(obs.numpy())
        t2 = time.perf_counter()
        base = ref_qpos[7:] if self.relative else None
        try:
            cmd = low_cmd(self.g1, np.asarray(action, dtype=np.float64).reshape(-1), self.mode_machine, base)
        except ValueError as e:
            self.damp(f"policy action refused: {e}")
            self.refused_run += 1
            self.stream.reset()
            self.action.zero_()
        else:
            self.refused_run = 0
            self.action = torch.from_numpy(np.asarray(action, dtype=np.float32).reshape(1, -1))
            self.send(cmd)
        t3 = time.perf_counter()
        for _ in range(self.decimation):
            mujoco.mj_step(self.model, self.data)
        t4 = time.perf_counter()
        times.add("observe", t1 - start)
        times.add("policy", t2 - t1)
        times.add("command", t3 - t2)
        times.add("physics", t4 - t3)
        self._prev_ref = np.asarray(ref_qpos, dtype=np.float64)
        if self.data.qpos[2] < 0.35 or not np.isfinite(self.data.qpos).all():  # fell: start again at the reference
            self.falls += 1
            self.reset(ref_qpos)


def _check_settings(source: str, kind: str, seconds: float, delay_s: float, fps: float | None) -> None:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"seconds={seconds!r}: a session lasts a finite number of seconds above 0. Fix: --seconds 10")
    if not (isinstance(delay_s, (int, float)) and 0.0 <= delay_s <= MAX_DELAY_S):
        raise ConfigError(
            f"delay {delay_s * 1e3:g} ms: the playout delay is from 0 to {MAX_DELAY_S * 1e3:g} ms (every frame "
            "plays that late). Fix: --delay-ms 60, or a little above the network's worst jitter"
        )
    if fps is not None and kind == "udp":
        raise ConfigError(
            f"{source}: --fps is the rate of a file source that stores none; UDP frames carry their own timestamps. "
            "Fix: leave --fps out"
        )


def run_teleop(
    source: str,
    policy: str | Path,
    g1: G1 | None = None,
    seconds: float = 10.0,
    delay_s: float = 0.06,
    mode_machine: int = 0,
    realtime: bool | None = None,
    key: bytes | None = None,
    allow_network: bool = False,
    fps: float | None = None,
    wait_s: float = 5.0,
    on_status: Callable[[dict], None] | None = None,
) -> dict:
    """Teleoperate the simulated G1 from ``source`` for ``seconds``; returns counters (and the last reason of each
    refusal), stage latencies (p50/p99 ms), falls, damped ticks and, when the session stopped early, why. Files play
    as fast as the loop runs unless ``realtime`` (``fps``: the rate of a file that stores none); UDP runs on the wall
    clock, waits ``wait_s`` for its first frame, listens on loopback unless ``allow_network`` and, with ``key``,
    takes only frames signed with it. ``on_status`` gets the counters about once a second."""
    from humanoid_gpt.robot import load_g1

    kind, where, port = parse_source(source, allow_network)
    _check_settings(source, kind, seconds, delay_s, fps)
    if kind == "udp" and not ipaddress.ip_address(str(where)).is_loopback:
        unsigned = "" if key else f"; no key is set, so frames are not authenticated (${KEY_ENV} or --key-file)"
        warnings.warn(
            f"listening on {where}:{port}, reachable from the network: whoever reaches it sends the pose the robot "
            f"tracks{unsigned}",
            TeleopWarning,
            stacklevel=2,
        )
    g1 = g1 or load_g1()
    buffer = JitterBuffer(delay_s, check=lambda f: implausible(f.values, g1))
    # Bound before the policy loads: a port in use is refused at once, and frames sent meanwhile wait in the socket.
    receiver = UdpReceiver(str(where), int(port), buffer, key) if kind == "udp" else None
    try:
        robot = SimulatedG1(g1, policy, mode_machine)
    except BaseException:
        if receiver is not None:
            receiver.close()
        raise
    times = StageTimes()
    dt = robot.dt
    ticks = int(round(seconds / dt))
    every = max(1, int(round(1.0 / dt)))
    stopped = None

    def control(tick: int, now: float, ref: np.ndarray) -> np.ndarray:
        """Play the due frame (else hold ``ref``), step the robot, report; returns the reference used."""
        nonlocal stopped
        item = buffer.pop(now)
        if item is not None:
            ref = item[0].values.astype(np.float64)
            times.add("buffer", now - item[1])
        robot.tick(ref, times)
        if robot.refused_run >= MAX_REFUSED:
            stopped = f"{robot.refused_run} policy actions in a row were refused ({robot.last_refusal}): stopped"
        if on_status is not None and (tick + 1) % every == 0:
            on_status({"t": round((tick + 1) * dt, 3), **asdict(buffer.counters), "damped": robot.damped})
        return ref

    try:
        if kind == "file":
            frames = mocap_frames(where, g1, seconds + delay_s + 1.0, fps)
            pending = next(frames, None)
            while pending is not None and (reason := implausible(pending[1], g1)) is not None:
                buffer.refuse("implausible", reason)
                pending = next(frames, None)
            if pending is None:
                raise HGPTError(f"{where}: no frame of the file retargets to a plausible G1 pose to start from")
            robot.reset(pending[1])
            ref, sequence = pending[1], 0
            clock0 = time.perf_counter()
            for tick in range(ticks):
                now = tick * dt
                # The file's frames "arrive" when their time comes; they go through the same jitter buffer.
                while pending is not None and pending[0] <= now:
                    times.add("retarget", pending[2])
                    stamp = int(round(pending[0] * 1e6))
                    buffer.push(Frame(KIND_G1, sequence, stamp, pending[1].astype(np.float32)), now)
                    sequence += 1
                    pending = next(frames, None)
                ref = control(tick, now, ref)
                if stopped:
                    break
                if realtime:
                    time.sleep(max(0.0, clock0 + (tick + 1) * dt - time.perf_counter()))
        else:
            assert receiver is not None
            try:
                item, deadline = None, time.perf_counter() + wait_s
                while item is None and time.perf_counter() < deadline:  # wait for the stream's first frame
                    receiver.poll()
                    item = buffer.pop(time.perf_counter())
                    time.sleep(0.001)
                if item is None:
                    seen = "; ".join(f"{k}: {why}" for k, why in buffer.refusals.items()) or "no datagram"
                    raise HGPTError(
                        f"no usable G1 frame arrived on {source} within {wait_s:g} s ({seen}). Fix: start the sender "
                        "first; check its destination address and port, its frame kind (1) and its key"
                    )
                ref = item[0].values.astype(np.float64)
                robot.reset(ref)
                clock0 = time.perf_counter()
                for tick in range(ticks):
                    receiver.poll()
                    ref = control(tick, time.perf_counter(), ref)
                    if stopped:
                        break
                    time.sleep(max(0.0, clock0 + (tick + 1) * dt - time.perf_counter()))
                for s in receiver.decode_s:
                    times.add("receive", s)
            finally:
                receiver.close()
    except BaseException:  # an error or an interrupt ends the loop: the robot is left damped, never holding a pose
        robot.damp("the loop ended on an error or an interrupt")
        raise
    return {
        "source": source,
        "policy": str(policy),
        "seconds": seconds,
        "signed": key is not None,
        "counters": asdict(buffer.counters),
        "refusals": dict(buffer.refusals),
        "latency_ms": times.summary(),
        "falls": robot.falls,
        "damped": robot.damped,
        "stopped": stopped,
    }


def format_status(status: dict) -> str:
    """One line of live counters."""
    return f"t {status['t']:g} s: " + ", ".join(f"{k} {v}" for k, v in status.items() if k != "t")


def print_teleop(result: dict) -> None:
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"teleop {result['source']} -> {Path(result['policy']).name}, {result['seconds']:g} s")
    for col in ("stage", "p50 ms", "p99 ms", "samples"):
        table.add_column(col)
    for stage, s in result["latency_ms"].items():
        table.add_row(stage, f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}", str(s["n"]))
    console().print(table)
    counters = ", ".join(f"{k} {v}" for k, v in result["counters"].items())
    console().print(f"frames: {counters}; falls {result['falls']}; damped ticks {result['damped']}")
    for counter, reason in result["refusals"].items():
        console().print(f"  last {counter}: {reason}")
    if result["stopped"]:
        console().print(f"stopped: {result['stopped']}; the damping command was sent")
