"""Policy actions as the Unitree SDK2 G1 low-level command (``unitree_hg`` ``LowCmd_``, published on ``rt/lowcmd``):
per motor mode, q, dq, tau, kp, kd; ``mode_pr``, ``mode_machine``; and the CRC32 the robot checks, computed the way
Unitree's SDK does (docs/architecture.md, stage 5 and "The G1 facts the code rests on").

This module builds and packs messages only; it never talks to a robot. The SDK's G1 motor indices 0..28 are the G1
joint order of ``humanoid_gpt.robot`` (left leg, right leg, waist, left arm, right arm); slots 29..34 of the message
are unused on the 29-DoF G1 and sent disabled.

Wire layout (little-endian, 4-byte aligned, 1004 bytes; the SDK's pack format ``<2B2x`` + ``B3x5fI`` x 35 + ``5I``):
``mode_pr`` u8, ``mode_machine`` u8, 2 pad; 35 x (``mode`` u8, 3 pad, ``q``, ``dq``, ``tau``, ``kp``, ``kd`` f32,
``reserve`` u32); ``reserve`` 4 x u32; ``crc`` u32. The CRC runs over the first 250 32-bit words (everything but
itself), each word fed most significant bit first into CRC-32 with polynomial 0x04C11DB7, initial value 0xFFFFFFFF,
no reflection and no final xor (the SDK's ``crc32_core``; that is CRC-32/MPEG-2 of each word's big-endian bytes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from humanoid_gpt.robot.g1 import G1

NUM_MOTOR_SLOTS = 35
LOW_CMD_FORMAT = "<2B2x" + "B3x5fI" * NUM_MOTOR_SLOTS + "5I"
LOW_CMD_SIZE = struct.calcsize(LOW_CMD_FORMAT)  # 1004
MODE_PR = 0
"""Ankles commanded as pitch / roll joints (mode_pr 1 is the motors' A / B): the policy's joints are pitch and roll."""
MOTOR_ENABLE = 1
_POLY = 0x04C11DB7


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _table()


def crc32_core(words: np.ndarray | list[int]) -> int:
    """Unitree's ``crc32_core`` over 32-bit words (table-driven: ~0.2 ms for a command, fine at 500 Hz)."""
    crc = 0xFFFFFFFF
    for byte in np.asarray(words, dtype="<u4").astype(">u4").tobytes():  # each word most significant byte first
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


@dataclass
class MotorCmd:
    mode: int = 0
    q: float = 0.0
    dq: float = 0.0
    tau: float = 0.0
    kp: float = 0.0
    kd: float = 0.0
    reserve: int = 0


@dataclass
class LowCmd:
    """The fields of ``unitree_hg::msg::dds_::LowCmd_``; copy them into the SDK's message to publish it."""

    mode_pr: int = MODE_PR
    mode_machine: int = 0
    motor_cmd: list[MotorCmd] = field(default_factory=lambda: [MotorCmd() for _ in range(NUM_MOTOR_SLOTS)])
    reserve: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    crc: int = 0

    def pack(self) -> bytes:
        """The 1004 bytes the CRC is computed over (with the current ``crc`` in the last word)."""
        values: list = [self.mode_pr, self.mode_machine]
        for m in self.motor_cmd:
            values += [m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve]
        return struct.pack(LOW_CMD_FORMAT, *values, *self.reserve, self.crc)

    def compute_crc(self) -> int:
        words = np.frombuffer(self.pack(), dtype="<u4")
        return crc32_core(words[:-1])

    def seal(self) -> LowCmd:
        """Set ``crc`` (after the last change to any field); returns self."""
        self.crc = self.compute_crc()
        return self


def low_cmd(
    g1: G1,
    action: np.ndarray,
    mode_machine: int,
    reference_joint_pos: np.ndarray | None = None,
    clip_to_limits: bool = True,
) -> LowCmd:
    """The low-level command for one policy action (29,) in the G1 order: q = q_default + a * action_scale (or
    q_ref + a * action_scale for policies acting relative to the reference), dq = 0, tau = 0, the policy's kp / kd,
    motors enabled. ``mode_machine`` must be copied from the robot's ``rt/lowstate`` (it names the G1 variant: the
    MJCF the policy was trained on must be the same variant). q is clipped to the joint limits unless told not to."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (g1.num_joints,):
        raise ValueError(f"one action of {g1.num_joints} values expected, got shape {action.shape}")
    if not np.isfinite(action).all():
        raise ValueError("the action is not finite: send a damping command instead")
    base = g1.default_joint_pos if reference_joint_pos is None else np.asarray(reference_joint_pos, dtype=np.float64)
    q = base + action * g1.action_scale
    if clip_to_limits:
        q = np.clip(q, g1.joint_limits[:, 0], g1.joint_limits[:, 1])
    cmd = LowCmd(mode_pr=MODE_PR, mode_machine=int(mode_machine))
    for i in range(g1.num_joints):
        cmd.motor_cmd[i] = MotorCmd(MOTOR_ENABLE, float(q[i]), 0.0, 0.0, float(g1.kp[i]), float(g1.kd[i]))
    return cmd.seal()


def damping_cmd(g1: G1, mode_machine: int, kd: float = 8.0) -> LowCmd:
    """Motors enabled with zero stiffness and damping ``kd``: what to send when the policy stops (a safe fall)."""
    cmd = LowCmd(mode_pr=MODE_PR, mode_machine=int(mode_machine))
    for i in range(g1.num_joints):
        cmd.motor_cmd[i] = MotorCmd(MOTOR_ENABLE, 0.0, 0.0, 0.0, 0.0, kd)
    return cmd.seal()
