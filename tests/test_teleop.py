"""Teleoperation: the UDP frame protocol and its malformed, unsigned and wrongly signed packets, implausible frames,
the jitter buffer's counters (restarts, jumps, bursts, loss over a window), the bind and setting checks, the Unitree
G1 low-level command (field order, values, CRC as Unitree computes it) and the damping command the loop falls back
to, and the loop end to end over UDP (loopback only) and from BVH."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
from students_support import export_student, standing_student

from humanoid_gpt.deploy.teleop import MAX_REFUSED, TeleopWarning, load_key, run_teleop
from humanoid_gpt.deploy.teleop_buffer import RESTART_RUN, WINDOW, JitterBuffer
from humanoid_gpt.deploy.teleop_protocol import (
    KIND_G1,
    KIND_HUMAN,
    Frame,
    MalformedPacket,
    decode_frame,
    encode_frame,
    implausible,
)
from humanoid_gpt.deploy.teleop_robot import SimulatedG1, StageTimes
from humanoid_gpt.deploy.teleop_sources import UdpReceiver, mocap_frames, parse_source
from humanoid_gpt.deploy.unitree import LOW_CMD_FORMAT, LOW_CMD_SIZE, LowCmd, crc32_core, damping_cmd, low_cmd
from humanoid_gpt.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Protocol ------------------------------------------------------------------------------------------------------------


def test_frames_round_trip_and_a_g1_frame_is_168_bytes():
    qpos = np.arange(36, dtype=np.float32) / 10
    data = encode_frame(Frame(KIND_G1, 7, 123_456, qpos))
    assert len(data) == 168
    back = decode_frame(data)
    assert (back.kind, back.sequence, back.timestamp_us) == (KIND_G1, 7, 123_456)
    assert np.array_equal(back.values, qpos)
    human = decode_frame(encode_frame(Frame(KIND_HUMAN, 2**32 + 5, 1, np.ones((22, 3)))))
    assert human.values.shape == (22, 3) and human.sequence == 5  # sequence numbers wrap at 2^32


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d[:10], "shorter than a header"),
        (lambda d: b"XXXX" + d[4:], "magic"),
        (lambda d: d[:4] + b"\x09" + d[5:], "version"),
        (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "CRC mismatch"),
        (lambda d: d[:-8] + d[-4:], "bytes for 36 values"),
    ],
)
def test_malformed_packets_are_refused(corrupt, message):
    data = encode_frame(Frame(KIND_G1, 1, 2, np.zeros(36)))
    with pytest.raises(MalformedPacket, match=message):
        decode_frame(corrupt(data))
    with pytest.raises(MalformedPacket, match="unknown frame kind"):
        decode_frame(encode_frame(Frame(9, 1, 2, np.zeros(36))))
    with pytest.raises(MalformedPacket, match="non-finite"):
        decode_frame(encode_frame(Frame(KIND_G1, 1, 2, np.full(36, np.nan))))


def test_the_jitter_buffer_plays_in_order_and_counts_duplicates_late_and_lost_frames():
    """Frames every 20 ms, playout delay 50 ms: 3 and 4 arrive swapped, 6 never, 2 twice, 8 after 9 was played."""
    buffer = JitterBuffer(delay_s=0.05)
    frame = lambda s: Frame(KIND_G1, (2**32 - 3 + s) % 2**32, 20_000 * s, np.full(36, s, np.float32))  # noqa: E731
    arrivals = {0: 0.001, 1: 0.021, 2: 0.043, 3: 0.075, 4: 0.062, 5: 0.101, 7: 0.141, 9: 0.181, 8: 0.35}
    events = sorted([(t, "push", s) for s, t in arrivals.items()] + [(0.044, "push", 2)])
    events += [(0.0515 + 0.02 * k, "pop", None) for k in range(15)]  # control ticks, 0.5 ms after playout times
    played = []
    for t, what, s in sorted(events, key=lambda e: (e[0], e[1] == "pop")):
        if what == "push":
            buffer.push(frame(s), t)
        else:
            item = buffer.pop(t)
            if item is not None:
                played.append(int(item[0].values[0]))
    assert played == [0, 1, 2, 3, 4, 5, 7, 9]  # in order across the wrap of the sequence numbers
    c = buffer.counters
    assert (c.received, c.duplicate, c.late, c.lost) == (9, 1, 1, 1)
    assert c.underrun >= 1  # the tick where 6 was missing held the last frame


# Unitree low-level command --------------------------------------------------------------------------------------------


def unitree_crc_reference(words) -> int:
    """Unitree SDK2's crc32_core, bit by bit as the SDK writes it."""
    crc, poly = 0xFFFFFFFF, 0x04C11DB7
    for data in words:
        bit = 1 << 31
        for _ in range(32):
            crc = ((crc << 1) & 0xFFFFFFFF) ^ poly if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
            if data & bit:
                crc ^= poly
            bit >>= 1
    return crc


