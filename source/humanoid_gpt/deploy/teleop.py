"""Live teleoperation: a motion stream (a BVH file played in real time, or UDP frames) -> frame-by-frame retargeting
-> a jitter buffer -> the G1 reference -> the streaming policy -> joint targets and the Unitree low-level command
(docs/architecture.md, stage 5). Here the G1 is the MuJoCo model in-process (PD at the physics rate, torques clipped
to the effort limits, as in the harness); on a robot the same loop would read ``rt/lowstate`` instead.

UDP protocol (``hgpt teleop --source udp://HOST:PORT``), one frame per datagram, little-endian:

=======  =====  ===================================================================================================
offset   bytes  field
=======  =====  ===================================================================================================
0        4      magic ``HGTP``
4        1      version (1)
5        1      kind: 1 = G1 frame (36 float32: root xyz m, root quaternion w x y z, 29 joints rad, G1 order);
                2 = human joint positions (J x 3 float32, metres, Z up, in the calibrated skeleton's joint order)
6        2      count: float32 values in the payload (u16)
8        4      sequence number (u32, +1 per frame, wraps)
12       8      sender timestamp, microseconds (u64, any epoch: only differences are used)
20       4 n    payload
20 + 4n  4      CRC-32 (zlib's) of all bytes before it
=======  =====  ===================================================================================================

A G1 frame is 168 bytes. Counters: ``malformed`` (bad magic, version, kind, size or CRC), ``duplicate`` (a sequence
number already received), ``late`` (arrived after a newer frame was played: dropped), ``lost`` (sequence numbers
between the first and the newest received that never arrived), ``underrun`` (a control tick with no new frame:
the last reference is held).

Jitter buffer: playout at sender time + clock offset + ``delay``, the offset being the smallest arrival - send time
seen (the fastest path), so packets delayed by less than ``delay`` play on time and in order.
"""

from __future__ import annotations

import socket
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.robot.g1 import G1

MAGIC = b"HGTP"
VERSION = 1
KIND_G1 = 1
KIND_HUMAN = 2
HEADER = struct.Struct("<4sBBHIQ")  # magic, version, kind, count, sequence, timestamp (us)
G1_FRAME_VALUES = 36


class MalformedPacket(HGPTError, ValueError):
    """A datagram that is not a frame of this protocol."""


@dataclass
class Frame:
    kind: int
    sequence: int
    timestamp_us: int
    values: np.ndarray  # float32: (36,) for a G1 frame, (J, 3) for human joints


def encode_frame(frame: Frame) -> bytes:
    values = np.ascontiguousarray(frame.values, dtype="<f4").ravel()
    header = HEADER.pack(MAGIC, VERSION, frame.kind, values.size, frame.sequence & 0xFFFFFFFF, frame.timestamp_us)
    body = header + values.tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def decode_frame(data: bytes) -> Frame:
    if len(data) < HEADER.size + 4:
        raise MalformedPacket(f"{len(data)} bytes: shorter than a header")
    magic, version, kind, count, sequence, stamp = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MalformedPacket(f"magic {magic!r}, not {MAGIC!r}")
    if version != VERSION:
        raise MalformedPacket(f"protocol version {version}, this code reads {VERSION}")
    if len(data) != HEADER.size + 4 * count + 4:
        raise MalformedPacket(f"{len(data)} bytes for {count} values")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]):
        raise MalformedPacket("CRC mismatch")
    values = np.frombuffer(data, dtype="<f4", count=count, offset=HEADER.size).astype(np.float32)
    if kind == KIND_G1:
        if count != G1_FRAME_VALUES:
            raise MalformedPacket(f"a G1 frame has {G1_FRAME_VALUES} values, not {count}")
    elif kind == KIND_HUMAN:
        if count % 3:
            raise MalformedPacket(f"human joint positions come in threes, not {count}")
        values = values.reshape(-1, 3)
    else:
        raise MalformedPacket(f"unknown frame kind {kind}")
    if not np.isfinite(values).all():
        raise MalformedPacket("non-finite values")
    return Frame(kind, sequence, stamp, values)


