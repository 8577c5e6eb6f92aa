"""Student checkpoints: the model with its config, and (for training runs) everything an exact resume needs.

Self-describing: format and schema version, the student config (kind, sizes, H), the robot hash, the observation
layout and joint order, and the task config. Loading checks them and names the file and the mismatch.
"""

from __future__ import annotations

from pathlib import Path

from humanoid_gpt.mdp.observations import STUDENT_LAYOUT
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.runs import CheckpointError, read_payload, robot_hash, save_checkpoint
from humanoid_gpt.students import Student, StudentConfig, build_student

FORMAT = "humanoid_gpt.student"
SCHEMA_VERSION = 2
"""2: a training checkpoint's RNG and env states as tensors, numbers and lists (1 held numpy arrays; bare
students of schema 1 hold none and still load)."""
PREFIX = "student"
"""Student checkpoints of a training run are ``student_<iteration>.pt``."""


def student_meta(cfg: StudentConfig, g1: G1, tracking: dict) -> dict:
    """What identifies a student: its config, robot, observation layout, joint order, task config and the actuation
    it acts under (``g1.actuation``: a foreign teacher's gains and default pose; None: the project's own)."""
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "student": cfg.to_dict(),
        "robot": robot_hash(g1.xml_path),
        "joint_names": list(g1.joint_names),
        "obs_layout": [list(p) for p in STUDENT_LAYOUT],
        "tracking": tracking,
        "actuation": None if g1.actuation is None else g1.actuation.to_dict(),
    }


def read_student_checkpoint(path: str | Path) -> dict:
    return read_payload(path, FORMAT, SCHEMA_VERSION, lambda p: p.get("meta"))[0]


def load_student(path: str | Path, g1: G1 | None = None, context: int | None = None) -> tuple[Student, dict]:
    """The student of a checkpoint, in eval mode, and the checkpoint's metadata. With ``g1`` the robot must match;
    with ``context`` the checkpoint's H must equal it."""
    payload = read_student_checkpoint(path)
    meta = payload["meta"]
    cfg = StudentConfig.from_dict(meta["student"])
    if context is not None and cfg.context != context:
        raise CheckpointError(f"{path}: the student was trained with context H={cfg.context}, not H={context}")
    if g1 is not None and meta["robot"] != robot_hash(g1.xml_path):
        raise CheckpointError(f"{path}: made for robot {meta['robot']}, not {g1.xml_path} ({robot_hash(g1.xml_path)})")
    if g1 is not None and meta["joint_names"] != list(g1.joint_names):
        raise CheckpointError(f"{path}: its joint order differs from {g1.xml_path}'s")
    if [tuple(p) for p in meta["obs_layout"]] != list(STUDENT_LAYOUT):
        raise CheckpointError(f"{path}: its observation layout differs from this code's STUDENT_LAYOUT")
    model = build_student(cfg)
    model.load_state_dict(payload["model"])
    return model.eval(), meta


def save_student(path: str | Path, model: Student, meta: dict) -> Path:
    """A bare student checkpoint (weights and metadata, no training state): what :func:`load_student` reads, e.g.
    the untrained student a report compares against."""
    save_checkpoint(path, {"meta": meta, "model": model.state_dict()})
    return Path(path)