def test_the_low_level_command_has_unitrees_fields_order_values_and_crc(g1):
    rng = np.random.default_rng(0)
    action = rng.uniform(-0.5, 0.5, 29)
    cmd = low_cmd(g1, action, mode_machine=5)
    data = cmd.pack()
    assert len(data) == LOW_CMD_SIZE == 1004
    fields = struct.unpack(LOW_CMD_FORMAT, data)
    assert fields[:2] == (0, 5)  # mode_pr (pitch/roll ankles), mode_machine as read from the robot
    motors = np.array(fields[2 : 2 + 35 * 7], dtype=np.float64).reshape(35, 7)  # mode q dq tau kp kd reserve
    q = np.clip(g1.default_joint_pos + action * g1.action_scale, g1.joint_limits[:, 0], g1.joint_limits[:, 1])
    assert np.array_equal(motors[:29, 0], np.ones(29)) and not motors[29:].any()
    assert np.allclose(motors[:29, 1], q, atol=1e-6) and not motors[:29, 2:4].any()
    assert np.allclose(motors[:29, 4], g1.kp, rtol=1e-6) and np.allclose(motors[:29, 5], g1.kd, rtol=1e-6)
    words = np.frombuffer(data, dtype="<u4")
    assert fields[-1] == cmd.crc == unitree_crc_reference(words[:-1].tolist()) == crc32_core(words[:-1])
    relative = low_cmd(g1, np.zeros(29), 5, reference_joint_pos=g1.default_joint_pos + 0.1)
    assert relative.motor_cmd[3].q == pytest.approx(g1.default_joint_pos[3] + 0.1, abs=1e-6)
    changed = LowCmd(**{**cmd.__dict__, "mode_machine": 6})
    assert changed.compute_crc() != cmd.crc
    damp = damping_cmd(g1, 5)
    assert damp.motor_cmd[0].kp == 0.0 and damp.motor_cmd[0].kd == 8.0 and damp.crc == damp.compute_crc()
    with pytest.raises(ValueError, match="not finite"):
        low_cmd(g1, np.full(29, np.nan), 5)


