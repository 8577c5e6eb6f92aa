"""IK targets from human joints: the G1's geometry, per-clip calibration, and the vectorised target computation.

Everything here is a pure function of arrays over frames (T, ...), so a whole clip is computed in one pass and a
live stream one frame at a time by the same code (a frame is an array of length 1). What needs the past (contact
locking) lives in :mod:`.contacts`, input smoothing in :mod:`.filters`.

Targets follow the human's bone directions with the G1's segment lengths (:mod:`.correspondence`). The pelvis moves
horizontally as ``scale`` x the human pelvis (scale = G1 stature / performer stature); its height comes from the
supporting foot: the pelvis is placed as low as the feet allow (a soft maximum over the feet, so the support can
switch without a kink), each ankle no lower than its floor, the height at which the lowest point of the foot's
collision capsules touches z = 0 at the foot's target orientation. On top of that floor a foot is lifted by the
human's scaled clearance (the lower of its ankle and toe joints above their resting heights, less a dead band); only
the lift both feet share raises the pelvis (a jump), a swing foot's own lift bends its knee. A foot whose every joint
moves horizontally keeps a speed-dependent clearance: a moving foot on the floor would be skating. A planted foot's
target is on its floor. The human floor is never assumed: each foot joint's resting height is measured on the clip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import mujoco
import numpy as np

from humanoid_gpt.governance.mocap import HumanMotion
from humanoid_gpt.governance.quality import FootGeometry
from humanoid_gpt.governance.retarget.contacts import FLAT, NONE, TOE
from humanoid_gpt.governance.retarget.correspondence import (
    REQUIRED_JOINTS,
    BodyTarget,
    Correspondence,
    RetargetError,
    RetargetWarning,
)
from humanoid_gpt.motion.kinematics import quat_to_matrix
from humanoid_gpt.robot.g1 import G1

#: G1 stature (m); scale = G1_STATURE / human stature (LAFAN1 walk: 1.78 m -> 0.74, the pairing's known factor).
G1_STATURE = 1.32
#: A skeleton's head joint sits at about this fraction of the stature (used when there is no head-top joint).
HEAD_JOINT_PER_STATURE = 0.9
PLAUSIBLE_STATURE_M = (1.0, 2.4)
#: Lowest allowed height (m) of some body origins above the floor (their collision shapes' reach below them).
MIN_BODY_HEIGHT: dict[str, float] = {
    "pelvis": 0.16,
    "torso_link": 0.16,
    "left_knee_link": 0.05,
    "right_knee_link": 0.05,
    "left_elbow_link": 0.04,
    "right_elbow_link": 0.04,
    "left_wrist_yaw_link": 0.04,
    "right_wrist_yaw_link": 0.04,
}
FEET = ("left_ankle_roll_link", "right_ankle_roll_link")
#: Canonical joints read in place of a missing spine joint, in order of preference.
SPINE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "spine1": ("spine2",),
    "spine2": ("spine3", "spine1"),
    "spine3": ("spine2", "neck"),
}


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) w, x, y, z with w >= 0 (elementwise: the same result for one frame or many)."""
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    q = np.empty((m.shape[0], 4))
    for i in range(m.shape[0]):
        mujoco.mju_mat2Quat(q[i], m[i].reshape(9))
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(shape + (4,))


