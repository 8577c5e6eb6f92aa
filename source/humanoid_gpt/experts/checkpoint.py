"""Expert checkpoints: rsl_rl's state (weights, optimizer, observation normalizers, iteration) plus what it takes to
resume exactly and to refuse a wrong file: RNG states, the task, observation sizes, the robot and a config hash
(the shared plumbing lives in :mod:`humanoid_gpt.runs`)."""

from __future__ import annotations

from pathlib import Path

from humanoid_gpt.runs import CheckpointError, read_payload

FORMAT = "humanoid_gpt.expert"
SCHEMA_VERSION = 2
"""2: RNG and simulator states stored as tensors, numbers and lists (1 held numpy arrays: refused, see runs)."""
PREFIX = "model"
"""Expert checkpoints are ``model_<iteration>.pt``, as rsl_rl names them."""


def load_checkpoint(path: str | Path, expect: dict | None = None, payload: dict | None = None) -> dict:
    """Load and check an expert checkpoint. ``expect`` maps meta keys (task, obs_dims, robot, config_hash, ...) to the
    values the caller needs; any difference raises :class:`CheckpointError` naming the file and the mismatch.
    ``payload``: the file's content, read by an earlier call, checked again without reading the file."""
    if payload is None:
        payload, meta = read_payload(path, FORMAT, SCHEMA_VERSION, lambda p: (p.get("infos") or {}).get("hgpt"))
    else:
        meta = payload["infos"]["hgpt"]
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise CheckpointError(f"{path}: {key} is {have!r} but this run needs {want!r}")
    return payload
