"""Teleoperation: the UDP frame protocol and its malformed packets, the jitter buffer's counters, the Unitree G1
low-level command (field order, values, CRC as Unitree computes it), and the loop end to end over UDP and from BVH."""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest
from students_support import export_student, standing_student

from humanoid_gpt.deploy.teleop import (
    KIND_G1,
    KIND_HUMAN,
    Frame,
    JitterBuffer,
    MalformedPacket,
    decode_frame,
    encode_frame,
    run_teleop,
)
from humanoid_gpt.deploy.unitree import LOW_CMD_FORMAT, LOW_CMD_SIZE, LowCmd, crc32_core, damping_cmd, low_cmd

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
    from humanoid_gpt.deploy.check import standing_clip

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

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    result = run_teleop(f"udp://127.0.0.1:{port}", standing_policy, g1, seconds=2.0, delay_s=0.06)
    sender.join()
    c = result["counters"]
    assert (c["malformed"], c["duplicate"], c["lost"]) == (2, 1, 1), c
    assert result["falls"] == 0 and c["played"] > 50
    assert {"receive", "buffer", "observe", "policy", "command"} <= set(result["latency_ms"])
    assert result["latency_ms"]["policy"]["p50_ms"] < 20.0


def test_teleop_from_a_bvh_file_runs_every_frame_through_the_retargeter(g1, standing_policy, lafan1_bvh_dir):
    result = run_teleop(str(lafan1_bvh_dir / "walk.bvh"), standing_policy, g1, seconds=1.0)
    c = result["counters"]
    assert c["received"] >= 25 and c["lost"] == c["late"] == c["malformed"] == 0
    assert result["latency_ms"]["retarget"]["n"] >= 25
    assert {"buffer", "observe", "policy", "command", "physics"} <= set(result["latency_ms"])
