"""Readers of raw human motion capture, each returning a :class:`HumanMotion` in one convention.

Formats: BVH (:func:`read_bvh`), Acclaim ASF/AMC (:func:`read_amc`, :func:`read_asf`) and raw global joint positions
in ``.npy`` / ``.npz`` (:func:`read_positions`). The convention: metres, world Z up, right-handed; global joint
positions (T, J, 3) and, when the source has them, global orientations as quaternions (w, x, y, z); canonical joint
names beside each source's own (:mod:`.names`); provenance (path, format, unit and scale, up axis, how the frame rate
was obtained). Bad files raise :class:`MocapFormatError` naming the file, the line or field, and the fix; guesses
that deserve a look are :class:`MocapWarning` warnings.

SMPL / SMPL-H / SMPL-X body-model parameter files (AMASS ``.npz`` with ``poses``, ``trans``, ``betas``) are read by
:func:`read_smpl`, which runs the body model through the ``smplx`` package; the licensed body-model files come from
``body_models=`` or ``$HGPT_BODY_MODELS`` (:mod:`.smpl`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from humanoid_gpt.governance.mocap.amc import AsfBone, AsfSkeleton, read_amc, read_asf
from humanoid_gpt.governance.mocap.bvh import read_bvh
from humanoid_gpt.governance.mocap.conventions import MocapWarning
from humanoid_gpt.governance.mocap.names import CANONICAL_NAMES, PRESETS
from humanoid_gpt.governance.mocap.positions import FPS_KEYS, read_positions
from humanoid_gpt.governance.mocap.skeleton import HumanMotion, MocapFormatError, Skeleton
from humanoid_gpt.governance.mocap.smpl import BODY_MODELS_ENV, is_smpl_params, read_smpl
from humanoid_gpt.governance.mocap.smpl import FPS_KEYS as SMPL_FPS_KEYS

MOCAP_SUFFIXES: tuple[str, ...] = (".bvh", ".amc", ".npy", ".npz")

__all__ = [
    "BODY_MODELS_ENV",
    "CANONICAL_NAMES",
    "MOCAP_SUFFIXES",
    "PRESETS",
    "AsfBone",
    "AsfSkeleton",
    "HumanMotion",
    "MocapFormatError",
    "MocapWarning",
    "Skeleton",
    "read_amc",
    "read_asf",
    "read_bvh",
    "read_mocap",
    "read_positions",
    "read_smpl",
]


def read_mocap(path: str | Path, src_fps: float | None = None, **options) -> HumanMotion:
    """Read any supported mocap file by its suffix; ``options`` go to the format's reader
    (:func:`read_bvh`, :func:`read_amc` (``asf_path=``), :func:`read_smpl` (``body_models=``) for AMASS-style
    body-model parameter ``.npz``, :func:`read_positions` for other ``.npy`` / ``.npz``).

    ``src_fps`` is the frame rate of a file that stores none (AMC, whose CMU 120 Hz default it replaces; ``.npy``;
    an ``.npz`` without a rate key). A file that stores a rate (BVH's Frame Time, an ``.npz`` rate key) is read at
    it: reading it at another would change its speed, so a different ``src_fps`` gets a :class:`MocapWarning`
    naming both, and a caller that wants another rate resamples the result. ``fps=`` in ``options`` forces the rate
    of any file, as each reader documents."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    smpl, stored = False, suffix == ".bvh"  # BVH requires its Frame Time; AMC and .npy store no rate
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            smpl = is_smpl_params(data.keys())
            stored = bool(set(data.keys()) & {*FPS_KEYS, *SMPL_FPS_KEYS})
    if src_fps is not None and "fps" not in options and not stored:
        options["fps"] = src_fps
    motion = _read(path, suffix, smpl, options)
    if src_fps is not None and "fps" not in options and abs(motion.fps - src_fps) > 1e-6 * src_fps:
        warnings.warn(
            f"{path}: the file stores {motion.fps:g} fps and is read at that rate; {src_fps:g} fps (--fps) is the "
            f"rate of files that store none. To change the output's rate, resample it (`hgpt retarget --out-fps "
            f"{src_fps:g}`)",
            MocapWarning,
            stacklevel=2,
        )
    return motion


def _read(path: Path, suffix: str, smpl: bool, options: dict) -> HumanMotion:
    if suffix == ".bvh":
        return read_bvh(path, **options)
    if suffix == ".amc":
        return read_amc(path, **options)
    if smpl:
        return read_smpl(path, **options)
    if suffix in (".npy", ".npz"):
        return read_positions(path, **options)
    raise MocapFormatError(
        f"{path}: unknown mocap file type '{path.suffix}'. Fix: use one of {', '.join(MOCAP_SUFFIXES)} "
        "(an .asf is a skeleton: read the .amc motion that uses it)"
    )