# Jitter buffer -------------------------------------------------------------------------------------------------------


@dataclass
class Counters:
    received: int = 0
    malformed: int = 0
    duplicate: int = 0
    late: int = 0
    lost: int = 0
    underrun: int = 0
    played: int = 0


class JitterBuffer:
    """Frames in, frames out in sequence order at their playout time (sender time + offset + ``delay_s``)."""

    def __init__(self, delay_s: float = 0.06, memory: int = 4096) -> None:
        self.delay_s = delay_s
        self.counters = Counters()
        self._pending: dict[int, tuple[Frame, float]] = {}  # unwrapped sequence -> (frame, arrival time)
        self._seen: deque[int] = deque(maxlen=memory)
        self._seen_set: set[int] = set()
        self._offset: float | None = None
        self._first: int | None = None
        self._newest: int | None = None
        self._last_raw: int | None = None
        self._last_ext = 0
        self._played: int | None = None  # unwrapped sequence of the last frame played

    def _unwrap(self, sequence: int) -> int:
        if self._last_raw is None:
            self._last_raw, self._last_ext = sequence, sequence
            return sequence
        delta = (sequence - self._last_raw + 2**31) % 2**32 - 2**31  # signed distance, wrap-aware
        ext = self._last_ext + delta
        if delta > 0:
            self._last_raw, self._last_ext = sequence, ext
        return ext

    def push(self, frame: Frame, arrival_s: float) -> None:
        seq = self._unwrap(frame.sequence)
        if seq in self._seen_set:
            self.counters.duplicate += 1
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(seq)
        self._seen_set.add(seq)
        self.counters.received += 1
        self._first = seq if self._first is None else min(self._first, seq)
        self._newest = seq if self._newest is None else max(self._newest, seq)
        self.counters.lost = (self._newest - self._first + 1) - len(self._seen_set)
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
        return popped[newest]


# Sources --------------------------------------------------------------------------------------------------------------


class UdpReceiver:
    """A non-blocking UDP socket feeding a jitter buffer; ``poll()`` reads every datagram waiting."""

    def __init__(self, host: str, port: int, buffer: JitterBuffer) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.buffer = buffer
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
                frame = decode_frame(data)
            except MalformedPacket:
                self.buffer.counters.malformed += 1
                continue
            self.buffer.push(frame, start)
            self.decode_s.append(now() - start)

    def close(self) -> None:
        self.sock.close()


def parse_source(spec: str) -> tuple[str, str | Path, int | None]:
    """``udp://HOST:PORT`` -> ("udp", host, port); a file path -> ("file", path, None)."""
    if spec.startswith("udp://"):
        host, _, port = spec[len("udp://") :].rpartition(":")
        if not host or not port.isdigit():
            raise HGPTError(f"{spec}: a UDP source is udp://HOST:PORT")
        return "udp", host, int(port)
    path = Path(spec)
    if not path.is_file():
        raise HGPTError(f"{spec}: no such file (a source is a .bvh file or udp://HOST:PORT)")
    return "file", path, None


