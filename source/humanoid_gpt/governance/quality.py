"""Physical plausibility scores of a G1 clip: what the retargeter is judged on and what the filtering stage gates on.

Every score is a function of a :class:`~humanoid_gpt.motion.clip.MotionClip` and the G1 model alone (forward
kinematics with MuJoCo, no simulation), so a retargeted clip and a clip from any other source are scored alike.
Lower is better for all of them. Definitions (the units are part of the contract):

- feet: each foot's lowest point is the lowest point of its collision capsules (``*foot*_collision`` geoms on the
  ankle roll link); a foot is **in contact** in a frame when that point is below ``contact_height`` (2 cm).
- ``penetration_mm``: mean over frames of how far the lower foot is below the floor (0 when above); ``max`` too.
- ``float_mm``: mean height above the floor of a foot while it is in contact (a planted foot should touch).
- ``skate_cm_s``: mean horizontal speed, while in contact, of the foot's material point that is lowest (central
  differences of that body-fixed point: a foot rolling over its toe or heel is not sliding).
- ``limit_excess_rad``: largest excess of a joint angle over the model's range; ``limit_frames``: frames with any
  excess above 1e-3 rad.
- ``self_collision_frames``: frames in which two robot geoms penetrate (MuJoCo contacts of the model with
  self-collisions on, the model's own exclusions and parent-child filtering applied, depth over 1 mm).
- ``jerk``: mean absolute third derivative of the joint angles, rad/s^3 (finite differences at the clip's rate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mujoco
import numpy as np

from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1

FEET: tuple[str, str] = ("left_ankle_roll_link", "right_ankle_roll_link")
CONTACT_HEIGHT = 0.02
LIMIT_TOL = 1e-3
COLLISION_DEPTH = 1e-3


@dataclass
class QualityScores:
    """Physical scores of one clip (module docstring). Lower is better."""

    frames: int
    penetration_mm: float
    penetration_max_mm: float
    float_mm: float
    skate_cm_s: float
    contact_fraction: float
    limit_excess_rad: float
    limit_frames: int
    self_collision_frames: int
    jerk: float

    def as_dict(self) -> dict:
        return asdict(self)


def collision_model(g1: G1) -> mujoco.MjModel:
    """The G1 with self-collisions on and no floor: its contacts are robot-robot contacts only."""
    return g1.model(actuators="none", floor=False, self_collisions=True)


@dataclass
class FootGeometry:
    """Each foot's capsules as body-frame segment end points (E, 3) and radii (E,), resolved by name from a model.

    A capsule's lowest point lies below one of its two end points (at the radius), so the end points are all a
    floor test needs; the same points give the retargeter its foot floor."""

    body_ids: np.ndarray  # (2,)
    points: tuple[np.ndarray, np.ndarray]
    radii: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, model: mujoco.MjModel, feet: tuple[str, str] = FEET) -> FootGeometry:
        bodies = np.array([model.body(f).id for f in feet])
        points, radii = [], []
        for b in bodies:
            ids = [
                g
                for g in range(model.ngeom)
                if model.geom_bodyid[g] == b
                and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE
                and "foot" in (model.geom(g).name or "")
            ]
            if not ids:
                raise ValueError(f"body {model.body(b).name} has no *foot* capsule geoms")
            pts, rad = [], []
            for g in ids:
                axis = np.empty(9)
                mujoco.mju_quat2Mat(axis, model.geom_quat[g])
                half = model.geom_size[g, 1] * axis.reshape(3, 3)[:, 2]
                pts += [model.geom_pos[g] + half, model.geom_pos[g] - half]
                rad += [model.geom_size[g, 0]] * 2
            points.append(np.array(pts))
            radii.append(np.array(rad))
        return cls(bodies, (points[0], points[1]), (radii[0], radii[1]))


#: Body parts that bear weight only when a motion leaves its feet (crawling, kneeling, getting up, lying): each a
#: group of collision geoms whose lowest point :func:`frame_measures` tracks. Names are the G1 MJCF's.
SUPPORT_GROUPS: dict[str, tuple[str, ...]] = {
    "hands": ("left_hand_collision", "right_hand_collision", "left_wrist_collision", "right_wrist_collision"),
    "knees": ("left_shin_collision", "right_shin_collision"),
    "elbows": ("left_elbow_yaw_collision", "right_elbow_yaw_collision"),
    "trunk": ("pelvis_collision", "torso_collision", "head_collision"),
}


@dataclass
class FrameMeasures:
    """Per-frame kinematic measures of a clip from one forward-kinematics pass (:func:`frame_measures`).

    ``foot_low`` (T, 2) m: lowest point of each foot's capsules; ``foot_speed`` (T, 2) m/s: horizontal speed of the
    foot's lowest material point; ``foot_vspeed`` (T, 2) m/s: its vertical speed; ``foot_tilt`` (T, 2) rad: angle
    of each sole's normal from world up; ``collision`` (T,) bool: a robot-robot penetration deeper than
    :data:`COLLISION_DEPTH`; ``collision_depth`` (T,) m: the deepest one (0 without); ``group_low``: per
    :data:`SUPPORT_GROUPS` name, the lowest point (T,) m of that group's geoms."""

    foot_low: np.ndarray
    foot_speed: np.ndarray
    foot_vspeed: np.ndarray
    foot_tilt: np.ndarray
    collision: np.ndarray
    collision_depth: np.ndarray
    group_low: dict[str, np.ndarray]


