"""Resumable pipeline stages: each stage's artefact is a folder keyed by the hash of its inputs and config.

A stage builds in ``<root>/<name>.work/``, which survives an interruption (a training stage keeps its checkpoints
there and resumes from them), and is published as ``<root>/<name>/`` with a ``stage.json`` marker in one rename once it
finishes. A rerun skips a stage whose marker carries the same key; a stage whose inputs or config changed is rebuilt,
and the runner says which keys changed. A work folder left by another key is discarded, never mixed in.
"""

from __future__ import annotations

import errno
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import publish_folder, write_text_atomic
from humanoid_gpt.runs import config_hash

MARKER = "stage.json"
SCHEMA_VERSION = 1


@dataclass
class Stage:
    """``build(work_dir)`` makes the artefact inside ``work_dir`` (which may hold a previous, interrupted attempt
    with the same key) and returns a JSON-able summary. ``key``: everything the artefact depends on."""

    name: str
    key: dict
    build: Callable[[Path], dict]


@dataclass
class StageResult:
    name: str
    folder: Path
    summary: dict
    skipped: bool
    reason: str
    seconds: float = 0.0
    key_hash: str = field(default="")


def _changed(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def run_stage(root: Path, stage: Stage, log: Callable[[str], None] = print) -> StageResult:
    """Run ``stage`` under ``root`` unless its artefact with the same key exists; see the module docstring."""
    key = json.loads(json.dumps(stage.key, sort_keys=True, default=str))
    digest = config_hash(key)
    done, work = root / stage.name, root / f"{stage.name}.work"
    marker = read_marker(done)
    if marker is not None and marker.get("key_hash") == digest:
        return StageResult(stage.name, done, marker.get("summary", {}), True, "done, inputs unchanged", 0.0, digest)
    reason = "first run"
    if marker is not None:
        reason = "inputs changed: " + ", ".join(_changed(marker.get("key", {}), key)[:8])
    work_key = read_marker(work)
    if work.exists() and (work_key is None or work_key.get("key_hash") != digest):
        shutil.rmtree(work)  # another key's attempt: its files would poison this one
    if work.exists():
        reason += "; resuming an interrupted attempt"
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(work / MARKER, json.dumps({"key_hash": digest, "key": key, "finished": False}, indent=1))
    log(f"[{stage.name}] {reason}")
    started = time.time()
    try:
        summary = stage.build(work)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise HGPTError(
            f"[{stage.name}] the disk is full ({e.filename or work}): the stage is not marked done and its finished "
            f"parts stay in {work}. Fix: free space (or move HGPT_OUTPUT_ROOT) and rerun the same command"
        ) from e
    seconds = time.time() - started
    record = {
        "schema_version": SCHEMA_VERSION,
        "name": stage.name,
        "key_hash": digest,
        "key": key,
        "summary": summary,
        "finished": True,
        "seconds": round(seconds, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_text_atomic(work / MARKER, json.dumps(record, indent=1, default=str))
    publish_folder(work, done)
    return StageResult(stage.name, done, summary, False, reason, seconds, digest)
