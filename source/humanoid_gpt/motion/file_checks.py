"""What every motion reader checks of a file's arrays: the keys its format needs, and their shapes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import MotionFormatError


def require_keys(data, path: Path, keys: Iterable[str], fmt: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise MotionFormatError(f"{path}: {fmt} needs keys {missing}; found {sorted(data.keys())}")


def check_shape(arr: np.ndarray, path: Path, key: str, shape: tuple) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape, strict=True))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise MotionFormatError(f"{path}: '{key}' has shape {arr.shape}, expected {want}")
