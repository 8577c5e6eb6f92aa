"""Where a motion file's frame rate and provenance come from (see :mod:`humanoid_gpt.motion.io`): the file, the
``fps`` option, its name, a manifest or dataset card beside it, or a per-dataset rule; never guessed silently."""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import MotionFormatError

MAX_FPS = 1000.0
"""Frame rates above this are absurd for motion data (a unit or field mix-up)."""
ASSUMED_CSV_FPS = 30.0
"""The rate a G1 CSV is read at when nothing gives one (Unitree's G1 CSVs are 30 fps), always with a warning."""
LAFAN1_FPS = 30.0
FPS_SOURCES = ("option", "file", "manifest", "dataset rule", "assumed")
DATASET_CARDS = ("DATASET_CARD.md", "dataset_card.md", "README.md")


class MotionWarning(UserWarning):
    """A clip loaded but has findings a curator should look at."""


class FrameRateWarning(MotionWarning):
    """No frame rate was found for a file that stores none, and one was assumed (said once per folder)."""


# Provenance -------------------------------------------------------------------------------------------------------


def infer_provenance(path: Path) -> dict:
    """Source, performer and tags from the file's dataset folder and name conventions.

    LAFAN1-G1: ``walk1_subject1`` -> performer ``subject1``, tag ``walk``. G1 Moves: ``dance__B_DadDance`` -> tag
    ``dance``, performer from the dataset's ``manifest.json`` when it sits beside the file.
    """
    stem = path.name.split(".")[0]
    prov: dict = {"source": path.parent.name, "path": str(path), "performer": None, "tags": []}
    if "__" in stem:
        category, clip = stem.split("__", 1)
        prov["tags"] = [category]
        manifest = path.parent / "manifest.json"
        if manifest.is_file():
            try:
                entry = json.loads(manifest.read_text()).get("clips", {}).get(clip, {})
                prov["performer"] = entry.get("performer")
            except (OSError, json.JSONDecodeError):
                pass  # a broken manifest costs the performer name, not the clip
    elif "_subject" in stem:
        action, subject = stem.rsplit("_", 1)
        prov["performer"] = subject
        prov["tags"] = [action.rstrip("0123456789")]
    return prov


# Frame rates ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRate:
    """A clip's frame rate and which rule gave it: ``source`` is one of :data:`FPS_SOURCES`, ``detail`` says where."""

    fps: float
    source: str
    detail: str

    def provenance(self) -> dict:
        return {"fps_source": self.source, "fps_from": self.detail}


def check_fps(fps: float | None, what: str = "fps") -> float | None:
    """An explicitly given frame rate as a float, or a :class:`MotionFormatError` naming ``what`` and the fix when it
    is not a number in (0, :data:`MAX_FPS`]. None stays None (no rate given)."""
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(fps, bool) or not (math.isfinite(value) and 0.0 < value <= MAX_FPS):
        raise MotionFormatError(
            f"{what}={fps!r} is not a usable frame rate: it must be a number of frames per second above 0 and at "
            f"most {MAX_FPS:g}. Fix: pass the clip's real rate (fps=30 in Python, `hgpt motions check --fps 30`, "
            "`hgpt motions convert --src-fps 30`), or leave it out to take the rate from the file, its name, a "
            "manifest beside it or a known dataset"
        )
    return value


