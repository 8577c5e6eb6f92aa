"""Expert checkpoints: rsl_rl's state (weights, optimizer, observation normalizers, iteration) plus what it takes to
resume exactly and to refuse a wrong file: RNG states, the task, observation sizes, the robot and a config hash."""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write

FORMAT = "humanoid_gpt.expert"
SCHEMA_VERSION = 1


class CheckpointError(HGPTError):
    """A checkpoint that is missing, unreadable, or made for another task, robot or config."""


def config_hash(*configs: dict) -> str:
    """Stable hash of JSON-able configs (what makes two runs the same experiment)."""
    text = json.dumps(configs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def robot_hash(xml_path: Path) -> str:
    return hashlib.sha256(Path(xml_path).read_bytes()).hexdigest()[:16]


def rng_state(generator: torch.Generator | None = None) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "env": generator.get_state() if generator is not None else None,
    }


def restore_rng(state: dict, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if generator is not None and state.get("env") is not None:
        generator.set_state(state["env"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically: a crash mid-write leaves the previous checkpoint, never a truncated one."""
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def read_payload(path: str | Path, fmt: str, schema_version: int, meta_of) -> tuple[dict, dict]:
    """Load a checkpoint file and its metadata (``meta_of(payload)``); refuses a missing, unreadable or foreign
    file, or one of a newer schema, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e}); it is corrupt or truncated") from e
    meta = meta_of(payload) if isinstance(payload, dict) else None
    if not meta or meta.get("format") != fmt:
        raise CheckpointError(f"{path}: not a {fmt.replace('.', ' ')} checkpoint (no '{fmt}' metadata)")
    if meta.get("schema_version", 0) > schema_version:
        raise CheckpointError(f"{path}: schema version {meta['schema_version']} is newer than this code")
    return payload, meta


def load_checkpoint(path: str | Path, expect: dict | None = None) -> dict:
    """Load and check an expert checkpoint. ``expect`` maps meta keys (task, obs_dims, robot, config_hash, ...) to the
    values the caller needs; any difference raises :class:`CheckpointError` naming the file and the mismatch."""
    payload, meta = read_payload(path, FORMAT, SCHEMA_VERSION, lambda p: (p.get("infos") or {}).get("hgpt"))
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise CheckpointError(f"{path}: {key} is {have!r} but this run needs {want!r}")
    return payload


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of the highest iteration in ``run_dir`` (``model_<it>.pt``)."""
    found = sorted(run_dir.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None
