"""Run plumbing every training stage shares: run folders, seeding, RNG state, atomic checkpoints and resume.

Experts (PPO) and students (DAgger) both write self-describing checkpoints through :func:`save_checkpoint` and read
them back through :func:`read_payload`; a run folder holds ``config.json`` and ``<prefix>_<iteration>.pt`` files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import time
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write, sha256_file


class CheckpointError(HGPTError):
    """A checkpoint that is missing, unreadable, or made for another task, robot or config."""


class CheckpointRefused(CheckpointError):
    """A file refused unread because loading it would build objects besides tensors, numbers and strings: callers
    that try another reader on a file that is not a checkpoint must not try one on this."""


# How torch's weights-only unpickler names the object a file asks for and it does not build.
_UNSAFE_GLOBAL = re.compile(r"unsupported (?:global: )?GLOBAL (\S+)", re.IGNORECASE)


def config_hash(*configs: dict) -> str:
    """Stable hash of JSON-able configs (what makes two runs the same experiment)."""
    text = json.dumps(configs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def robot_hash(xml_path: Path) -> str:
    return sha256_file(xml_path)[:16]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(generator: torch.Generator | None = None) -> dict:
    """The RNG states of torch, numpy, python and the env's ``generator``, as tensors, numbers and tuples: what a
    weights-only checkpoint load builds (numpy's own state holds an array, stored as a list)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
        "env": generator.get_state() if generator is not None else None,
    }


