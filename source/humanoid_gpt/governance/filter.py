"""Filtering G1 clips, with reasons: keep, trim (cut the bad stretches out) or drop, each decision with every reason
and its frame ranges.

A clip is judged on its G1 motion alone (forward kinematics, :func:`~humanoid_gpt.governance.quality.frame_measures`,
no simulation), so Unitree's retargeting, G1 Moves and our own retargeted human clips are judged alike. Two kinds of
reason (thresholds in :class:`FilterConfig`, whose defaults were set on the shared LAFAN1-G1 and G1 Moves clips):

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
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mujoco
import numpy as np

from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.quality import (
    SUPPORT_GROUPS,
    FrameMeasures,
    collision_model,
    frame_measures,
    quality_from_measures,
)
from humanoid_gpt.io_utils import read_yaml
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1

Action = Literal["keep", "trim", "drop"]

#: Label rules by default: reason name -> regular expression matched against whole words of a clip's name, tags and
#: captions (lower case; camelCase and snake_case split). What the G1 cannot do on flat ground without objects.
DEFAULT_LABEL_RULES: dict[str, str] = {
    "sitting": r"sit|sits|sitting|seated|chair|chairs|bench|stool|sofa|couch",
    "swimming": r"swim|swims|swimming|swimmer",
    "climbing": r"climb|climbs|climbing|ladder|ladders",
    "stairs": r"stair|stairs|staircase|stairway|upstairs|downstairs",
    "crawling": r"crawl|crawls|crawling",
    "lying": r"lie|lies|lying|laying|prone|supine",
    "carrying": r"carry|carries|carrying|box|boxes|crate|suitcase",
    "riding": r"ride|rides|riding|bicycle|bike|horse",
}

#: Label rule names that mean an object is involved (their reason is ``objects`` as well as the label).
OBJECT_RULES: tuple[str, ...] = ("sitting", "carrying", "riding")

#: Provenance keys whose text counts as a caption.
CAPTION_KEYS: tuple[str, ...] = ("caption", "captions", "text", "description", "labels")


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the filter. Lengths in metres, times in seconds, angles in radians. The defaults keep flat
    walking, running, dancing and karate of LAFAN1-G1 and G1 Moves, and catch their floor work, pops and floating."""

    # Ground contact.
    penetration_m: float = 0.03
    """A body part (foot, hand, knee, elbow, trunk) more than this below the floor is penetrating (Unitree's
    LAFAN1 feet stay within 25 mm; lying on the floor pushes the trunk 5-10 cm in)."""
    float_height: float = 0.05
    """Floating: the lowest point of the whole body above this ..."""
    max_airborne_seconds: float = 0.5
    """... for longer than this (a jump's flight lasts 0.3-0.5 s)."""
    skate_contact: float = 0.01
    """A foot is planted when its lowest point is below this and its sole is flat (``skate_tilt``) ..."""
    skate_tilt: float = 0.26
    skate_speed: float = 0.5
    """... and skates when that point then slides faster than this (m/s) ..."""
    skate_seconds: float = 0.2
    """... for at least this long."""
    # The robot.
    limit_tolerance: float = 0.05
    """Joint angles this far past the model's range (rad) are frames to cut (the validation warning's tolerance)."""
    velocity_tolerance: float = 1.0
    """Joint speeds over this multiple of the G1's motor limits (G1_VELOCITY_LIMITS) are frames to cut (one-sided
    differences, so a one-frame pop shows at its full size; none in LAFAN1-G1, 0.2% of G1 Moves' frames)."""
    self_collision_depth: float = 0.05
    """Self-collision: two robot geoms interpenetrating deeper than this (m) ..."""
    self_collision_seconds: float = 0.5
    """... for at least this long (arms brushing the hip pads during a swing are tolerated: the pads are coarse)."""
    jerk_spike: float = 1.0e5
    """rad/s^3: a frame whose largest joint jerk (third differences at the clip's rate) is above this is a pop in
    the data (G1 Moves has shoulders flipping 1.2-1.7 rad in one 60 fps frame: 5-7e5; a 1.5 rad one-frame pop at
    30 fps: 1.2e5; LAFAN1-G1 peaks at 6e4, G1 Moves has 0.3% of its frames above 1e5, all around pops)."""
    # The root.
    root_height_min: float = 0.35
    root_height_max: float = 1.3
    root_speed_max: float = 6.0
    """m/s: faster pelvis motion is a teleport or a sprint beyond the G1 (LAFAN1 sprints top out under 5 m/s)."""
    # Support other than the feet.
    support_height: dict[str, float] = field(
        default_factory=lambda: {"hands": 0.05, "knees": 0.05, "elbows": 0.05, "trunk": 0.08}
    )
    """Per support group (:data:`~humanoid_gpt.governance.quality.SUPPORT_GROUPS`): the group's lowest point below
    this height bears weight (m) ..."""
    support_seconds: float = 0.3
    """... when it stays there at least this long (crawling, kneeling, getting up, lying, sitting on the floor)."""
    # Non-flat ground.
    rest_speed: float = 0.1
    """A foot rests when its lowest point moves slower than this (m/s, horizontally and vertically) ..."""
    rest_tilt: float = 0.26
    """... with its sole within this of level ..."""
    rest_seconds: float = 0.5
    """... for at least this long; a resting foot higher than ``step_height`` above the clip's floor level (5th
    percentile of the lower foot), or two resting feet at heights this far apart, stand on something."""
    step_height: float = 0.06
    # Retargeting.
    retarget_flagged: bool = True
    """Cut the frames the retargeter flagged (IK residual over its threshold)."""
    # Whole-clip gates.
    max_mean_penetration_mm: float = 10.0
    """:func:`clip_quality` ``penetration_mm`` above this: the clip sits in the floor (a wrong height)."""
    max_float_mm: float = 25.0
    """:func:`clip_quality` ``float_mm`` above this: planted feet hover (a wrong height)."""
    allow_assumed_fps: bool = False
    """A clip whose frame rate nothing stated (``fps_source == "assumed"``) is dropped unless this is on."""
    label_rules: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABEL_RULES))
    """Reason name -> regular expression over whole words of the name, tags and captions; a match drops the clip."""
    drop_objects: bool = True
    """Drop clips with object data (``provenance["has_objects"]``) or an object label (:data:`OBJECT_RULES`)."""
    # Trimming.
    margin_seconds: float = 0.2
    """Each bad stretch is widened by this on both sides before cutting."""
    min_segment_seconds: float = 2.0
    """The shortest good stretch worth keeping (and the shortest clip kept at all)."""
    max_segments: int | None = None
    """Keep at most this many good stretches (the longest); None keeps every one of at least the minimum length."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> FilterConfig:
        """A config from a mapping (a YAML ``filters:`` section): unknown keys are an error naming them."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FilterConfigError(
                f"unknown filter setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if "support_height" in data:
            merged = cls().support_height
            merged.update(data["support_height"] or {})
            bad = sorted(set(merged) - set(SUPPORT_GROUPS))
            if bad:
                raise FilterConfigError(f"support_height: unknown group(s) {bad}; groups: {sorted(SUPPORT_GROUPS)}")
            data["support_height"] = merged
        if "label_rules" in data:
            rules = data["label_rules"] or {}
            for name, pattern in rules.items():
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as e:
                    raise FilterConfigError(f"label_rules.{name}: {pattern!r} is not a regular expression ({e})") from e
        return cls(**data)