_NAME_FPS = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)[ _-]?(?:fps|hz)(?![a-z])|(?<![a-z])(?:fps|hz)[ _-]?(\d+(?:\.\d+)?)(?![\d.])",
    re.IGNORECASE,
)
_CARD_FPS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:fps|frames per second|frames/s)\b|frame[ _-]?rate[^0-9\n]{0,12}?(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_LAFAN1_NAME = re.compile(r"[A-Za-z]+\d+_subject\d+")
_RATE_KEYS = ("fps", "frame_rate", "framerate", "mocap_framerate")


def fps_from_name(path: str | Path) -> float | None:
    """The frame rate a file name states (``walk_30fps``, ``walk_fps50``, ``walk@60hz``, ``run-120Hz``), or None."""
    path = Path(path)
    rates = {float(a or b) for a, b in _NAME_FPS.findall(path.stem)}
    if len(rates) > 1:
        raise MotionFormatError(
            f"{path}: the file name states several frame rates ({', '.join(f'{r:g}' for r in sorted(rates))}); "
            "rename it or pass the real rate (fps=..., --fps / --src-fps)"
        )
    return check_fps(rates.pop(), f"{path}: the rate in the file name, fps") if rates else None


@functools.lru_cache(maxsize=64)
def _read_text_cached(path: str, mtime_ns: int, size: int) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _read_text(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _read_text_cached(str(path), st.st_mtime_ns, st.st_size)


def _read_json(path: Path):
    text = _read_text(path)
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return None  # a broken manifest gives no rate; the later rules (or the loud assumption) apply


def _rate_of(entry) -> float | None:
    if isinstance(entry, Mapping):
        for key in _RATE_KEYS:
            value = entry.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


def _manifest_clips(manifest) -> dict[str, Mapping]:
    """A manifest's clip entries by clip name: ``{"clips": {name: {...}}}`` (G1 Moves) or a list of entries with a
    ``name``, ``file`` or ``path``."""
    clips = manifest.get("clips") if isinstance(manifest, Mapping) else manifest
    if isinstance(clips, Mapping):
        return {str(k): v for k, v in clips.items() if isinstance(v, Mapping)}
    out: dict[str, Mapping] = {}
    if isinstance(clips, list):
        for entry in clips:
            if isinstance(entry, Mapping):
                for key in ("name", "clip", "file", "path"):
                    if isinstance(entry.get(key), str):
                        out[Path(entry[key]).stem] = entry
                        break
    return out


def fps_from_manifest(path: str | Path) -> tuple[float, str] | None:
    """The rate a dataset's own description gives a file, with where it was found, or None.

    ``manifest.json`` in the file's folder or up to three folders above (the nearest one speaks for the dataset): the
    clip's own entry (by file stem, or the part after ``__`` as G1 Moves names its CSVs ``<category>__<clip>``);
    beside the file also a dataset-wide rate or one rate shared by every clip it lists. Then a dataset card beside
    the file (``DATASET_CARD.md``, ``README.md``) that states exactly one rate ("60 FPS", "frame rate: 60").
    """
    path = Path(path)
    names = dict.fromkeys([path.stem, path.stem.split("__", 1)[-1]])
    folders = [path.parent, *path.parent.parents][:4]
    for level, folder in enumerate(folders):
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            continue
        data = _read_json(manifest)
        clips = _manifest_clips(data)
        for name in names:
            rate = _rate_of(clips.get(name))
            if rate is not None:
                return rate, f"{manifest} (clip {name})"
        if level == 0:
            rate = _rate_of(data)
            if rate is not None:
                return rate, f"{manifest} (dataset rate)"
            rates = {_rate_of(c) for c in clips.values()} - {None}
            if len(rates) == 1:
                rate = rates.pop()
                return rate, f"{manifest} (all {len(clips)} clips it lists are {rate:g} fps)"
        break
    for card_name in DATASET_CARDS:
        card = path.parent / card_name
        text = _read_text(card) if card.is_file() else None
        if text:
            rates = {float(a or b) for a, b in _CARD_FPS.findall(text)}
            if len(rates) == 1:
                return rates.pop(), f"{card} (dataset card)"
    return None


@functools.lru_cache(maxsize=1)
def _lafan1_digests() -> dict[str, str]:
    from humanoid_gpt.data.fetch import lafan1_checksums

    return {digest: name for name, digest in lafan1_checksums().items()}


def fps_from_dataset_rule(path: str | Path) -> tuple[float, str] | None:
    """A documented per-dataset rate, or None. LAFAN1-G1 (Unitree's retargeting, 30 fps) is recognised by its file
    naming ``<action><n>_subject<k>.csv`` or, renamed, by content: its sha256 is in the checksum list the project
    ships (``humanoid_gpt/data/lafan1_g1.sha256``)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return None
    if _LAFAN1_NAME.fullmatch(path.stem):
        return LAFAN1_FPS, "LAFAN1-G1 is 30 fps (file named <action><n>_subject<k>.csv)"
    from humanoid_gpt.io_utils import sha256_file

    try:
        name = _lafan1_digests().get(sha256_file(path))
    except OSError:
        return None
    return (LAFAN1_FPS, f"LAFAN1-G1 is 30 fps (content is {name} of lafan1_g1.sha256)") if name else None


_ASSUMED_FOLDERS: set[Path] = set()


def _warn_assumed(path: Path, fps: float) -> None:
    folder = path.parent.resolve()
    if folder in _ASSUMED_FOLDERS:
        return  # once per folder (dataset), not once per file
    _ASSUMED_FOLDERS.add(folder)
    warnings.warn(
        f"{folder}: NO FRAME RATE for the motion files here (first: {path.name}): none given (fps=...), none in "
        f"the file names, no manifest.json or dataset card stating one, no known dataset. ASSUMING {fps:g} fps "
        "(the Unitree G1 CSV convention). If the clips were recorded at another rate every speed and velocity "
        "derived from them is wrong: pass the real rate (`hgpt motions check --fps 60`, `hgpt motions convert "
        '--src-fps 60`, fps=60 in Python) or put a manifest.json with {"fps": 60} beside the files.',
        FrameRateWarning,
        stacklevel=4,
    )


def resolve_fps(path: str | Path, fps: float | None = None, assume: float | None = None) -> FrameRate:
    """The frame rate of ``path``, a file that stores none, and which rule gave it, in this order: the ``fps``
    option; the file name (:func:`fps_from_name`); a manifest or dataset card (:func:`fps_from_manifest`); a
    per-dataset rule (:func:`fps_from_dataset_rule`). Otherwise ``assume`` with a loud :class:`FrameRateWarning`
    (once per folder), or, when ``assume`` is None, a :class:`MotionFormatError` saying how to give the rate."""
    path = Path(path)
    option = check_fps(fps)
    if option is not None:
        return FrameRate(option, "option", "fps option")
    named = fps_from_name(path)
    if named is not None:
        return FrameRate(named, "file", f"file name {path.name}")
    found = fps_from_manifest(path)
    if found is not None:
        return FrameRate(check_fps(found[0], f"{found[1]}: fps"), "manifest", found[1])
    rule = fps_from_dataset_rule(path)
    if rule is not None:
        return FrameRate(rule[0], "dataset rule", rule[1])
    if assume is None:
        raise MotionFormatError(
            f"{path}: no frame rate: the file stores none, its name states none (e.g. walk_30fps{path.suffix}, "
            f"walk@60hz{path.suffix}), and no manifest.json or dataset card beside it gives one. Fix: pass the "
            "real rate (fps=..., `hgpt motions check --fps`, `hgpt motions convert --src-fps`) or rename the file"
        )
    _warn_assumed(path, assume)
    return FrameRate(assume, "assumed", f"assumed {assume:g} fps: nothing stated a rate")


def stored_fps(data: Mapping, path: Path, fps: float | None, key: str = "fps") -> FrameRate | None:
    """The rate an NPZ stores under ``key`` (None when absent). An explicit ``fps`` wins, with a warning when the
    file says otherwise; a stored value that is not a rate (<= 0, NaN, < 1 as a frame period would be, > 1000) is an
    error unless ``fps`` is given."""
    option = check_fps(fps)
    if key not in data:
        return None
    stored = None  # how to name a stored value that is not a number
    try:
        raw = np.asarray(data[key], dtype=np.float64).reshape(-1)
        value = float(raw[0]) if raw.size else math.nan
    except (TypeError, ValueError):  # a string or an object
        value, stored = math.nan, repr(data[key])[:40]
    usable = math.isfinite(value) and 1.0 <= value <= MAX_FPS
    if option is not None:
        if not usable or abs(option - value) > 1e-6 * option:
            warnings.warn(
                f"{path}: the file stores {key}={stored or f'{value:g}'}; using fps={option:g} as passed",
                MotionWarning,
                stacklevel=4,
            )
        return FrameRate(option, "option", f"fps option (the file's '{key}' holds {stored or f'{value:g}'})")
    if not usable:
        hint = f" (it looks like a frame period: 1/{1 / value:g} s)" if 0.0 < value < 1.0 else ""
        raise MotionFormatError(
            f"{path}: '{key}' holds {stored or repr(value)}, not a usable frame rate{hint}; pass the real rate "
            "explicitly (fps=..., `hgpt motions check --fps`, `hgpt motions convert --src-fps`)"
        )
    return FrameRate(value, "file", f"'{key}' in the file")


def npz_rate(data: Mapping, path: Path, fps: float | None) -> FrameRate:
    """The stored rate, or for an NPZ without one the rate :func:`resolve_fps` finds (never assumed)."""
    return stored_fps(data, path, fps) or resolve_fps(path, fps)
