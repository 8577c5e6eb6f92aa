"""One canonical joint naming for every human skeleton, and the raw-position skeleton presets (as data, one place).

Canonical names are the SMPL-X body and hand joint names (``pelvis``, ``left_hip``, ``left_knee``, ``left_ankle``,
``left_foot`` (ball of the foot / toe joint), ``spine1..3``, ``neck``, ``head``, ``left_collar``, ``left_shoulder``,
``left_elbow``, ``left_wrist``, ``left_hand``, ``left_index1..3`` ...) plus ``head_top``. A retargeter needs one
correspondence per canonical name instead of one per source skeleton. Sources keep their own joint names; the
canonical name of each joint is stored beside it (None when a joint has no canonical counterpart).

Presets for raw joint positions (columns of a (T, J, 3) array):

- ``smpl24``: SMPL's 24 joints in SMPL's order; ``smpl22``: its first 22 (SMPL-H / SMPL-X body without the hands).
- ``smplh52``: the 22 body joints, then 15 finger joints per hand (left, then right), each hand in SMPL-H's order
  index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3.
- ``phc24``: the same 24 joints reordered limb by limb (the order of PHC and tools built on it), ``phc22`` that order
  without the two Hand joints, ``phc52`` with each Hand replaced by the 15 finger joints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FINGERS = tuple(f"{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3))

#: Canonical joints and their canonical parent (None for the root). Parents are listed before children.
CANONICAL_PARENTS: dict[str, str | None] = {
    "pelvis": None,
    "left_hip": "pelvis",
    "right_hip": "pelvis",
    "spine1": "pelvis",
    "left_knee": "left_hip",
    "right_knee": "right_hip",
    "spine2": "spine1",
    "left_ankle": "left_knee",
    "right_ankle": "right_knee",
    "spine3": "spine2",
    "left_foot": "left_ankle",
    "right_foot": "right_ankle",
    "neck": "spine3",
    "left_collar": "spine3",
    "right_collar": "spine3",
    "head": "neck",
    "left_shoulder": "left_collar",
    "right_shoulder": "right_collar",
    "left_elbow": "left_shoulder",
    "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow",
    "right_wrist": "right_elbow",
    "left_hand": "left_wrist",
    "right_hand": "right_wrist",
    "head_top": "head",
    **{
        f"{side}_{f}": (f"{side}_wrist" if f.endswith("1") else f"{side}_{f[:-1]}{int(f[-1]) - 1}")
        for side in ("left", "right")
        for f in _FINGERS
    },
}
CANONICAL_NAMES: tuple[str, ...] = tuple(CANONICAL_PARENTS)

# SMPL's own short names -> canonical ("L_" / "R_" prefixes expand to left_ / right_).
_SMPL24_OWN = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
    "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
    "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)  # fmt: skip
_PHC_BODY_OWN = (
    "Pelvis", "L_Hip", "L_Knee", "L_Ankle", "L_Toe", "R_Hip", "R_Knee", "R_Ankle", "R_Toe", "Torso", "Spine",
    "Chest", "Neck", "Head",
)  # fmt: skip
_PHC_RENAME = {"Torso": "spine1", "Spine": "spine2", "Chest": "spine3", "Toe": "foot", "Thorax": "collar"}
_FINGERS_OWN = tuple(f"{f.capitalize()}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3))


def _smpl_style_canonical(own: str) -> str:
    """'L_Knee' -> 'left_knee', 'Torso' -> 'spine1', 'R_Thorax' -> 'right_collar', 'L_Index2' -> 'left_index2'."""
    side, _, part = own.rpartition("_")
    part = _PHC_RENAME.get(part, part).lower()
    return {"L": "left_", "R": "right_", "": ""}[side] + part


def _arm(side: str, hand: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{side}_{p}" for p in ("Thorax", "Shoulder", "Elbow", "Wrist") + hand)


@dataclass(frozen=True)
class Preset:
    """A column layout of raw joint positions: own names, canonical names and parents (-1 for the root)."""

    name: str
    joints: tuple[str, ...]
    canonical: tuple[str, ...]
    parents: tuple[int, ...]


def _preset(name: str, own: tuple[str, ...]) -> Preset:
    canonical = tuple(_smpl_style_canonical(j) for j in own)
    index = {c: i for i, c in enumerate(canonical)}
    parents = []
    for c in canonical:
        parent = CANONICAL_PARENTS[c]
        # A finger's canonical parent is the wrist; a missing canonical parent is a preset bug, caught at import.
        parents.append(-1 if parent is None else index[parent])
    return Preset(name, own, canonical, tuple(parents))


_SMPLH52_OWN = _SMPL24_OWN[:22] + tuple(f"{s}_{f}" for s in ("L", "R") for f in _FINGERS_OWN)
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset("smpl24", _SMPL24_OWN),
        _preset("smpl22", _SMPL24_OWN[:22]),
        _preset("smplh52", _SMPLH52_OWN),
        _preset("phc24", _PHC_BODY_OWN + _arm("L", ("Hand",)) + _arm("R", ("Hand",))),
        _preset("phc22", _PHC_BODY_OWN + _arm("L", ()) + _arm("R", ())),
        _preset("phc52", _PHC_BODY_OWN + _arm("L", _FINGERS_OWN) + _arm("R", _FINGERS_OWN)),
    )
}

# Joint names of common BVH skeletons (LAFAN1, Mixamo-style, CMU's BVH conversion) and of CMU's ASF, normalised by
# :func:`_key`. Heuristic by nature: a skeleton not listed gets None and a retargeter needs an explicit mapping.
_SIDED_BVH = {
    "upleg": "hip", "thigh": "hip", "upperleg": "hip", "hip": "hip",
    "leg": "knee", "shin": "knee", "lowerleg": "knee", "calf": "knee", "knee": "knee",
    "foot": "ankle", "ankle": "ankle",
    "toe": "foot", "toes": "foot", "toebase": "foot",
    "shoulder": "collar", "clavicle": "collar", "collar": "collar",
    "arm": "shoulder", "upperarm": "shoulder",
    "forearm": "elbow", "lowerarm": "elbow", "elbow": "elbow",
    "hand": "wrist", "wrist": "wrist",
}  # fmt: skip
_BVH_ALIASES = {
    "hips": "pelvis", "hip": "pelvis", "pelvis": "pelvis",
    "spine": "spine1", "spine1": "spine2", "spine2": "spine3", "chest": "spine2", "upperchest": "spine3",
    "neck": "neck", "head": "head", "headtopend": "head_top", "headend": "head_top", "headtop": "head_top",
    **{f"{side}{part}": f"{full}_{canon}" for part, canon in _SIDED_BVH.items()
       for side, full in (("left", "left"), ("right", "right"))},
}  # fmt: skip
_ASF_ALIASES = {
    "root": "pelvis", "upperback": "spine1", "thorax": "spine2", "lowerneck": "spine3", "upperneck": "neck",
    "head": "head", "headend": "head_top",
    **{f"{s}{bone}": f"{full}_{canon}" for s, full in (("l", "left"), ("r", "right")) for bone, canon in (
        ("femur", "hip"), ("tibia", "knee"), ("foot", "ankle"), ("toes", "foot"), ("clavicle", "collar"),
        ("humerus", "shoulder"), ("radius", "elbow"), ("hand", "wrist"), ("fingers", "hand"))},
}  # fmt: skip
ALIASES: dict[str, dict[str, str]] = {"bvh": _BVH_ALIASES, "asf": _ASF_ALIASES}


def _key(name: str) -> str:
    """Lower case, namespace prefix ('mixamorig:') and separators removed: 'mixamorig:Left_Up-Leg' -> 'leftupleg'."""
    return re.sub(r"[^a-z0-9]", "", name.rsplit(":", 1)[-1].lower())


def canonical_names(names: tuple[str, ...], table: str) -> tuple[str | None, ...]:
    """Canonical name per joint from the alias ``table`` ('bvh' or 'asf'); None where unknown. A canonical name
    claimed twice keeps its first joint (parents come first, so the joint nearest the root wins)."""
    aliases = ALIASES[table]
    out: list[str | None] = []
    seen: set[str] = set()
    for name in names:
        c = aliases.get(_key(name))
        out.append(None if c is None or c in seen else c)
        if c is not None:
            seen.add(c)
    return tuple(out)
