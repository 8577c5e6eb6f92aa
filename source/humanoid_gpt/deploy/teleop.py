"""Live teleoperation: a motion stream (a mocap file played in real time, or UDP frames) -> frame-by-frame
retargeting -> a jitter buffer -> the G1 reference -> the streaming policy -> joint targets and the Unitree low-level
command (docs/architecture.md, stage 5). Here the G1 is the MuJoCo model in-process, driven by the low-level command
itself (per-motor kp, kd, q at the physics rate, torques clipped to the effort limits); on a robot the same loop would
publish the command and read ``rt/lowstate``. docs/teleop.md says how to run it on a robot's network.

The pieces: the frame protocol (:mod:`~humanoid_gpt.deploy.teleop_protocol`; the UDP datagram is documented there),
the jitter buffer and its counters (:mod:`~humanoid_gpt.deploy.teleop_buffer`), the sources
(:mod:`~humanoid_gpt.deploy.teleop_sources`) and the simulated robot (:mod:`~humanoid_gpt.deploy.teleop_robot`). This
module runs a session: the shared key, the settings, the control loop and its report.

Safety: a policy action that is not finite or that the command builder refuses makes the loop send the damping
command (:func:`~humanoid_gpt.deploy.unitree.damping_cmd`) for that tick and restart the policy's history; after
``MAX_REFUSED`` such ticks in a row the session stops, leaving the damping command. Any error or interrupt that ends
the loop sends it too.
"""

from __future__ import annotations

import ipaddress
import math
import os
import stat
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.teleop_buffer import JitterBuffer
from humanoid_gpt.deploy.teleop_protocol import KEY_ENV, KIND_G1, MIN_KEY_BYTES, Frame, implausible
from humanoid_gpt.deploy.teleop_robot import SimulatedG1, StageTimes
from humanoid_gpt.deploy.teleop_sources import UdpReceiver, mocap_frames, parse_source
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.robot.g1 import G1

MAX_REFUSED = 25  # policy actions refused in a row (half a second at 50 Hz) before the session stops
MAX_DELAY_S = 1.0


class TeleopWarning(UserWarning):
    """A teleop setting that works but deserves a look (a socket reachable from the network, a readable key)."""


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