def project_so3(m: np.ndarray) -> np.ndarray:
    """The rotation nearest a 3x3 matrix (chordal mean of rotations when ``m`` is their sum)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _frame(keep: str, a: np.ndarray, other: str, b: np.ndarray) -> np.ndarray:
    """Rotation matrices (T, 3, 3) whose columns are the x, y, z axes: axis ``keep`` along ``a`` exactly, axis
    ``other`` in the plane of ``a`` and ``b`` (on b's side)."""
    axes = "xyz"
    i, j = axes.index(keep), axes.index(other)
    k = 3 - i - j
    u = _unit(a)
    # The third axis completes a right-handed frame: e_k = e_i x e_j when (i, j, k) is cyclic, else e_j x e_i.
    cyclic = (j - i) % 3 == 1
    w = _unit(np.cross(u, b) if cyclic else np.cross(b, u))
    v = np.cross(w, u) if cyclic else np.cross(u, w)
    cols = [None, None, None]
    cols[i], cols[j], cols[k] = u, v, w
    return np.stack(cols, axis=-1)


# --- the G1 side ------------------------------------------------------------------------------------------------


@dataclass
class G1Geometry:
    """What the targets need from the G1, measured on the model in its default pose."""

    lengths: dict[str, float]  # body -> segment length from its chain parent (m)
    rigid: dict[str, tuple[np.ndarray, np.ndarray]]  # body -> (position, rotation) in its rigid parent's frame
    foot_points: tuple[np.ndarray, np.ndarray]  # per foot: capsule end points in the ankle roll frame (E, 3)
    foot_radii: tuple[np.ndarray, np.ndarray]
    toe_points: tuple[np.ndarray, np.ndarray]  # per foot (3,) in the ankle roll frame

    @classmethod
    def of(cls, g1: G1, model: mujoco.MjModel, table: tuple[BodyTarget, ...]) -> G1Geometry:
        data = mujoco.MjData(model)
        data.qpos[:] = 0.0
        data.qpos[:7] = g1.default_qpos()[:7]
        data.qpos[g1.qpos_joint_addresses(model)] = g1.default_joint_pos
        mujoco.mj_kinematics(model, data)

        def pose(name: str) -> tuple[np.ndarray, np.ndarray]:
            b = model.body(name).id
            return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

        lengths, rigid = {}, {}
        for t in table:
            p, r = pose(t.body)
            if t.chain is not None:
                lengths[t.body] = float(np.linalg.norm(p - pose(t.chain[0])[0]))
            elif t.rigid is not None:
                pp, pr = pose(t.rigid)
                rigid[t.body] = (pr.T @ (p - pp), pr.T @ r)
        feet = FootGeometry.of(model, FEET)
        # The toe point: the front ends of the foot capsules (where a foot on its toe touches).
        toes = tuple(pts[pts[:, 0] >= pts[:, 0].max() - 0.01].mean(axis=0) for pts in feet.points)
        return cls(lengths, rigid, feet.points, feet.radii, toes)

    def ankle_floor(self, foot: int, rot: np.ndarray) -> np.ndarray:
        """(T,) lowest ankle height at which no capsule of ``foot`` dips below z = 0, at orientations (T, 3, 3)."""
        z = np.einsum("tj,ej->te", rot[:, 2, :], self.foot_points[foot])  # z of each end point relative to the ankle
        return np.max(self.foot_radii[foot] - z, axis=1)


# --- the human side ---------------------------------------------------------------------------------------------


@dataclass
class HumanFrames:
    """The human joints the targets read (:data:`REQUIRED_JOINTS` order): positions (T, K, 3), rotations (T, K, 4)
    w-first or None."""

    positions: np.ndarray
    rotations: np.ndarray | None

    @staticmethod
    def indices(motion: HumanMotion, corr: Correspondence) -> list[int]:
        """Column of each required joint in ``motion`` (preset renames first), or a RetargetError naming the file."""
        out = []
        for name in REQUIRED_JOINTS:
            own = corr.joints.get(name)
            try:
                if own is not None:
                    out.append(motion.joint(own))
                    continue
                # A spine of fewer segments stands in for a missing one (a two-joint BVH spine, a short preset).
                present = [c for c in (name, *SPINE_FALLBACKS.get(name, ())) if c in motion.canonical]
                out.append(motion.joint(present[0] if present else name))
            except KeyError:
                where = motion.provenance.get("path", motion.name)
                named = f" (correspondence {corr.name} names {own!r})" if own else ""
                raise RetargetError(
                    f"{where}: no joint for canonical {name!r}{named}; joints: {', '.join(motion.joint_names)}. "
                    "Fix: pass a mapping file whose 'joints' names it"
                ) from None
        return out

    @classmethod
    def of(cls, motion: HumanMotion, corr: Correspondence) -> HumanFrames:
        idx = cls.indices(motion, corr)
        rot = None if motion.rotations is None else motion.rotations[:, idx]
        return cls(motion.positions[:, idx], rot)

    def __len__(self) -> int:
        return self.positions.shape[0]


J = {name: k for k, name in enumerate(REQUIRED_JOINTS)}


def frame_recipe(name: str, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A G1 body's frame built from human joint positions P (T, K, 3): rotations (T, 3, 3) and a validity score
    (T,) (0 where the frame is undefined, e.g. a straight limb's hinge axis)."""
    T = P.shape[0]
    one = np.ones(T)
    if name == "pelvis":
        y = P[:, J["left_hip"]] - P[:, J["right_hip"]]
        return _frame("y", y, "z", P[:, J["spine3"]] - P[:, J["pelvis"]]), one
    if name == "torso":
        y = P[:, J["left_shoulder"]] - P[:, J["right_shoulder"]]
        return _frame("y", y, "z", P[:, J["spine3"]] - P[:, J["spine1"]]), one
    side, part = name.split("_", 1)
    if part == "shin":
        thigh = _unit(P[:, J[f"{side}_knee"]] - P[:, J[f"{side}_hip"]])
        shin = _unit(P[:, J[f"{side}_ankle"]] - P[:, J[f"{side}_knee"]])
        axis = np.cross(thigh, shin)
        return _frame("z", -shin, "y", axis), np.linalg.norm(axis, axis=-1)
    if part == "forearm":
        upper = _unit(P[:, J[f"{side}_elbow"]] - P[:, J[f"{side}_shoulder"]])
        fore = _unit(P[:, J[f"{side}_wrist"]] - P[:, J[f"{side}_elbow"]])
        axis = np.cross(fore, upper)
        return _frame("x", fore, "y", axis), np.linalg.norm(axis, axis=-1)
    if part == "foot":
        toe = P[:, J[f"{side}_foot"]] - P[:, J[f"{side}_ankle"]]
        flat = toe * np.array([1.0, 1.0, 0.0])
        up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), flat.shape)
        return _frame("x", flat, "z", up), one
    raise KeyError(f"unknown frame recipe {name!r}")


def _foot_pseudo_rotation(side: str, P: np.ndarray) -> np.ndarray:
    """For sources without rotations: a foot frame from positions alone (x toe direction, knee fixes the plane)."""
    toe = P[:, J[f"{side}_foot"]] - P[:, J[f"{side}_ankle"]]
    return _frame("x", toe, "z", P[:, J[f"{side}_knee"]] - P[:, J[f"{side}_ankle"]])


# --- calibration --------------------------------------------------------------------------------------------------


@dataclass
class Calibration:
    """Per-performer constants, measured once on a clip (or given) and then fixed, so a clip and a stream of the
    same performer get the same targets. ``offsets``: body -> rotation (3, 3) with R_target = R_human @ offset."""

    stature: float
    scale: float
    stature_source: str
    ankle_rest: np.ndarray  # (2,) resting height of each ankle joint (left, right), human metres
    toe_rest: np.ndarray  # (2,)
    offsets: dict[str, np.ndarray] = field(default_factory=dict)
    has_rotations: bool = True

    def as_dict(self) -> dict:
        return {
            "stature_m": round(self.stature, 4),
            "scale": round(self.scale, 5),
            "stature_source": self.stature_source,
            "ankle_rest_m": [round(float(v), 4) for v in self.ankle_rest],
            "toe_rest_m": [round(float(v), 4) for v in self.toe_rest],
            "offsets_wxyz": {k: [round(float(v), 5) for v in mat_to_quat(m)] for k, m in self.offsets.items()},
            "has_rotations": self.has_rotations,
        }


def _horizontal_speed(P: np.ndarray, P_prev: np.ndarray, fps: float) -> np.ndarray:
    """Causal speed: |p_t - p_{t-1}| * fps in the horizontal plane (frame 0 uses ``P_prev``)."""
    prev = np.concatenate([P_prev[None], P[:-1]], axis=0)
    return np.linalg.norm((P - prev)[..., :2], axis=-1) * fps


def estimate_stature(motion: HumanMotion) -> float:
    """Standing height from the skeleton: :meth:`HumanMotion.height`, corrected when it measures to the head joint."""
    h = motion.height()
    return h if "head_top" in motion.canonical else h / HEAD_JOINT_PER_STATURE


def calibrate(
    motion: HumanMotion,
    frames: HumanFrames,
    table: tuple[BodyTarget, ...],
    corr: Correspondence,
    height: float | None = None,
) -> Calibration:
    """Scale, resting foot heights and orientation offsets for ``motion``."""
    where = motion.provenance.get("path", motion.name)
    if height is None:
        stature, source = estimate_stature(motion), "estimated"
        lo, hi = PLAUSIBLE_STATURE_M
        if not lo <= stature <= hi:
            raise RetargetError(
                f"{where}: the performer would be {stature:.2f} m tall (outside {lo}-{hi} m): a wrong unit or a "
                "broken skeleton. Fix: read the file with the right unit=, or pass height= if the size is real"
            )
    else:
        if not (np.isfinite(height) and height > 0):
            raise RetargetError(f"{where}: height={height!r} must be a positive number of metres")
        stature, source = float(height), "given"
        measured = estimate_stature(motion)
        if not 0.67 < measured / stature < 1.5:
            warnings.warn(
                f"{where}: height={stature:.2f} m given, but the skeleton measures {measured:.2f} m: a wrong unit? "
                "The clip is retargeted at the given height; check its flagged frames",
                RetargetWarning,
                stacklevel=3,
            )
    P = frames.positions
    rest = {}
    for name in ("left_ankle", "right_ankle", "left_foot", "right_foot"):
        z = P[:, J[name], 2]
        speed = _horizontal_speed(P[:, J[name]], P[0, J[name]], motion.fps)
        low = z < np.percentile(z, 2) + 0.03
        planted = low & (speed < 0.3)
        rest[name] = float(np.median(z[planted] if planted.sum() >= 3 else z[low]))
    calib = Calibration(
        stature=stature,
        scale=G1_STATURE / stature,
        stature_source=source,
        ankle_rest=np.array([rest["left_ankle"], rest["right_ankle"]]),
        toe_rest=np.array([rest["left_foot"], rest["right_foot"]]),
        has_rotations=frames.rotations is not None,
    )
    clearance = foot_clearance(P, calib)
    for t in table:
        if t.frame is None:
            continue
        if t.body in corr.offsets:
            calib.offsets[t.body] = quat_to_matrix(np.asarray(corr.offsets[t.body], dtype=float))
            continue
        target, score = frame_recipe(t.frame, P)
        if t.frame.endswith("_foot"):
            side = t.frame.split("_")[0]
            f = 0 if side == "left" else 1
            speed = _horizontal_speed(P[:, J[f"{side}_foot"]], P[0, J[f"{side}_foot"]], motion.fps)
            flat = (clearance[:, f, 0] < 0.02) & (clearance[:, f, 1] < 0.02) & (speed < 0.2)
            score = flat.astype(float)
        if frames.rotations is not None:
            source_rot = quat_to_matrix(frames.rotations[:, J[t.frame_joint or t.rot_joint]])
        elif t.frame.endswith("_foot"):
            source_rot = _foot_pseudo_rotation(t.frame.split("_")[0], P)
        else:
            continue  # positions only: the recipe's own frame is the target (see TargetBuilder)
        use = score > 0.5
        if use.sum() < 10:  # too few clean frames: take the best-defined ones
            use = score >= np.sort(score)[-min(len(score), 10)]
        calib.offsets[t.body] = project_so3(np.einsum("tji,tjk->ik", source_rot[use], target[use]))
    return calib


def foot_clearance(P: np.ndarray, calib: Calibration) -> np.ndarray:
    """(T, 2, 2): per foot, how far (human metres, >= 0) its ankle and toe joints are above their resting heights."""
    out = np.empty((P.shape[0], 2, 2))
    for f, side in enumerate(("left", "right")):
        out[:, f, 0] = P[:, J[f"{side}_ankle"], 2] - calib.ankle_rest[f]
        out[:, f, 1] = P[:, J[f"{side}_foot"], 2] - calib.toe_rest[f]
    return np.maximum(out, 0.0)


# --- targets ----------------------------------------------------------------------------------------------------


@dataclass
class Targets:
    """IK targets for T frames: positions (T, B, 3), rotations (T, B, 3, 3) in the table's body order; the human's
    foot contacts (T, 2); each foot's lowest allowed ankle height (T, 2)."""

    pos: np.ndarray
    rot: np.ndarray
    contact: np.ndarray  # (T, 2) contact modes (.contacts: NONE, FLAT, TOE)
    ankle_floor: np.ndarray
    toe_xy: np.ndarray  # (T, 2, 2) each foot's toe point relative to its ankle, horizontal, at the target orientation


class TargetBuilder:
    """Computes :class:`Targets` from human frames with fixed geometry, table and calibration."""

    def __init__(
        self,
        table: tuple[BodyTarget, ...],
        geometry: G1Geometry,
        calib: Calibration,
        fps: float,
        contact_height: float = 0.03,
        contact_speed: float = 0.35,
        floor_margin: float = 0.0005,
        clearance_deadband: float = 0.01,
        support_softness: float = 0.005,
        moving_clearance: float = 0.03,
        moving_clearance_time: float = 0.03,
    ):
        self.table = table
        self.geom = geometry
        self.calib = calib
        self.fps = fps
        self.contact_height = contact_height
        self.contact_speed = contact_speed
        self.floor_margin = floor_margin
        self.clearance_deadband = clearance_deadband
        self.support_softness = support_softness
        self.moving_clearance = moving_clearance
        self.moving_clearance_time = moving_clearance_time
        self.index = {t.body: k for k, t in enumerate(table)}
        self.feet = [self.index[f] for f in FEET]

    def human_contacts(self, P: np.ndarray, P_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Human foot contact modes (T, 2) (:mod:`.contacts`: none, flat, toe) from each joint's height above its
        resting height and causal speed; each foot's clearance (T, 2) (the lower of its two joints above their
        resting heights) and its slowest joint's horizontal speed (T, 2), human units."""
        clear = foot_clearance(P, self.calib)
        modes = np.zeros((P.shape[0], 2), dtype=np.int64)
        slowest = np.empty((P.shape[0], 2))
        for f, side in enumerate(("left", "right")):
            joints = [J[f"{side}_ankle"], J[f"{side}_foot"]]
            speed = _horizontal_speed(P[:, joints], P_prev[joints], self.fps)
            slowest[:, f] = speed.min(axis=1)
            planted = (clear[:, f] < self.contact_height) & (speed < self.contact_speed)  # (T, 2): ankle, toe
            modes[:, f] = np.where(planted[:, 0], FLAT, np.where(planted[:, 1], TOE, NONE))
        return modes, clear.min(axis=2), slowest

    def __call__(self, P: np.ndarray, Q: np.ndarray | None, P_prev: np.ndarray) -> Targets:
        """Targets for frames P (T, K, 3), Q (T, K, 4) or None; ``P_prev`` (K, 3): the frame before P[0]."""
        T, B = P.shape[0], len(self.table)
        s = self.calib.scale
        pos = np.zeros((T, B, 3))
        rot = np.broadcast_to(np.eye(3), (T, B, 3, 3)).copy()
        for k, t in enumerate(self.table):
            if t.frame is None:
                continue
            if Q is not None:
                joint = t.rot_joint if t.rot_joint is not None else t.joint
                rot[:, k] = quat_to_matrix(Q[:, J[joint]]) @ self.calib.offsets[t.body]
            elif t.frame.endswith("_foot"):
                rot[:, k] = _foot_pseudo_rotation(t.frame.split("_")[0], P) @ self.calib.offsets[t.body]
            else:
                rot[:, k] = frame_recipe(t.frame, P)[0]
        pelvis = self.index["pelvis"]
        pos[:, pelvis, :2] = s * P[:, J["pelvis"], :2]  # height set below, from the feet
        for k, t in enumerate(self.table):
            if t.rigid is not None:
                parent = self.index[t.rigid]
                offset, r_off = self.geom.rigid[t.body]
                pos[:, k] = pos[:, parent] + rot[:, parent] @ offset
                if t.frame is None:
                    rot[:, k] = rot[:, parent] @ r_off
            elif t.chain is not None:
                parent = self.index[t.chain[0]]
                a, b = t.chain[1]
                pos[:, k] = pos[:, parent] + self.geom.lengths[t.body] * _unit(P[:, J[b]] - P[:, J[a]])
        # Height: the pelvis as low as the feet (and other bodies) allow; each foot's lowest allowed ankle height is
        # its capsule floor at the target orientation plus the human's scaled clearance.
        modes, clearance, speed = self.human_contacts(P, P_prev)
        contact = modes != NONE
        base, lift, moving = np.empty((T, 2)), np.empty((T, 2)), np.empty((T, 2))
        for f, k in enumerate(self.feet):
            # The human's clearance, scaled, less a dead band: a foot joint a few mm above its resting height is
            # planted (mocap noise), and a continuous map keeps the target smooth when contacts switch. A foot
            # whose every point moves is not planted, so it must not touch: it keeps a clearance that grows with
            # its speed (else it would slide along the floor, the skating the G1 cannot do).
            lift[:, f] = s * np.maximum(clearance[:, f] - self.clearance_deadband, 0.0)
            base[:, f] = self.geom.ankle_floor(f, rot[:, k]) + self.floor_margin
            moving[:, f] = np.minimum(self.moving_clearance, s * speed[:, f] * self.moving_clearance_time)
        # The supporting foot sets the pelvis height: both feet get only the lift they share (the whole body rises
        # in a jump; a swing foot's own lift bends its knee instead of raising the pelvis off the standing foot).
        need = base + lift.min(axis=1, keepdims=True) - pos[:, self.feet, 2]
        for body, h in MIN_BODY_HEIGHT.items():
            if body in self.index:
                need = np.concatenate([need, (h - pos[:, self.index[body], 2])[:, None]], axis=1)
        # A soft maximum: the support switching from one foot to the other bends the pelvis height's path instead
        # of kinking it (a kink is a jerk spike); it lifts by at most tau * log(2) when both feet need the same.
        top = need.max(axis=1, keepdims=True)
        tau = self.support_softness
        height = top[:, 0] + tau * np.log(np.exp((need - top) / tau).sum(axis=1)) if tau > 0 else top[:, 0]
        pos[..., 2] += height[:, None]
        # A planted foot goes to its floor (the other foot may stand a little higher than the pelvis put it); a
        # moving one clears it (lifting that foot, not the pelvis).
        floor = base + np.maximum(lift, moving)
        for f, k in enumerate(self.feet):
            pos[:, k, 2] = np.where(contact[:, f], floor[:, f], np.maximum(pos[:, k, 2], floor[:, f]))
        toe = np.stack([rot[:, k] @ self.geom.toe_points[f] for f, k in enumerate(self.feet)], axis=1)[..., :2]
        return Targets(pos, rot, modes, floor, toe)