# The loop ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standing_policy(g1, tmp_path_factory):
    return export_student(standing_student(g1), g1, tmp_path_factory.mktemp("teleop"))["streaming"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_teleop_over_udp_keeps_the_g1_standing_and_counts_the_stream(g1, standing_policy):
    from humanoid_gpt.deploy.check_dynamic import standing_clip

    clip = standing_clip(g1, 4.0)
    port = _free_port()

    def send():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.perf_counter()
            for i, qpos in enumerate(clip.qpos()):
                time.sleep(max(0.0, start + i * 0.02 - time.perf_counter()))
                data = encode_frame(Frame(KIND_G1, i, int(i * 20_000), qpos))
                if i != 20:  # lost
                    s.sendto(data, ("127.0.0.1", port))
                if i == 30:  # duplicated
                    s.sendto(data, ("127.0.0.1", port))
                if i in (40, 41):  # garbage
                    s.sendto(b"not a frame", ("127.0.0.1", port))
                if i == 50:  # a valid frame of the other kind: counted, never the end of the session
                    s.sendto(encode_frame(Frame(KIND_HUMAN, 10_000, 0, np.ones((22, 3)))), ("127.0.0.1", port))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    result = run_teleop(f"udp://127.0.0.1:{port}", standing_policy, g1, seconds=2.0, delay_s=0.06)
    sender.join()
    c = result["counters"]
    assert (c["malformed"], c["duplicate"], c["lost"], c["restarts"]) == (3, 1, 1, 0), c
    assert "human-joint frame (kind 2) in a stream of G1 frames" in result["refusals"]["malformed"]
    assert result["falls"] == 0 and c["played"] > 50 and result["damped"] == 0 and result["stopped"] is None
    assert {"receive", "buffer", "observe", "policy", "command"} <= set(result["latency_ms"])
    assert result["latency_ms"]["policy"]["p50_ms"] < 20.0


def test_teleop_from_a_bvh_file_runs_every_frame_through_the_retargeter(g1, standing_policy, lafan1_bvh_dir):
    result = run_teleop(str(lafan1_bvh_dir / "walk.bvh"), standing_policy, g1, seconds=1.0)
    c = result["counters"]
    assert c["received"] >= 25 and c["lost"] == c["late"] == c["malformed"] == 0
    assert result["latency_ms"]["retarget"]["n"] >= 25
    assert {"buffer", "observe", "policy", "command", "physics"} <= set(result["latency_ms"])


# Signed frames, implausible frames, streams -----------------------------------------------------------------------

KEY = b"k" * 32


def _stand(g1) -> np.ndarray:
    qpos = np.zeros(36, np.float32)
    qpos[2], qpos[3], qpos[7:] = 0.79, 1.0, g1.default_joint_pos
    return qpos


def test_signed_frames_pass_and_unsigned_or_wrongly_signed_ones_are_counted_apart():
    qpos = np.zeros(36, np.float32)
    signed = encode_frame(Frame(KIND_G1, 1, 2, qpos), key=KEY)
    assert len(signed) == 200 and decode_frame(signed, key=KEY).sequence == 1
    assert decode_frame(signed).sequence == 1  # without a key, tags are not checked
    with pytest.raises(MalformedPacket, match="unsigned") as unsigned:
        decode_frame(encode_frame(Frame(KIND_G1, 1, 2, qpos)), key=KEY)
    with pytest.raises(MalformedPacket, match="does not match") as forged:
        decode_frame(encode_frame(Frame(KIND_G1, 1, 2, qpos), key=b"x" * 32), key=KEY)
    tampered = bytearray(signed)
    tampered[30] ^= 1  # fixed CRC and all: only the tag tells
    tampered[164:168] = struct.pack("<I", zlib.crc32(bytes(tampered[:164])))
    with pytest.raises(MalformedPacket, match="does not match"):
        decode_frame(bytes(tampered), key=KEY)
    assert (unsigned.value.counter, forged.value.counter) == ("unsigned", "bad_signature")


def test_absurd_frames_are_named(g1):
    good = _stand(g1)
    assert implausible(good, g1) is None
    cases = {
        "root quaternion of norm 0": lambda q: q.__setitem__(slice(3, 7), 0.0),
        "left_hip_pitch_joint at 1e+06 rad": lambda q: q.__setitem__(slice(7, 36), 1e6),
        "beyond 100 m of the origin": lambda q: q.__setitem__(0, 1e6),
        "root height 5 m": lambda q: q.__setitem__(2, 5.0),
    }
    for message, corrupt in cases.items():
        q = good.copy()
        corrupt(q)
        assert message in implausible(q, g1)


def _poll_until(receiver, done, seconds=3.0):
    deadline = time.perf_counter() + seconds
    while not done() and time.perf_counter() < deadline:
        receiver.poll()
        time.sleep(0.002)


def test_a_keyed_receiver_drops_and_counts_every_bad_datagram(g1):
    """Over loopback: one good signed frame gets in; unsigned, wrongly signed, human-joint, absurd (zero quaternion,
    joints of 1e6) and garbage datagrams are each counted under their name, with the reason kept."""
    buffer = JitterBuffer(0.0, check=lambda f: implausible(f.values, g1))
    receiver = UdpReceiver("127.0.0.1", 0, buffer, key=KEY)
    good = _stand(g1)
    absurd = good.copy()
    absurd[3:7], absurd[7:] = 0.0, 1e6
    datagrams = [
        encode_frame(Frame(KIND_G1, 0, 0, good), KEY),
        encode_frame(Frame(KIND_G1, 1, 20_000, good)),
        encode_frame(Frame(KIND_G1, 2, 40_000, good), b"y" * 32),
        encode_frame(Frame(KIND_HUMAN, 3, 60_000, np.ones((22, 3))), KEY),
        encode_frame(Frame(KIND_G1, 4, 80_000, absurd), KEY),
        b"garbage",
    ]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in datagrams:
                s.sendto(data, receiver.address)
        c = buffer.counters
        _poll_until(receiver, lambda: c.received + c.unsigned + c.bad_signature + c.malformed + c.implausible == 6)
    finally:
        receiver.close()
    assert (c.received, c.unsigned, c.bad_signature, c.malformed, c.implausible) == (1, 1, 1, 2, 1), c
    assert "root quaternion of norm 0" in buffer.refusals["implausible"]
    assert buffer.pop(1e9)[0].sequence == 0


def _g1_frame(seq: int, stamp_us: int, value: float = 0.0) -> Frame:
    return Frame(KIND_G1, seq % 2**32, stamp_us, np.full(36, value, np.float32))


def _play(buffer: JitterBuffer, frames: list[Frame], t0: float = 0.0) -> list[float]:
    """Push each frame as it is due (20 ms apart from t0) and pop at once: the values played."""
    played = []
    for k, f in enumerate(frames):
        buffer.push(f, t0 + 0.02 * k)
        item = buffer.pop(t0 + 0.02 * k)
        if item is not None:
            played.append(float(item[0].values[0]))
    return played


def test_a_sender_that_restarts_its_sequence_is_followed_at_once():
    buffer = JitterBuffer(0.0)
    old = [_g1_frame(s, 20_000 * s, 1.0) for s in range(100)]
    _play(buffer, old)
    # Restarted at 0 with its clock running on: behind in sequence, ahead in time.
    new = [_g1_frame(s, 20_000 * (100 + s), 2.0) for s in range(5)]
    assert _play(buffer, new, t0=2.0) == [2.0] * 5
    assert (buffer.counters.restarts, buffer.counters.late, buffer.counters.duplicate) == (1, 0, 0)


def test_a_sender_that_restarts_its_sequence_and_clock_is_followed_after_a_short_run():
    buffer = JitterBuffer(0.0)
    _play(buffer, [_g1_frame(s, 20_000 * s, 1.0) for s in range(100)])
    played = _play(buffer, [_g1_frame(s, 20_000 * s, 2.0) for s in range(20)], t0=2.0)
    assert played == [2.0] * (20 - RESTART_RUN + 1) and buffer.counters.restarts == 1


def test_a_jump_of_2_to_the_31_is_a_new_stream_not_two_billion_lost_frames():
    buffer = JitterBuffer(0.0)
    _play(buffer, [_g1_frame(s, 20_000 * s) for s in range(10)])
    assert _play(buffer, [_g1_frame(10 + 2**31, 200_000, 3.0)], t0=0.2) == [3.0]
    assert (buffer.counters.lost, buffer.counters.restarts) == (0, 1)


def test_lost_counts_frames_missing_within_the_window_once():
    buffer = JitterBuffer(0.0)
    frames = [_g1_frame(s, 20_000 * s) for s in range(3 * WINDOW) if s not in (5, 6)]
    _play(buffer, frames)
    assert (buffer.counters.lost, buffer.counters.received, buffer.counters.restarts) == (2, 3 * WINDOW - 2, 0)
    _play(buffer, [_g1_frame(3 * WINDOW + 10 * WINDOW, 60_000 * WINDOW)], t0=100.0)  # far ahead: a new stream
    assert (buffer.counters.lost, buffer.counters.restarts) == (2, 1)


def test_a_burst_is_accounted_for_frame_by_frame():
    """300 datagrams at once (a sender catching up), then one more: every sequence number is received or lost, and
    all but the one played are counted superseded."""
    buffer = JitterBuffer(0.0)
    receiver = UdpReceiver("127.0.0.1", 0, buffer)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq in range(300):
                s.sendto(encode_frame(_g1_frame(seq, 1_000 * seq)), receiver.address)
            _poll_until(receiver, lambda: buffer.counters.received >= 300, seconds=1.0)
            s.sendto(encode_frame(_g1_frame(300, 300_000)), receiver.address)
            _poll_until(receiver, lambda: buffer._newest == 300)
    finally:
        receiver.close()
    c = buffer.counters
    assert c.received + c.lost == 301, c
    assert buffer.pop(1e9) is not None
    assert (c.played, c.superseded) == (1, c.received - 1), c


# Settings ---------------------------------------------------------------------------------------------------------


def test_teleop_listens_on_loopback_unless_told_otherwise(tmp_path):
    assert parse_source("udp://:9870") == ("udp", "127.0.0.1", 9870)
    assert parse_source("udp://localhost:9870") == ("udp", "127.0.0.1", 9870)
    with pytest.raises(ConfigError, match="every interface.*--allow-network.*udp://127.0.0.1:9870"):
        parse_source("udp://0.0.0.0:9870")
    assert parse_source("udp://0.0.0.0:9870", allow_network=True) == ("udp", "0.0.0.0", 9870)
    with warnings.catch_warnings():  # the warning comes before the socket is bound: as an error, nothing binds
        warnings.simplefilter("error", TeleopWarning)
        with pytest.raises(TeleopWarning, match="reachable from the network.*no key is set"):
            run_teleop("udp://0.0.0.0:9870", tmp_path / "missing.onnx", allow_network=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(source="udp://127.0.0.1:70000"), "port from 1 to 65535"),
        (dict(source="udp://127.0.0.1"), "udp://HOST:PORT"),
        (dict(source="udp://no-such-host.invalid:9870"), "not an IPv4 address"),
        (dict(source="nothing.bvh"), "no such file"),
        (dict(seconds=float("inf")), "Fix: --seconds 10"),
        (dict(seconds=-1.0), "Fix: --seconds 10"),
        (dict(delay_s=5.0), "Fix: --delay-ms 60"),
        (dict(fps=30.0), "Fix: leave --fps out"),
    ],
)
def test_teleop_settings_are_checked_with_their_fix(kwargs, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_teleop(**{"source": "udp://127.0.0.1:9870", "policy": tmp_path / "p.onnx", **kwargs})


def test_a_port_in_use_is_refused_with_the_fix():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        with pytest.raises(ConfigError, match="cannot listen there.*choose a free port"):
            UdpReceiver("127.0.0.1", holder.getsockname()[1], JitterBuffer())


def test_the_key_comes_from_the_environment_or_a_file_never_the_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv("HGPT_TELEOP_KEY", raising=False)
    assert load_key() is None
    monkeypatch.setenv("HGPT_TELEOP_KEY", "e" * 32)
    assert load_key() == b"e" * 32
    path = tmp_path / "key"
    path.write_text("f" * 32 + "\n")
    with pytest.raises(ConfigError, match="unset one"):
        load_key(path)
    monkeypatch.delenv("HGPT_TELEOP_KEY")
    path.chmod(0o644)
    with pytest.warns(TeleopWarning, match="chmod 600"):
        assert load_key(path) == b"f" * 32
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(ConfigError, match="at least 16"):
        load_key(path)


def test_fps_is_the_rate_of_a_source_file_that_stores_none(g1, tmp_path):
    from mocap_support import SMPL24_REST

    from humanoid_gpt.governance.mocap import MocapFormatError

    np.save(tmp_path / "raw.npy", SMPL24_REST[None] + np.linspace(0, 0.3, 12)[:, None, None] * [0, 0, 1])
    stamps = [t for t, _, _ in mocap_frames(tmp_path / "raw.npy", g1, fps=25.0)]
    assert stamps[:3] == pytest.approx([0.0, 0.04, 0.08])
    with pytest.raises(MocapFormatError, match="pass fps="):
        next(mocap_frames(tmp_path / "raw.npy", g1))


# The loop's safety --------------------------------------------------------------------------------------------------


def test_a_non_finite_action_sends_the_damping_command(g1, standing_policy, monkeypatch):
    robot = SimulatedG1(g1, standing_policy)
    ref = _stand(g1).astype(np.float64)
    robot.reset(ref)
    times = StageTimes()
    robot.tick(ref, times)
    assert robot.last_cmd.motor_cmd[0].kp > 0 and robot.damped == 0
    monkeypatch.setattr(robot.stream, "step", lambda obs: np.full((1, 29), np.nan, np.float32))
    robot.tick(ref, times)
    cmd = robot.last_cmd
    assert (cmd.motor_cmd[0].kp, cmd.motor_cmd[0].kd, robot.damped, robot.refused_run) == (0.0, 8.0, 1, 1)
    assert robot.model.actuator_gainprm[0, 0] == 0.0 and robot.model.actuator_biasprm[0, 2] == -8.0
    assert "not finite" in robot.last_refusal and not robot.action.isnan().any()


def _send_clip(port: int, seconds: float, key: bytes | None = None, unsigned_every: int = 0) -> threading.Thread:
    from humanoid_gpt.deploy.check_dynamic import standing_clip
    from humanoid_gpt.robot import load_g1

    clip = standing_clip(load_g1(), seconds)

    def send():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.perf_counter()
            for i, qpos in enumerate(clip.qpos()):
                time.sleep(max(0.0, start + i * 0.02 - time.perf_counter()))
                signed = key is not None and not (unsigned_every and i % unsigned_every == 0)
                s.sendto(
                    encode_frame(Frame(KIND_G1, i, i * 20_000, qpos), key if signed else None), ("127.0.0.1", port)
                )

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def test_a_policy_refusing_every_action_stops_the_session_cleanly_in_damping(g1, standing_policy, monkeypatch):
    from humanoid_gpt.deploy.runtime import OnnxStream

    monkeypatch.setattr(OnnxStream, "step", lambda self, obs: np.full((1, 29), np.inf, np.float32))
    port = _free_port()
    sender = _send_clip(port, 2.0)
    result = run_teleop(f"udp://127.0.0.1:{port}", standing_policy, g1, seconds=5.0, delay_s=0.02)
    sender.join()
    assert result["damped"] == MAX_REFUSED and "refused" in result["stopped"], result


def test_an_interrupted_loop_leaves_the_robot_damped(g1, standing_policy, monkeypatch):
    damped = []
    monkeypatch.setattr(SimulatedG1, "damp", lambda self, reason: damped.append(reason))
    calls = iter(range(1000))

    def tick(self, ref, times):
        if next(calls) == 10:
            raise KeyboardInterrupt

    monkeypatch.setattr(SimulatedG1, "tick", tick)
    port = _free_port()
    sender = _send_clip(port, 1.0)
    with pytest.raises(KeyboardInterrupt):
        run_teleop(f"udp://127.0.0.1:{port}", standing_policy, g1, seconds=5.0, delay_s=0.02)
    sender.join()
    assert damped == ["the loop ended on an error or an interrupt"]


def test_hgpt_teleop_shows_counters_live_and_in_its_json(standing_policy, tmp_path, monkeypatch, capsys):
    from humanoid_gpt.cli import main

    monkeypatch.setenv("HGPT_TELEOP_KEY", KEY.decode())
    port = _free_port()
    sender = _send_clip(port, 2.5, key=KEY, unsigned_every=10)
    argv = ["teleop", "--source", f"udp://127.0.0.1:{port}", "--policy", str(standing_policy), "--seconds", "1.5"]
    assert main([*argv, "--json", str(tmp_path / "t.json")]) == 0
    sender.join()
    err = capsys.readouterr().err
    assert "t 1 s: received" in err and "unsigned" in err, err
    result = json.loads((tmp_path / "t.json").read_text())
    c = result["counters"]
    assert result["signed"] and c["unsigned"] >= 5 and c["bad_signature"] == 0 and c["played"] > 40, c
    assert {"late", "duplicate", "malformed", "superseded", "lost", "restarts", "implausible"} <= set(c)