def bvh_frames(path: str | Path, g1: G1, seconds: float | None = None):
    """A mocap file as the stream a live client would send: (timestamp_s, G1 qpos (36,), retarget seconds) per frame,
    each human frame through :meth:`Retargeter.step` (calibrated on the file), in order."""
    from humanoid_gpt.governance.mocap import read_mocap
    from humanoid_gpt.governance.retarget import Retargeter

    motion = read_mocap(path)
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
    """The G1 in MuJoCo driven by a streaming student ONNX following a live reference (G1 qpos frames)."""

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

    def tick(self, ref_qpos: np.ndarray, times: StageTimes) -> None:
        """One control step towards the reference pose ``ref_qpos`` (36,): observe, act, command, simulate."""
        import mujoco
        import torch

        from humanoid_gpt.deploy.unitree import low_cmd
        from humanoid_gpt.mdp.actions import joint_targets
        from humanoid_gpt.mdp.observations import student_observation

        start = time.perf_counter()
        robot = self._state(self.data.qpos, self.data.qvel)
        ref = self._state(ref_qpos, prev=self._prev_ref)
        obs = student_observation(robot, ref, self.action, self.consts)
        t1 = time.perf_counter()
        action = self.stream.step(obs.numpy())
        t2 = time.perf_counter()
        self.action = torch.from_numpy(action)
        ref_joints = ref.joint_pos if self.relative else None
        targets = joint_targets(self.action, self.consts, ref_joints)[0].numpy().astype(np.float64)
        base = ref_qpos[7:] if self.relative else None
        low_cmd(self.g1, action[0].astype(np.float64), self.mode_machine, base)
        t3 = time.perf_counter()
        self.data.ctrl[:] = targets
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


def run_teleop(
    source: str,
    policy: str | Path,
    g1: G1 | None = None,
    seconds: float = 10.0,
    delay_s: float = 0.06,
    mode_machine: int = 0,
    realtime: bool | None = None,
) -> dict:
    """Teleoperate the simulated G1 from ``source`` for ``seconds``; returns counters, stage latencies (p50/p99 ms)
    and falls. BVH files play as fast as the loop runs unless ``realtime``; UDP always runs on the wall clock."""
    from humanoid_gpt.robot import load_g1

    g1 = g1 or load_g1()
    kind, where, port = parse_source(source)
    robot = SimulatedG1(g1, policy, mode_machine)
    times = StageTimes()
    buffer = JitterBuffer(delay_s)
    dt = robot.dt
    ticks = int(round(seconds / dt))
    if kind == "file":
        realtime = bool(realtime)
        frames = bvh_frames(where, g1, seconds + delay_s + 1.0)
        first = next(frames)
        robot.reset(first[1])
        pending, ref, sequence = first, first[1], 0
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
            item = buffer.pop(now)
            if item is not None:
                ref = item[0].values.astype(np.float64)
                times.add("buffer", now - item[1])
            robot.tick(ref, times)
            if realtime:
                time.sleep(max(0.0, clock0 + (tick + 1) * dt - time.perf_counter()))
    else:
        receiver = UdpReceiver(str(where), int(port), buffer)
        try:
            ref, start = None, time.perf_counter()
            deadline = start + seconds + 5.0
            while ref is None and time.perf_counter() < deadline:  # wait for the stream's first frame
                receiver.poll()
                item = buffer.pop(time.perf_counter())
                ref = None if item is None else item[0].values.astype(np.float64)
                time.sleep(0.001)
            if ref is None:
                raise HGPTError(f"no frame arrived on {source} within 5 s")
            if item[0].kind != KIND_G1:
                raise HGPTError("human-joint UDP frames need a calibrated retargeter: stream G1 frames (kind 1)")
            robot.reset(ref)
            clock0 = time.perf_counter()
            for tick in range(ticks):
                receiver.poll()
                now = time.perf_counter()
                item = buffer.pop(now)
                if item is not None:
                    ref = item[0].values.astype(np.float64)
                    times.add("buffer", now - item[1])
                robot.tick(ref, times)
                time.sleep(max(0.0, clock0 + (tick + 1) * dt - time.perf_counter()))
            for s in receiver.decode_s:
                times.add("receive", s)
        finally:
            receiver.close()
    return {
        "source": source,
        "policy": str(policy),
        "seconds": seconds,
        "counters": buffer.counters.__dict__,
        "latency_ms": times.summary(),
        "falls": robot.falls,
    }


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
    console().print(f"frames: {counters}; falls {result['falls']}")