class FilterConfigError(HGPTError, ValueError):
    """A filter setting that cannot work: the message names it."""


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


@dataclass
class Reason:
    """Why frames (or the whole clip, ``frames == []``) must go: a short ``code`` (``support``, ``penetration``,
    ``label:sitting``, ...), a message with the measured value and the threshold, ``[start, stop)`` frame ranges."""

    code: str
    message: str
    frames: list[tuple[int, int]] = field(default_factory=list)

    @property
    def whole_clip(self) -> bool:
        return not self.frames

    @property
    def num_frames(self) -> int:
        return sum(b - a for a, b in self.frames)

    def describe(self) -> str:
        where = "whole clip" if self.whole_clip else f"frames {format_ranges(self.frames)}"
        return f"{self.code}: {self.message} ({where})"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "frames": [list(r) for r in self.frames]}

    @classmethod
    def from_dict(cls, data: dict) -> Reason:
        return cls(data["code"], data["message"], [(int(a), int(b)) for a, b in data.get("frames", [])])


@dataclass
class FilterDecision:
    """The verdict on one clip: ``action`` keep / trim / drop, every reason, the kept ``segments`` (``[start,
    stop)`` frames at the clip's rate), the clip's physical scores and labels."""

    name: str
    path: str | None
    action: Action
    frames: int
    fps: float
    reasons: list[Reason] = field(default_factory=list)
    segments: list[tuple[int, int]] = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)

    @property
    def kept_frames(self) -> int:
        return sum(b - a for a, b in self.segments)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "action": self.action,
            "frames": self.frames,
            "fps": self.fps,
            "seconds": round((self.frames - 1) / self.fps, 3) if self.frames else 0.0,
            "kept_frames": self.kept_frames,
            "segments": [list(s) for s in self.segments],
            "reasons": [r.to_dict() for r in self.reasons],
            "labels": list(self.labels),
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FilterDecision:
        return cls(
            data["name"],
            data.get("path"),
            data["action"],
            int(data["frames"]),
            float(data["fps"]),
            [Reason.from_dict(r) for r in data.get("reasons", [])],
            [(int(a), int(b)) for a, b in data.get("segments", [])],
            dict(data.get("scores", {})),
            list(data.get("labels", [])),
        )


