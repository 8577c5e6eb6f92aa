"""Filtering G1 clips, with reasons: keep, trim (cut the bad stretches out) or drop, each decision with every reason
and its frame ranges.

A clip is judged on its G1 motion alone (forward kinematics, :func:`~humanoid_gpt.governance.quality.frame_measures`,
no simulation), so Unitree's retargeting, G1 Moves and our own retargeted human clips are judged alike. Two kinds of
reason (thresholds in :class:`~humanoid_gpt.governance.filter_config.FilterConfig`, whose defaults were set on the
shared LAFAN1-G1 and G1 Moves clips):

- **per-frame** (the frames are cut out; the rest is kept when long enough): ground penetration of any body part,
  floating (nothing within reach of the floor for longer than a jump), foot skating, joint-limit excess, joint
  velocity over the G1's motor limits, deep sustained self-collision, jerk spikes (mocap pops), root height and
  speed outliers, support by hands, knees, elbows or the trunk (crawling, kneeling, getting up, lying), non-flat
  ground (a foot resting still and flat above the floor: stairs, boxes, slopes), frames the retargeter flagged.
- **whole-clip** (the clip is dropped): label rules on its name, tags and captions (sitting, swimming, climbing,
  stairs, crawling, carrying, lying, ...), object interaction (``provenance["has_objects"]`` or an object label), a
  frame rate that was only assumed, systematic foot penetration or floating (mean scores of
  :func:`~humanoid_gpt.governance.quality.clip_quality`), a clip shorter than the minimum length.

Trimming keeps every good stretch of at least ``min_segment_seconds`` once each bad stretch is widened by
``margin_seconds`` on both sides; with no such stretch the clip is dropped. Frame ranges are ``[start, stop)`` at the
clip's own rate (shown inclusive, ``120-449``, in tables).

This module decides (:func:`analyse_clip`, :func:`filter_clips` over files), reads the settings from YAML and prints
the decisions; the per-frame reasons are in :mod:`~humanoid_gpt.governance.filter_frames`, the label reasons in
:mod:`~humanoid_gpt.governance.filter_labels`, the decision types in :mod:`~humanoid_gpt.governance.filter_decision`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import mujoco
import numpy as np

from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.filter_config import FilterConfig, FilterConfigError
from humanoid_gpt.governance.filter_decision import FilterDecision, Reason, format_ranges, mask_of, ranges_of
from humanoid_gpt.governance.filter_frames import frame_reasons
from humanoid_gpt.governance.filter_labels import clip_labels, label_reasons
from humanoid_gpt.governance.quality import collision_model, frame_measures, quality_from_measures
from humanoid_gpt.io_utils import read_yaml
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


def load_filter_config(path: str | Path | None) -> FilterConfig:
    """The filter settings of a YAML file: its ``filters:`` section (a corpus config) or the whole mapping; the
    defaults when ``path`` is None."""
    if path is None:
        return FilterConfig()
    path = Path(path)
    try:
        raw = read_yaml(path, "filter settings") or {}
    except ConfigError as e:
        raise FilterConfigError(str(e)) from e
    if not isinstance(raw, dict):
        raise FilterConfigError(f"{path}: a mapping of filter settings (or a corpus config with filters:) expected")
    section = raw.get("filters", raw if "sources" not in raw else {})
    try:
        return FilterConfig.from_dict(section)
    except (FilterConfigError, TypeError) as e:
        raise FilterConfigError(f"{path}: {e}") from e


def segments_of(bad: np.ndarray, min_length: int, max_segments: int | None = None) -> list[tuple[int, int]]:
    """Good stretches (False runs of ``bad``) at least ``min_length`` long, the longest ``max_segments`` of them,
    in time order."""
    good = ranges_of(~bad, min_length)
    if max_segments is not None and len(good) > max_segments:
        good = sorted(sorted(good, key=lambda s: (s[0] - s[1], s[0]))[:max_segments])
    return good


def analyse_clip(
    clip: MotionClip,
    g1: G1,
    config: FilterConfig = FilterConfig(),
    extra_labels: Sequence[str] = (),
    model: mujoco.MjModel | None = None,
    path: str | None = None,
) -> FilterDecision:
    """Keep, trim or drop ``clip`` (module docstring), with every reason. ``extra_labels``: labels a corpus source
    attaches; ``model``: a :func:`~humanoid_gpt.governance.quality.collision_model` to reuse."""
    cfg, T, fps = config, clip.num_frames, clip.fps
    path = path if path is not None else (clip.provenance or {}).get("path")
    labels = clip_labels(clip, extra_labels)
    decision = FilterDecision(clip.name, None if path is None else str(path), "drop", T, fps, labels=labels)
    reasons = label_reasons(clip, cfg, extra_labels)
    if (clip.provenance or {}).get("fps_source") == "assumed" and not cfg.allow_assumed_fps:
        reasons.append(
            Reason(
                "fps_unknown",
                f"{path or clip.name}: no frame rate stated; {fps:g} fps was only assumed. Fix: give the source's "
                "rate (a corpus source's `fps:` field, fps=... in Python) or a manifest.json beside the files",
            )
        )
    min_frames = max(2, int(round(cfg.min_segment_seconds * fps)) + 1)
    if T < 2:
        decision.reasons = [*reasons, Reason("too_short", f"{T} frame(s)")]
        return decision
    m = frame_measures(clip, g1, model or collision_model(g1))
    scores = quality_from_measures(clip, g1, m)
    decision.scores = {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.as_dict().items()}
    if scores.penetration_mm > cfg.max_mean_penetration_mm:
        reasons.append(
            Reason(
                "penetration",
                f"the feet sit {scores.penetration_mm:.0f} mm in the floor on average (> "
                f"{cfg.max_mean_penetration_mm:g} mm): a wrong root height",
            )
        )
    if scores.float_mm > cfg.max_float_mm:
        reasons.append(
            Reason(
                "floating",
                f"planted feet hover {scores.float_mm:.0f} mm above the floor on average (> {cfg.max_float_mm:g} mm)",
            )
        )
    per_frame = frame_reasons(clip, g1, cfg, m)
    decision.reasons = reasons + per_frame
    if reasons:  # a whole-clip reason: nothing to trim
        return decision
    bad = np.zeros(T, dtype=bool)
    margin = int(round(cfg.margin_seconds * fps))
    for r in per_frame:
        bad |= mask_of(r.frames, T, margin)
    decision.segments = segments_of(bad, min_frames, cfg.max_segments)
    if not bad.any() and decision.segments:
        decision.action = "keep"
    elif decision.segments:
        decision.action = "trim"
    elif not bad.any():
        decision.reasons.append(
            Reason("too_short", f"{clip.duration:.1f} s, shorter than {cfg.min_segment_seconds:g} s")
        )
    else:
        decision.reasons.append(
            Reason("no_good_stretch", f"no good stretch of {cfg.min_segment_seconds:g} s or more is left")
        )
    return decision


def filter_clips(
    paths_or_clips: Iterable[str | Path | MotionClip],
    config: FilterConfig = FilterConfig(),
    g1: G1 | None = None,
    fps: float | None = None,
    progress: bool = False,
) -> list[FilterDecision]:
    """A decision for each clip: motion files of any readable format (G1 clips and retargeted human clips alike;
    folders are searched) or :class:`MotionClip` objects. A file that cannot be read or fails validation is a
    ``drop`` whose reason (``unreadable`` / ``invalid``) carries the error, naming the file; the others go on.
    ``fps``: the rate of files that store none."""
    from humanoid_gpt.motion.io import find_motion_files, read_clip
    from humanoid_gpt.motion.validate import validate_clip
    from humanoid_gpt.robot import load_g1

    g1 = g1 or load_g1()
    items: list[Path | MotionClip] = []
    for item in paths_or_clips:
        items += [item] if isinstance(item, MotionClip) else find_motion_files([item])
    model = collision_model(g1)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="filtering clips", unit="clip", leave=False)
    out = []
    for item in items:
        if isinstance(item, MotionClip):
            out.append(analyse_clip(item, g1, config, model=model))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the decision carries what matters; a table must stay readable
                clip = read_clip(item, fps=fps, g1=g1)
        except (HGPTError, OSError, ValueError) as e:
            out.append(FilterDecision(item.stem, str(item), "drop", 0, 0.0, [Reason("unreadable", str(e))]))
            continue
        errors = [f for f in validate_clip(clip, g1.joint_limits, g1=g1) if f.severity == "error"]
        if errors:
            reason = Reason("invalid", f"{item}: " + "; ".join(str(f) for f in errors))
            out.append(FilterDecision(clip.name, str(item), "drop", clip.num_frames, clip.fps, [reason]))
            continue
        clip.root_quat = clip.root_quat / np.linalg.norm(clip.root_quat, axis=1, keepdims=True)
        out.append(analyse_clip(clip, g1, config, model=model, path=str(item)))
    return out


def print_decisions(decisions: Sequence[FilterDecision], title: str | None = None) -> None:
    """The decisions as a table on the terminal: clip, seconds, action, kept seconds, reasons with frame ranges."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=title or f"{len(decisions)} clips filtered")
    for col in ("clip", "seconds", "action", "kept s", "segments", "reasons (frames, inclusive)"):
        table.add_column(col, overflow="fold")
    style = {"keep": "green", "trim": "yellow", "drop": "red"}
    for d in decisions:
        seconds = (d.frames - 1) / d.fps if d.frames else 0.0
        kept = sum(b - a - 1 for a, b in d.segments) / d.fps if d.segments else 0.0
        table.add_row(
            d.name,
            f"{seconds:.1f}",
            f"[{style[d.action]}]{d.action}[/]",
            f"{kept:.1f}",
            format_ranges(d.segments, limit=4),
            "\n".join(r.describe() for r in d.reasons),
        )
    console().print(table)
    counts = {a: sum(d.action == a for d in decisions) for a in ("keep", "trim", "drop")}
    console().print(", ".join(f"{n} {a}" for a, n in counts.items()))
