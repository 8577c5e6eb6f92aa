"""The human -> G1 correspondence, kept as data: which human joint drives which G1 body, how, and how much.

One table (:data:`G1_TARGETS`) works in canonical joint names (:mod:`humanoid_gpt.governance.mocap.names`), so BVH
(LAFAN1), CMU ASF/AMC and SMPL-like joint positions share it; a skeleton preset (:data:`SKELETONS`) only lists what
differs for one source (a joint to read under another name, a weight, a fixed orientation offset).

How a row becomes an IK target (see :mod:`.targets`):

- position: ``chain = (parent_body, (joint_a, joint_b))``: the target is the parent body's target plus the G1's own
  segment length (measured on the G1 in its default pose) along the human's bone direction joint_a -> joint_b. So the
  G1 copies the human's limb directions, never the human's limb lengths. ``rigid = parent_body``: the target is the
  parent's target pose times the G1's fixed offset between the two bodies (hips and torso on the pelvis, shoulders on
  the torso; their position weight is 0: they only carry their children's chains). The pelvis is the root:
  horizontal position = scale x human pelvis, height from the supporting foot.
- orientation: ``rot_joint``'s global rotation times a constant offset. The offset is calibrated per clip (the
  chordal mean over frames of R_human^T R_frame, where R_frame is the G1 body's frame built from joint positions by
  the ``frame`` recipe), unless the preset fixes it (``offsets``). ``frame_joint`` names the human joint whose
  rotation is calibrated against the recipe when it is not ``rot_joint`` (a hand uses its forearm's offset: at a
  straight human wrist the G1's wrist joints are at zero). Positions-only sources use the recipe's frame directly.
- weights: ``pos`` (per metre) and ``rot`` (per radian) costs of mink frame tasks.

A mapping file (YAML or JSON) holds the same fields: ``{"name": ..., "joints": {canonical: own name}, "weights":
{body: {"pos": w, "rot": w}}, "offsets": {body: [w, x, y, z]}, "rot_joints": {body: canonical}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import HGPTError


class RetargetError(HGPTError, ValueError):
    """A motion cannot be retargeted: the message names the file, the frame or joint, and the fix."""


class RetargetWarning(UserWarning):
    """A motion was retargeted, but something deserves a look (flagged frames, a given height the skeleton
    contradicts); the message names the file."""


@dataclass(frozen=True)
class BodyTarget:
    """One G1 body driven by the human. See the module docstring for the fields."""

    body: str
    joint: str  # canonical human joint at the body's position (for residuals and contact)
    pos: float
    rot: float
    rot_joint: str | None = None
    frame: str | None = None  # frame recipe in .targets.FRAME_RECIPES
    frame_joint: str | None = None
    chain: tuple[str, tuple[str, str]] | None = None
    rigid: str | None = None


def _side(side: str) -> list[BodyTarget]:
    s = side
    return [
        BodyTarget(f"{s}_hip_roll_link", f"{s}_hip", pos=0.0, rot=0.0, rigid="pelvis"),
        BodyTarget(
            f"{s}_knee_link", f"{s}_knee", pos=1.0, rot=0.05, rot_joint=f"{s}_knee", frame=f"{s}_shin",
            chain=(f"{s}_hip_roll_link", (f"{s}_hip", f"{s}_knee")),
        ),
        BodyTarget(
            f"{s}_ankle_roll_link", f"{s}_ankle", pos=4.0, rot=0.6, rot_joint=f"{s}_ankle", frame=f"{s}_foot",
            chain=(f"{s}_knee_link", (f"{s}_knee", f"{s}_ankle")),
        ),
        BodyTarget(f"{s}_shoulder_roll_link", f"{s}_shoulder", pos=0.0, rot=0.0, rigid="torso_link"),
        BodyTarget(
            f"{s}_elbow_link", f"{s}_elbow", pos=1.0, rot=0.05, rot_joint=f"{s}_elbow", frame=f"{s}_forearm",
            chain=(f"{s}_shoulder_roll_link", (f"{s}_shoulder", f"{s}_elbow")),
        ),
        BodyTarget(
            f"{s}_wrist_yaw_link", f"{s}_wrist", pos=1.0, rot=0.05, rot_joint=f"{s}_wrist", frame=f"{s}_forearm",
            frame_joint=f"{s}_elbow", chain=(f"{s}_elbow_link", (f"{s}_elbow", f"{s}_wrist")),
        ),
    ]  # fmt: skip


#: The shared table, in canonical joint names. Order matters: a body comes after the body its target hangs from.
#: Weights: the pelvis and the feet highest (the root path and the contacts must hold; the limbs bend to fit), limbs 1,
#: orientation costs small except where orientation is the target's point (pelvis, torso, feet). The torso turns with
#: the middle spine (spine2; closer to Unitree's result on LAFAN1 than spine1 or spine3), its frame measured from
#: spine1 -> spine3 and the shoulder line.
G1_TARGETS: tuple[BodyTarget, ...] = (
    BodyTarget("pelvis", "pelvis", pos=5.0, rot=0.8, rot_joint="pelvis", frame="pelvis"),
    BodyTarget("torso_link", "spine1", pos=0.0, rot=0.8, rot_joint="spine2", frame="torso", rigid="pelvis"),
    *_side("left"),
    *_side("right"),
)

#: Human joints the targets read, by canonical name (the retargeter refuses a motion missing one of them; a missing
#: spine joint is read from its neighbour, ``targets.SPINE_FALLBACKS``).
REQUIRED_JOINTS: tuple[str, ...] = (
    "pelvis", "spine1", "spine2", "spine3",
    *(f"{s}_{j}" for s in ("left", "right")
      for j in ("hip", "knee", "ankle", "foot", "shoulder", "elbow", "wrist")),
)  # fmt: skip


@dataclass(frozen=True)
class Correspondence:
    """A skeleton preset: the shared table plus what differs for one source.

    ``joints``: canonical name -> the source's own joint name, read instead of the joint the reader tagged with that
    canonical name. ``weights``: body -> {"pos": w, "rot": w} overrides. ``offsets``: body -> fixed orientation
    offset (w, x, y, z) instead of the per-clip calibration. ``rot_joints``: body -> canonical joint whose rotation
    drives it.
    """

    name: str
    joints: dict[str, str] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    offsets: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    rot_joints: dict[str, str] = field(default_factory=dict)

    def targets(self) -> tuple[BodyTarget, ...]:
        """The shared table with this preset's weight and rotation-joint overrides applied."""
        known = {t.body for t in G1_TARGETS}
        for table in (self.weights, self.offsets, self.rot_joints):
            unknown = sorted(set(table) - known)
            if unknown:
                raise RetargetError(f"preset {self.name!r}: unknown G1 bodies {unknown}; known: {sorted(known)}")
        out = []
        for t in G1_TARGETS:
            w = self.weights.get(t.body, {})
            out.append(
                replace(
                    t,
                    pos=float(w.get("pos", t.pos)),
                    rot=float(w.get("rot", t.rot)),
                    rot_joint=self.rot_joints.get(t.body, t.rot_joint),
                )
            )
        return tuple(out)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "joints": dict(self.joints),
            "weights": {k: dict(v) for k, v in self.weights.items()},
            "offsets": {k: list(v) for k, v in self.offsets.items()},
            "rot_joints": dict(self.rot_joints),
        }