# Frame-range helpers ------------------------------------------------------------------------------------------------


def ranges_of(mask: np.ndarray, min_length: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in ``mask`` at least ``min_length`` long."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length]


def mask_of(ranges: Iterable[tuple[int, int]], length: int, margin: int = 0) -> np.ndarray:
    """A boolean mask of ``length`` frames, True over ``ranges`` widened by ``margin`` frames on both sides."""
    out = np.zeros(length, dtype=bool)
    for a, b in ranges:
        out[max(0, a - margin) : min(length, b + margin)] = True
    return out


def format_ranges(ranges: Sequence[tuple[int, int]], limit: int = 6) -> str:
    """``[(120, 450), (800, 801)]`` -> ``"120-449, 800"`` (inclusive, as people count frames)."""
    parts = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in ranges[:limit]]
    return ", ".join(parts) + (f" (+{len(ranges) - limit} more)" if len(ranges) > limit else "")


# Labels -------------------------------------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(text: str) -> list[str]:
    """Lower-case words of a name or caption: camelCase and snake_case split, digits dropped."""
    return [w.lower() for w in re.findall(r"[A-Za-z]+", _CAMEL.sub(" ", text))]


def clip_texts(clip: MotionClip, extra_labels: Sequence[str] = ()) -> list[str]:
    """What the label rules read: the clip name, its file stem, provenance tags and captions, and ``extra_labels``
    (labels a corpus source attaches)."""
    prov = clip.provenance or {}
    texts = [clip.name, *map(str, prov.get("tags") or []), *map(str, extra_labels)]
    if prov.get("path"):
        texts.append(Path(str(prov["path"])).stem)
    for key in CAPTION_KEYS:
        value = prov.get(key)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list | tuple):
            texts += [str(v) for v in value]
    return texts


def clip_labels(clip: MotionClip, extra_labels: Sequence[str] = ()) -> list[str]:
    """The clip's labels for the manifest and the card: provenance tags and ``extra_labels``, else the first word of
    its name (``fall_getup`` -> ``fall``), else ``unlabelled``."""
    labels = list(dict.fromkeys([*map(str, (clip.provenance or {}).get("tags") or []), *map(str, extra_labels)]))
    if not labels:
        first = words(clip.name)
        labels = [first[0]] if first else ["unlabelled"]
    return labels


def label_reasons(clip: MotionClip, config: FilterConfig, extra_labels: Sequence[str] = ()) -> list[Reason]:
    """Whole-clip reasons from the label rules and object data."""
    tokens = sorted({w for text in clip_texts(clip, extra_labels) for w in words(text)})
    out: list[Reason] = []
    objects = False
    for rule, pattern in config.label_rules.items():
        rx = re.compile(pattern, re.IGNORECASE)
        hits = [t for t in tokens if rx.fullmatch(t)]
        if hits:
            out.append(Reason(f"label:{rule}", f"'{', '.join(hits)}' in the name, tags or captions"))
            objects |= rule in OBJECT_RULES
    prov = clip.provenance or {}
    if config.drop_objects and (prov.get("has_objects") or objects):
        why = (
            f"object data in the file ({', '.join(prov.get('object_keys') or []) or 'has_objects'})"
            if prov.get("has_objects")
            else "an object label"
        )
        out.append(Reason("objects", f"the motion interacts with an object: {why}"))
    return out


# Per-frame checks ---------------------------------------------------------------------------------------------------


