"""Where teleop frames come from: a UDP socket feeding the jitter buffer (:class:`UdpReceiver`), a mocap file
retargeted frame by frame as a live sender would stream it (:func:`mocap_frames`), and the ``--source`` spec naming
one (:func:`parse_source`)."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.teleop_buffer import JitterBuffer
from humanoid_gpt.deploy.teleop_protocol import KEY_ENV, KIND_G1, MalformedPacket, decode_frame
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.robot.g1 import G1


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
