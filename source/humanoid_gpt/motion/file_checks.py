"""What every motion reader checks of a file: that an NPZ opens, the keys its format needs, and array shapes."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import MotionFormatError
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

CSV_COLUMNS = 7 + len(G1_JOINT_NAMES)
"""A G1 frame as a row: root position (3), root quaternion (4), the 29 joints."""


def require_keys(data, path: Path, keys: Iterable[str], fmt: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise MotionFormatError(f"{path}: {fmt} needs keys {missing}; found {sorted(data.keys())}")


def check_shape(arr: np.ndarray, path: Path, key: str, shape: tuple) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape, strict=True))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise MotionFormatError(f"{path}: '{key}' has shape {arr.shape}, expected {want}")


def load_npz(path: Path) -> dict:
    """An NPZ's arrays, never unpickling (``allow_pickle=False``); a corrupt or truncated file is a clear error."""
    try:
        return dict(np.load(path, allow_pickle=False))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise MotionFormatError(f"{path}: not a readable NPZ ({e}); the file is corrupt or truncated") from e
