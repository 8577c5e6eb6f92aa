"""The filter's settings: :class:`FilterConfig`, every threshold of the filter with its unit and why its default is
what it is, the default label rules, and :meth:`FilterConfig.from_dict`, which refuses settings that cannot work."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.governance.quality import SUPPORT_GROUPS

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