def restore_rng(state: dict, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if generator is not None and state.get("env") is not None:
        generator.set_state(state["env"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically: a crash mid-write leaves the previous checkpoint, never a truncated one."""
    with atomic_write(path) as f:
        torch.save(payload, f)
    return Path(path)


def read_payload(path: str | Path, fmt: str, schema_version: int, meta_of: Callable[[dict], dict | None]):
    """Load a checkpoint file and its metadata (``meta_of(payload)``); refuses a missing, unreadable or foreign
    file, or one of a newer schema, naming the file. Returns ``(payload, meta)``.

    The load is weights-only: it builds tensors, numbers, strings and containers and nothing else, so a file cannot
    run code while it is read. A file that needs anything else (checkpoints of the layout before schema 2, which
    stored numpy arrays; files made to run code) is refused unread."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        wanted = _UNSAFE_GLOBAL.search(str(e))
        if wanted is None:  # garbage or another pickle dialect: nothing was built from it
            raise _unreadable(path, e) from e
        asks = f"it asks to build {wanted[1]}"
        if wanted[1].startswith("numpy"):
            asks = "it holds numpy arrays, as expert and student checkpoints of the layout before schema 2 do"
        raise CheckpointRefused(
            f"{path}: refused, not loaded: {asks}; checkpoints are read weights-only (tensors, numbers, strings), "
            "so that no file can run code while it is read. Fix: retrain it with this version (its run's "
            "config.json has the settings); or, only if you made the file yourself and trust it, load it in your own "
            "Python (torch.load(path, weights_only=False)) and save it again as tensors, numbers and strings"
        ) from None
    except Exception as e:  # torch.load fails in many ways (zip, EOF, ...): all mean "not a checkpoint"
        raise _unreadable(path, e) from e
    meta = meta_of(payload) if isinstance(payload, dict) else None
    if not meta or meta.get("format") != fmt:
        raise CheckpointError(f"{path}: not a {fmt.replace('.', ' ')} checkpoint (no '{fmt}' metadata)")
    if meta.get("schema_version", 0) > schema_version:
        raise CheckpointError(f"{path}: schema version {meta['schema_version']} is newer than this code")
    return payload, meta


def _unreadable(path: Path, e: Exception) -> CheckpointError:
    first = str(e).split(". ")[0]
    return CheckpointError(
        f"{path}: not a readable checkpoint ({type(e).__name__}: {first}); it is corrupt or truncated, or not a "
        "checkpoint at all"
    )


def latest_checkpoint(run_dir: Path, prefix: str = "model") -> Path | None:
    """The checkpoint of the highest iteration in ``run_dir`` (``<prefix>_<iteration>.pt``); files whose suffix is
    not an iteration number (``model_best.pt``) are not part of the sequence."""
    numbered = [p for p in run_dir.glob(f"{prefix}_*.pt") if p.stem.removeprefix(f"{prefix}_").isdigit()]
    return max(numbered, key=lambda p: int(p.stem.removeprefix(f"{prefix}_")), default=None)


def resume_checkpoint(resume: Path, prefix: str) -> Path:
    """The checkpoint a ``--resume`` value names: a run folder (its latest ``<prefix>_<it>.pt``) or a ``.pt`` file."""
    if not resume.exists():
        raise CheckpointError(f"--resume {resume} does not exist; pass a run folder or one of its {prefix}_<it>.pt")
    if resume.is_file() and resume.suffix != ".pt":
        raise CheckpointError(
            f"--resume {resume} is not a checkpoint; pass the run folder ({resume.parent}) or a {prefix}_<it>.pt in it"
        )
    found = latest_checkpoint(resume, prefix) if resume.is_dir() else resume
    if found is None:
        raise CheckpointError(f"{resume} holds no checkpoint ({prefix}_<iteration>.pt) to resume from")
    if resume.is_dir() and not _complete(found):
        # Writes are atomic, so this is damage from outside (a copy cut short, a full disk): name the valid one.
        older = [p for p in resume.glob(f"{prefix}_*.pt") if p.stem.removeprefix(f"{prefix}_").isdigit() and p != found]
        valid = max((p for p in older if _complete(p)), key=lambda p: int(p.stem.split("_")[-1]), default=None)
        offer = f"; the latest complete one is {valid.name}: resume with --resume {valid}" if valid else ""
        raise CheckpointError(f"{found} is corrupt or truncated{offer}")
    return found


def _complete(path: Path) -> bool:
    """Whether a checkpoint file is a whole archive (torch.save writes zip files; a cut one fails its checks)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def checkpoint_to_continue(resume: Path | None, folder: Path, prefix: str) -> Path | None:
    """The checkpoint a run continues from: ``--resume``'s, else the latest one an earlier attempt of the same command
    left in the run's own folder (rerunning an interrupted command continues it rather than restarting at iteration
    1 beside the old run's checkpoints). None: a new run."""
    if resume is not None:
        return resume_checkpoint(resume, prefix)
    return resume_checkpoint(folder, prefix) if latest_checkpoint(folder, prefix) is not None else None


def check_same_run(folder: Path, asked: dict[str, dict], may_change: Collection[str], flags: Collection[str]) -> None:
    """Refuse, before any step, to write into ``folder`` when its ``config.json`` records a run with other settings:
    two experiments never share a folder. ``asked`` maps config.json's sections to this command's values; keys of
    the ``flags`` sections are command-line options and are named as such, the others as ``section.key``."""
    saved_file = folder / "config.json"
    if not saved_file.is_file():
        return
    try:
        saved = json.loads(saved_file.read_text())
        recorded = {name: dict(saved[name]) for name in asked}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{saved_file}: not a run config ({type(e).__name__}: {e}), so {folder} cannot be continued. Fix: pass "
            "another --run-name (or --log-root) to start the run elsewhere"
        ) from e
    changed = []
    for name, values in asked.items():
        values = json.loads(json.dumps(values, default=str))  # as config.json stores them
        old = recorded[name]
        for key in sorted(old.keys() | values.keys()):
            if key not in may_change and old.get(key) != values.get(key):
                what = f"--{key.replace('_', '-')}" if name in flags else f"{name}.{key}"
                changed.append(f"{what} differs ({old.get(key)!r} -> {values.get(key)!r})")
    if changed:
        raise CheckpointError(
            f"{folder} holds a run with other settings than this command's ({'; '.join(changed)}; {saved_file} "
            "records the run's). Fix: pass the run's own options to continue it (only the budget, checkpointing and "
            "threads may change), or another --run-name to start a new run"
        )


def run_dir(resume: Path | None, log_root: Path | None, stage: str, group: str, run_name: str | None) -> Path:
    """A run's folder: the resumed run's own, else ``<log_root or $HGPT_OUTPUT_ROOT/stage>/<group>/<run name>``
    (the start time when unnamed)."""
    if resume is not None:
        return resume if resume.is_dir() else resume.parent
    root = log_root or settings.output_root() / stage
    return root / group / (run_name or time.strftime("%Y-%m-%d_%H-%M-%S"))


def process_rank() -> int:
    """This process's rank under torchrun (``WORLD_SIZE`` > 1), else 0: seeds are offset by it so ranks differ."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def run_device(device: str, distributed: bool) -> str:
    """``device``, or under ``distributed`` (one process per GPU) this rank's GPU."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if distributed else device