def _motor_limits(g1: G1) -> np.ndarray:
    from humanoid_gpt.governance.retarget.retargeter import G1_VELOCITY_LIMITS

    key = lambda j: j.removeprefix("left_").removeprefix("right_").removesuffix("_joint")  # noqa: E731
    return np.array([G1_VELOCITY_LIMITS[key(j)] for j in g1.joint_names])


def velocity_excess(
    clip: MotionClip, g1: G1, tolerance: float = 1.0, joint_vel: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, whether any joint is faster than ``tolerance`` x its G1 motor limit (T,), and each joint's peak
    speed as a fraction of its limit (29,). Central differences (``clip.joint_vel()`` unless ``joint_vel`` is
    given), as the motion library computes joint velocities."""
    speed = np.abs(clip.joint_vel() if joint_vel is None else joint_vel) / _motor_limits(g1)
    return (speed > tolerance).any(axis=1), speed.max(axis=0) if len(speed) else np.zeros(len(g1.joint_names))


def step_velocity_excess(clip: MotionClip, g1: G1, tolerance: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`velocity_excess` with one-sided differences: a frame counts when the step to the previous or the
    next frame is too fast (central differences halve a one-frame pop and hide it)."""
    if clip.num_frames < 2:
        return np.zeros(clip.num_frames, dtype=bool), np.zeros(len(g1.joint_names))
    step = np.abs(np.diff(clip.joint_pos, axis=0)) * clip.fps / _motor_limits(g1)  # (T-1, 29)
    speed = np.zeros_like(clip.joint_pos)
    speed[1:] = step
    speed[:-1] = np.maximum(speed[:-1], step)
    return (speed > tolerance).any(axis=1), speed.max(axis=0)


def _stretch(mask: np.ndarray, seconds: float, fps: float) -> list[tuple[int, int]]:
    return ranges_of(mask, max(1, int(round(seconds * fps))))


def frame_reasons(clip: MotionClip, g1: G1, config: FilterConfig, m: FrameMeasures) -> list[Reason]:
    """Every per-frame reason of ``clip`` given its measures ``m`` (module docstring)."""
    cfg, fps, T = config, clip.fps, clip.num_frames
    out: list[Reason] = []
    parts = {"feet": m.foot_low.min(axis=1), **m.group_low}
    lowest = np.min(np.stack(list(parts.values())), axis=0)

    deep = -lowest > cfg.penetration_m
    if deep.any():
        worst = min(parts, key=lambda k: parts[k].min())
        out.append(
            Reason(
                "penetration",
                f"{worst} up to {-1000 * lowest.min():.0f} mm below the floor (> {1000 * cfg.penetration_m:.0f} mm)",
                ranges_of(deep),
            )
        )
    air = _stretch(lowest > cfg.float_height, cfg.max_airborne_seconds, fps)
    if air:
        longest = max(b - a for a, b in air) / fps
        out.append(
            Reason(
                "floating",
                f"the whole body over {100 * cfg.float_height:.0f} cm above the floor for up to {longest:.1f} s "
                f"(> {cfg.max_airborne_seconds:g} s, longer than a jump)",
                air,
            )
        )
    planted = (m.foot_low < cfg.skate_contact) & (m.foot_tilt < cfg.skate_tilt)
    skate = _stretch((planted & (m.foot_speed > cfg.skate_speed)).any(axis=1), cfg.skate_seconds, fps)
    if skate:
        out.append(
            Reason(
                "skating",
                f"a planted foot slides faster than {cfg.skate_speed:g} m/s for {cfg.skate_seconds:g} s or more",
                skate,
            )
        )
    lo, hi = g1.joint_limits[:, 0], g1.joint_limits[:, 1]
    excess = np.maximum(0.0, np.maximum(clip.joint_pos - hi, lo - clip.joint_pos))
    over = excess.max(axis=1) > cfg.limit_tolerance
    if over.any():
        j = int(excess.max(axis=0).argmax())
        out.append(
            Reason(
                "joint_limits",
                f"{g1.joint_names[j]} up to {excess[:, j].max():.2f} rad past its range (> {cfg.limit_tolerance:g})",
                ranges_of(over),
            )
        )
    fast, peak = step_velocity_excess(clip, g1, cfg.velocity_tolerance)
    if fast.any():
        j = int(peak.argmax())
        out.append(
            Reason(
                "joint_velocity",
                f"{g1.joint_names[j]} at {peak[j]:.2f}x its motor's speed limit (> {cfg.velocity_tolerance:g}x)",
                ranges_of(fast),
            )
        )
    collide = _stretch(m.collision_depth > cfg.self_collision_depth, cfg.self_collision_seconds, fps)
    if collide:
        out.append(
            Reason(
                "self_collision",
                f"robot parts interpenetrate up to {100 * m.collision_depth.max():.0f} cm (> "
                f"{100 * cfg.self_collision_depth:g} cm for {cfg.self_collision_seconds:g} s or more)",
                collide,
            )
        )
    if T > 3:
        jerk = np.abs(np.diff(clip.joint_pos, n=3, axis=0)).max(axis=1) * fps**3  # (T-3,): frames t..t+3
        spike = np.zeros(T, dtype=bool)
        for k in np.flatnonzero(jerk > cfg.jerk_spike):
            spike[k : k + 4] = True
        if spike.any():
            out.append(
                Reason(
                    "jerk",
                    f"joint jerk spikes up to {jerk.max():.2g} rad/s^3 (> {cfg.jerk_spike:.2g}): a pop in the data",
                    ranges_of(spike),
                )
            )
    z = clip.root_pos[:, 2]
    odd = (z < cfg.root_height_min) | (z > cfg.root_height_max)
    if odd.any():
        out.append(
            Reason(
                "root_height",
                f"pelvis at {z.min():.2f}-{z.max():.2f} m, outside "
                f"[{cfg.root_height_min:g}, {cfg.root_height_max:g}] m",
                ranges_of(odd),
            )
        )
    if T > 1:
        speed = np.linalg.norm(clip.root_lin_vel("world"), axis=1)
        quick = speed > cfg.root_speed_max
        if quick.any():
            out.append(
                Reason(
                    "root_speed",
                    f"pelvis at up to {speed.max():.1f} m/s (> {cfg.root_speed_max:g} m/s)",
                    ranges_of(quick),
                )
            )
    down = {g: m.group_low[g] < h for g, h in cfg.support_height.items() if g in m.group_low}
    support = _stretch(np.any(list(down.values()), axis=0), cfg.support_seconds, fps) if down else []
    if support:
        inside = mask_of(support, T)
        groups = [g for g, d in down.items() if (d & inside).any()]
        out.append(
            Reason(
                "support",
                f"{', '.join(groups)} on the floor for {cfg.support_seconds:g} s or more (crawling, kneeling, "
                "getting up, lying)",
                support,
            )
        )
    nonflat = non_flat_ground(m, config, fps)
    if nonflat:
        out.append(
            Reason(
                "non_flat_ground",
                f"a foot rests still and level over {100 * cfg.step_height:.0f} cm above the floor, or two resting "
                "feet differ by as much (stairs, a box, a slope)",
                nonflat,
            )
        )
    retarget = (clip.provenance or {}).get("retarget") or {}
    if cfg.retarget_flagged and retarget.get("residual_mm"):
        residual = np.asarray(retarget["residual_mm"], dtype=np.float64)
        threshold = float(retarget.get("report", {}).get("threshold_mm", 100.0))
        if len(residual) == T:
            flagged = ~(residual <= threshold)
            if flagged.any():
                out.append(
                    Reason(
                        "retarget",
                        f"the IK could not follow the human: keypoint residual up to {np.nanmax(residual):.0f} mm "
                        f"(> {threshold:.0f} mm)",
                        ranges_of(flagged),
                    )
                )
    return out


def non_flat_ground(m: FrameMeasures, config: FilterConfig, fps: float) -> list[tuple[int, int]]:
    """Frames where a foot rests (still, level) on something: higher than ``step_height`` above the clip's floor
    level, or two resting feet at heights ``step_height`` apart."""
    cfg = config
    n = max(1, int(round(cfg.rest_seconds * fps)))
    still = (m.foot_speed < cfg.rest_speed) & (m.foot_vspeed < cfg.rest_speed) & (m.foot_tilt < cfg.rest_tilt)
    rest = np.stack([mask_of(ranges_of(still[:, f], n), len(still)) for f in range(2)], axis=1)
    floor = float(np.percentile(m.foot_low.min(axis=1), 5)) if len(m.foot_low) else 0.0
    high = (rest & (m.foot_low - floor > cfg.step_height)).any(axis=1)
    apart = rest.all(axis=1) & (np.abs(m.foot_low[:, 0] - m.foot_low[:, 1]) > cfg.step_height)
    return ranges_of(high | apart)


# The decision -------------------------------------------------------------------------------------------------------


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