#: Skeleton presets. ``lafan1`` (and any BVH whose names the reader recognises) needs nothing beyond the table.
#: CMU's ASF has a short ``lwrist`` bone between the forearm (``lradius``) and the hand: the reader tags ``lhand``
#: (mid-hand) as the canonical wrist, but the G1's wrist sits at the start of ``lwrist``.
SKELETONS: dict[str, Correspondence] = {
    "bvh": Correspondence("bvh"),
    "lafan1": Correspondence("lafan1"),
    "cmu": Correspondence("cmu", joints={"left_wrist": "lwrist", "right_wrist": "rwrist"}),
    "smpl": Correspondence("smpl"),
}


def preset_for(provenance: dict) -> str:
    """The default preset for a motion from its reader's provenance (format and file name)."""
    fmt = str(provenance.get("format", "")).lower()
    if fmt in ("amc", "asf", "asf/amc"):
        return "cmu"
    if fmt == "bvh":
        return "lafan1" if "lafan" in str(provenance.get("path", "")).lower() else "bvh"
    return "smpl"


def load_mapping(path: str | Path) -> Correspondence:
    """A correspondence from a YAML or JSON mapping file (fields as :class:`Correspondence`)."""
    path = Path(path)
    if not path.is_file():
        raise RetargetError(f"{path}: mapping file not found")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error is the same user error
        raise RetargetError(f"{path}: not a readable mapping file ({e}). Fix: write YAML or JSON") from e
    if not isinstance(data, dict):
        raise RetargetError(f"{path}: a mapping file holds a dict with joints, weights, offsets, rot_joints")
    allowed = {"name", "joints", "weights", "offsets", "rot_joints"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise RetargetError(f"{path}: unknown keys {extra}; allowed: {sorted(allowed)}")
    offsets = {}
    for body, q in (data.get("offsets") or {}).items():
        q = np.asarray(q, dtype=float)
        if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) < 1e-6:
            raise RetargetError(f"{path}: offsets.{body} must be a quaternion [w, x, y, z]")
        offsets[body] = tuple(q / np.linalg.norm(q))
    corr = Correspondence(
        name=str(data.get("name", path)),  # errors about its joints then name the file
        joints=dict(data.get("joints") or {}),
        weights={k: dict(v) for k, v in (data.get("weights") or {}).items()},
        offsets=offsets,
        rot_joints=dict(data.get("rot_joints") or {}),
    )
    try:
        corr.targets()
    except RetargetError as e:
        raise RetargetError(f"{path}: {e}") from None
    return corr


def resolve(skeleton: str | None = None, mapping: str | Path | None = None, provenance: dict | None = None):
    """The correspondence for ``mapping`` (a file), else the preset ``skeleton``, else the default for the motion."""
    if mapping is not None:
        return load_mapping(mapping)
    name = skeleton or preset_for(provenance or {})
    if name not in SKELETONS:
        raise RetargetError(f"unknown skeleton preset {name!r}; known: {', '.join(SKELETONS)} (or pass a mapping file)")
    return SKELETONS[name]