def _geom_low(model: mujoco.MjModel, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, half lengths and radii of capsule/sphere geoms by name (a missing name is an error naming it)."""
    ids, half, radius = [], [], []
    for name in names:
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        if gid < 0:
            raise ValueError(f"the G1 model has no geom {name!r} (support groups name collision geoms)")
        kind = int(model.geom_type[gid])
        if kind not in (int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_SPHERE)):
            raise ValueError(f"geom {name!r} is not a capsule or sphere; support groups use those")
        ids.append(gid)
        radius.append(model.geom_size[gid, 0])
        half.append(model.geom_size[gid, 1] if kind == int(mujoco.mjtGeom.mjGEOM_CAPSULE) else 0.0)
    return np.array(ids, dtype=np.int64), np.array(half), np.array(radius)


def frame_measures(
    clip: MotionClip,
    g1: G1,
    model: mujoco.MjModel | None = None,
    groups: dict[str, tuple[str, ...]] | None = None,
) -> FrameMeasures:
    """Per-frame foot, self-collision and support-part measures of ``clip`` (:class:`FrameMeasures`), in one
    kinematics pass. ``model``: a :func:`collision_model` to reuse; ``groups``: support groups (default
    :data:`SUPPORT_GROUPS`; ``{}`` for none)."""
    model = model or collision_model(g1)
    groups = SUPPORT_GROUPS if groups is None else groups
    data = mujoco.MjData(model)
    feet = FootGeometry.of(model)
    adr = g1.qpos_joint_addresses(model)
    geoms = {name: _geom_low(model, names) for name, names in groups.items()}
    all_ids = np.concatenate([g[0] for g in geoms.values()]) if geoms else np.zeros(0, dtype=np.int64)
    qpos = clip.qpos()
    T = clip.num_frames
    pos = np.empty((T, 2, 3))
    mat = np.empty((T, 2, 3, 3))
    gz = np.empty((T, len(all_ids)))
    gaxis = np.empty((T, len(all_ids)))
    depth = np.zeros(T)
    for t in range(T):
        data.qpos[:7] = qpos[t, :7]
        data.qpos[adr] = qpos[t, 7:]
        mujoco.mj_kinematics(model, data)
        pos[t] = data.xpos[feet.body_ids]
        mat[t] = data.xmat[feet.body_ids].reshape(2, 3, 3)
        if len(all_ids):
            gz[t] = data.geom_xpos[all_ids, 2]
            gaxis[t] = data.geom_xmat[all_ids, 8]  # z component of each geom's long (local z) axis
        mujoco.mj_collision(model, data)
        if data.ncon:
            depth[t] = max(0.0, -float(data.contact.dist[: data.ncon].min()))
    low = np.empty((T, 2))
    speed = np.zeros((T, 2))
    vspeed = np.zeros((T, 2))
    rows = np.arange(T)
    for f in range(2):
        world = pos[:, f, None, :] + np.einsum("tij,ej->tei", mat[:, f], feet.points[f])  # (T, E, 3)
        z = world[..., 2] - feet.radii[f]
        k = z.argmin(axis=1)
        low[:, f] = z[rows, k]
        if T > 1:
            nxt, prv = np.minimum(rows + 1, T - 1), np.maximum(rows - 1, 0)
            delta = world[nxt, k] - world[prv, k]
            speed[:, f] = np.linalg.norm(delta[:, :2], axis=-1) / ((nxt - prv) * clip.dt)
            vspeed[:, f] = np.abs(delta[:, 2]) / ((nxt - prv) * clip.dt)
    tilt = np.arccos(np.clip(mat[:, :, 2, 2], -1.0, 1.0))  # sole normal = the ankle roll link's z axis
    group_low, col = {}, 0
    for name, (ids, half, radius) in geoms.items():
        n = len(ids)
        lows = gz[:, col : col + n] - np.abs(gaxis[:, col : col + n]) * half - radius
        group_low[name] = lows.min(axis=1)
        col += n
    return FrameMeasures(low, speed, vspeed, tilt, depth > COLLISION_DEPTH, depth, group_low)


def foot_tracks(clip: MotionClip, g1: G1, model: mujoco.MjModel | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Per frame: the lowest point of each foot (T, 2), the horizontal speed of the foot's material point that is
    lowest (T, 2; central differences of that body-fixed point, so a foot rolling over its toe does not count as
    sliding), and the number of frames with a robot-robot penetration deeper than 1 mm (one kinematics pass)."""
    m = frame_measures(clip, g1, model, groups={})
    return m.foot_low, m.foot_speed, int(m.collision.sum())


def clip_quality(
    clip: MotionClip, g1: G1, model: mujoco.MjModel | None = None, contact_height: float = CONTACT_HEIGHT
) -> QualityScores:
    """The physical scores of ``clip`` (module docstring). ``model``: a :func:`collision_model` to reuse."""
    return quality_from_measures(clip, g1, frame_measures(clip, g1, model, groups={}), contact_height)


def quality_from_measures(
    clip: MotionClip, g1: G1, measures: FrameMeasures, contact_height: float = CONTACT_HEIGHT
) -> QualityScores:
    """:func:`clip_quality` from measures already taken (:func:`frame_measures`): the filter scores and gates a
    clip from one kinematics pass."""
    low, speed, collisions = measures.foot_low, measures.foot_speed, int(measures.collision.sum())
    T = clip.num_frames
    below = np.maximum(0.0, -low.min(axis=1))
    contact = low < contact_height
    lo, hi = g1.joint_limits[:, 0], g1.joint_limits[:, 1]
    excess = np.maximum(0.0, np.maximum(clip.joint_pos - hi, lo - clip.joint_pos))
    if T > 3:
        jerk = float(np.abs(np.diff(clip.joint_pos, n=3, axis=0)).mean() * clip.fps**3)
    else:
        jerk = 0.0
    n_contact = int(contact.sum())
    return QualityScores(
        frames=T,
        penetration_mm=float(1000.0 * below.mean()) if T else 0.0,
        penetration_max_mm=float(1000.0 * below.max()) if T else 0.0,
        float_mm=float(1000.0 * np.maximum(low[contact], 0.0).mean()) if n_contact else 0.0,
        skate_cm_s=float(100.0 * speed[contact].mean()) if n_contact else 0.0,
        contact_fraction=float(n_contact / max(2 * T, 1)),
        limit_excess_rad=float(excess.max()) if T else 0.0,
        limit_frames=int((excess.max(axis=1) > LIMIT_TOL).sum()) if T else 0,
        self_collision_frames=int(collisions),
        jerk=jerk,
    )


#: Scores the retargeter must match or beat, and the direction that is better (all: lower).
PHYSICAL_SCORES: tuple[str, ...] = (
    "penetration_mm",
    "float_mm",
    "skate_cm_s",
    "limit_excess_rad",
    "self_collision_frames",
    "jerk",
)


def heading_keypoints(clip: MotionClip, g1: G1) -> np.ndarray:
    """The 14 keypoints (T, 14, 3) of ``clip`` in its own gravity-aligned heading frame: relative to the pelvis's xy
    position and rotated by minus its yaw (height kept), the frame the project's MPKPE uses."""
    from humanoid_gpt.motion.kinematics import forward_kinematics

    pos = forward_kinematics(g1, clip.qpos(), bodies=g1.keypoint_names).pos
    w, x, y, z = clip.root_quat.T
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    rel = pos - np.concatenate([clip.root_pos[:, None, :2], np.zeros((clip.num_frames, 1, 1))], axis=-1)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1], rel[..., 2]], axis=-1)


def keypoint_distance_mm(a: MotionClip, b: MotionClip, g1: G1) -> np.ndarray:
    """Per-frame mean distance (T,) in mm between two clips' 14 keypoints, each in its own heading frame."""
    if a.num_frames != b.num_frames:
        raise ValueError(f"clips of {a.num_frames} and {b.num_frames} frames cannot be compared frame for frame")
    return 1000.0 * np.linalg.norm(heading_keypoints(a, g1) - heading_keypoints(b, g1), axis=-1).mean(axis=1)
