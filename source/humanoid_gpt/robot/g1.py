"""The Unitree G1 29-DoF (rev 1.0): the one place that knows the robot.

Names, motor classes, gains and the default pose are the G1's own facts (docs/architecture.md, "The G1 facts");
indices into a model are always resolved from the model by name. Gains follow BeyondMimic / mjlab:
kp = armature * w^2, kd = 2 * zeta * armature * w with w = 2 pi 10 Hz and zeta = 2, and a policy action a maps to
q_target = q_default + a * action_scale with action_scale = 0.25 * effort_limit / kp.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import mujoco
import numpy as np

from humanoid_gpt import settings
from humanoid_gpt.errors import AssetError

MENAGERIE_ROBOT = "unitree_g1"
MENAGERIE_ENTRY = "g1_mjlab"

# The Unitree G1 joint order: every file and tensor of the project uses it.
_LEG = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")
_WAIST = ("waist_yaw", "waist_roll", "waist_pitch")
_ARM = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw")
G1_JOINT_NAMES: tuple[str, ...] = (
    *(f"{side}_{j}_joint" for side in ("left", "right") for j in _LEG),
    *(f"{j}_joint" for j in _WAIST),
    *(f"{side}_{j}_joint" for side in ("left", "right") for j in _ARM),
)

G1_KEYPOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip_roll_link",
    "right_hip_roll_link",
    "left_knee_link",
    "right_knee_link",
    "left_ankle_roll_link",
    "right_ankle_roll_link",
    "torso_link",
    "left_shoulder_roll_link",
    "right_shoulder_roll_link",
    "left_elbow_link",
    "right_elbow_link",
    "left_wrist_yaw_link",
    "right_wrist_yaw_link",
)

ROOT_BODY = "pelvis"
ANCHOR_BODY = "torso_link"
END_EFFECTOR_BODIES: tuple[str, ...] = (
    "left_ankle_roll_link",
    "right_ankle_roll_link",
    "left_wrist_yaw_link",
    "right_wrist_yaw_link",
)

# Rotor armatures (kg m^2) of the G1's motors. Ankles and waist roll/pitch are driven by two 5020 motors in parallel.
ARMATURE_7520_14 = 0.010177520
ARMATURE_7520_22 = 0.025101925
ARMATURE_5020 = 0.003609725
ARMATURE_4010 = 0.00425
NATURAL_FREQ = 2.0 * math.pi * 10.0
DAMPING_RATIO = 2.0
ACTION_SCALE_FRACTION = 0.25

# (armature, effort limit N m) by joint name without side prefix.
_MOTORS: dict[str, tuple[float, float]] = {
    "hip_pitch": (ARMATURE_7520_14, 88.0),
    "hip_roll": (ARMATURE_7520_22, 139.0),
    "hip_yaw": (ARMATURE_7520_14, 88.0),
    "knee": (ARMATURE_7520_22, 139.0),
    "ankle_pitch": (2 * ARMATURE_5020, 50.0),
    "ankle_roll": (2 * ARMATURE_5020, 50.0),
    "waist_yaw": (ARMATURE_7520_14, 88.0),
    "waist_roll": (2 * ARMATURE_5020, 50.0),
    "waist_pitch": (2 * ARMATURE_5020, 50.0),
    "shoulder_pitch": (ARMATURE_5020, 25.0),
    "shoulder_roll": (ARMATURE_5020, 25.0),
    "shoulder_yaw": (ARMATURE_5020, 25.0),
    "elbow": (ARMATURE_5020, 25.0),
    "wrist_roll": (ARMATURE_5020, 25.0),
    "wrist_pitch": (ARMATURE_4010, 5.0),
    "wrist_yaw": (ARMATURE_4010, 5.0),
}

KNEES_BENT_POSE: dict[str, float] = {
    **{
        f"{side}_{joint}_joint": value
        for side in ("left", "right")
        for joint, value in (("hip_pitch", -0.312), ("knee", 0.669), ("ankle_pitch", -0.363), ("shoulder_pitch", 0.2))
        + (("elbow", 0.6),)
    },
    "left_shoulder_roll_joint": 0.2,
    "right_shoulder_roll_joint": -0.2,
}
"""The knees-bent keyframe other labs' G1 trackers act about, by joint name (other joints 0): mjlab's and
BeyondMimic's ``KNEES_BENT_KEYFRAME``, holosoma's ``g1_29dof`` ``default_joint_angles``."""

DEFAULT_ROOT_HEIGHT = 0.78
_DEFAULT_JOINT_POS: dict[str, float] = {
    "left_hip_pitch_joint": -0.1,
    "right_hip_pitch_joint": -0.1,
    "left_knee_joint": 0.3,
    "right_knee_joint": 0.3,
    "left_ankle_pitch_joint": -0.2,
    "right_ankle_pitch_joint": -0.2,
    "left_shoulder_pitch_joint": 0.2,
    "right_shoulder_pitch_joint": 0.2,
    "left_shoulder_roll_joint": 0.3,
    "right_shoulder_roll_joint": -0.3,
    "left_elbow_joint": 1.28,
    "right_elbow_joint": 1.28,
}

ActuatorKind = Literal["none", "position", "torque"]


def _motor_key(joint: str) -> str:
    return joint.removeprefix("left_").removeprefix("right_").removesuffix("_joint")


def resolve_g1_xml(path: str | Path | None = None) -> Path:
    """The G1 MJCF: ``path`` if given, else mujoco-menagerie's ``unitree_g1`` entry ``g1_mjlab``.

    mujoco-menagerie reads ``MENAGERIE_ROOT`` when set and otherwise downloads the model into its cache.
    """
    if path is not None:
        xml = Path(path)
        if not xml.is_file():
            raise AssetError(f"G1 model {xml} does not exist; pass the path of an MJCF file such as g1_mjlab.xml")
        return xml
    import mujoco_menagerie as mm

    root = settings.menagerie_root()
    try:
        xml = mm.get(MENAGERIE_ROBOT).xml(MENAGERIE_ENTRY)
    except mm.MenagerieError as e:
        where = f"MENAGERIE_ROOT={root}" if root else "the mujoco-menagerie download cache"
        raise AssetError(
            f"cannot find the G1 model ({MENAGERIE_ROBOT}/{MENAGERIE_ENTRY}.xml) in {where}: {e}. Fix: set "
            f"MENAGERIE_ROOT to a folder holding {MENAGERIE_ROBOT}/{MENAGERIE_ENTRY}.xml, or unset it on a machine "
            "with internet so mujoco-menagerie downloads the model"
        ) from e
    if not xml.is_file():
        raise AssetError(
            f"G1 model {xml} is missing; MENAGERIE_ROOT={root} must hold {MENAGERIE_ROBOT}/{MENAGERIE_ENTRY}.xml"
        )
    return xml


@dataclass(frozen=True)
class Actuation:
    """How another lab's policy drives the G1, in the G1 joint order: PD gains, torque limits (N m), the default pose
    its actions are offsets from, and the action scale (target = default + action * scale). The project's own
    actuation (armature formula, docs/architecture.md) is used where a :class:`G1` has none."""

    name: str
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    effort_limit: tuple[float, ...]
    default_joint_pos: tuple[float, ...]
    action_scale: tuple[float, ...]

    def __post_init__(self) -> None:
        for key in ACTUATION_KEYS:
            values = getattr(self, key)
            if len(values) != len(G1_JOINT_NAMES) or not np.isfinite(values).all():
                raise ValueError(f"actuation {self.name!r}: {key} needs {len(G1_JOINT_NAMES)} finite values")

    def to_dict(self) -> dict:
        return {"name": self.name, **{k: [float(v) for v in getattr(self, k)] for k in ACTUATION_KEYS}}

    @classmethod
    def from_dict(cls, d: dict | None) -> Actuation | None:
        """Inverse of :meth:`to_dict`; None (a file made before actuations were recorded) is the project's own."""
        if d is None:
            return None
        return cls(name=str(d["name"]), **{k: tuple(float(v) for v in d[k]) for k in ACTUATION_KEYS})


ACTUATION_KEYS = ("kp", "kd", "effort_limit", "default_joint_pos", "action_scale")


@dataclass(frozen=True)
class G1:
    """The G1 as the project uses it, read from an MJCF. Build one with :func:`load_g1`; :meth:`with_actuation`
    gives the same robot driven as another lab's policy expects."""

    xml_path: Path
    joint_names: tuple[str, ...] = G1_JOINT_NAMES
    keypoint_names: tuple[str, ...] = G1_KEYPOINT_NAMES
    body_names: tuple[str, ...] = field(default=())
    joint_limits: np.ndarray = field(default=None, repr=False)  # (29, 2) rad, from the model
    actuation: Actuation | None = None

    def with_actuation(self, actuation: Actuation | None) -> G1:
        return replace(self, actuation=actuation)

    def _actuated(self, key: str) -> np.ndarray | None:
        return None if self.actuation is None else np.asarray(getattr(self.actuation, key), dtype=np.float64)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def armature(self) -> np.ndarray:
        return np.array([_MOTORS[_motor_key(j)][0] for j in self.joint_names])

    @property
    def effort_limit(self) -> np.ndarray:
        own = self._actuated("effort_limit")
        return own if own is not None else np.array([_MOTORS[_motor_key(j)][1] for j in self.joint_names])

    @property
    def kp(self) -> np.ndarray:
        own = self._actuated("kp")
        return own if own is not None else self.armature * NATURAL_FREQ**2

    @property
    def kd(self) -> np.ndarray:
        own = self._actuated("kd")
        return own if own is not None else 2.0 * DAMPING_RATIO * self.armature * NATURAL_FREQ

    @property
    def action_scale(self) -> np.ndarray:
        own = self._actuated("action_scale")
        return own if own is not None else ACTION_SCALE_FRACTION * self.effort_limit / self.kp

    @property
    def default_joint_pos(self) -> np.ndarray:
        own = self._actuated("default_joint_pos")
        return own if own is not None else np.array([_DEFAULT_JOINT_POS.get(j, 0.0) for j in self.joint_names])

    @property
    def default_root_height(self) -> float:
        return DEFAULT_ROOT_HEIGHT

    def default_qpos(self) -> np.ndarray:
        """MuJoCo qpos of the default pose: pelvis at the default height, identity orientation."""
        return np.concatenate([[0.0, 0.0, DEFAULT_ROOT_HEIGHT, 1.0, 0.0, 0.0, 0.0], self.default_joint_pos])

    def keypoint_indices(self) -> list[int]:
        """Indices of the keypoints into :attr:`body_names`."""
        return [self.body_names.index(k) for k in self.keypoint_names]

    def spec(
        self,
        actuators: ActuatorKind = "none",
        timestep: float = 0.005,
        floor: bool = True,
        iterations: int = 10,
        ls_iterations: int = 20,
        self_collisions: bool = False,
        visuals: bool = True,
        arena_bytes: int | None = None,
    ) -> mujoco.MjSpec:
        """An editable MjSpec of the G1 with the project's armatures and, as asked, a floor and actuators.

        ``actuators="position"``: MuJoCo PD servos (kp, kd above, torque clipped to the effort limit), ctrl is the
        joint target. ``"torque"``: motors with ctrl in N m, for harnesses that run PD in their own loop.
        ``self_collisions=False`` (default, as the Isaac Lab task's articulation) lets robot geoms touch the floor only.
        ``visuals=False`` drops the visual-only meshes (they never collide and bodies carry their own inertia): a
        simulation-only model of 0.9 MB instead of 72, which matters when every env owns a randomized copy.
        ``arena_bytes``: each MjData's arena (contacts, constraints, stack); None keeps MuJoCo's sizing (15.7 MB here).
        """
        spec = mujoco.MjSpec.from_file(str(self.xml_path))
        spec.option.timestep = timestep
        spec.option.iterations = iterations
        spec.option.ls_iterations = ls_iterations
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        for name, arm, kp, kd, effort in zip(
            self.joint_names, self.armature, self.kp, self.kd, self.effort_limit, strict=True
        ):
            joint = spec.joint(name)
            joint.armature = arm
            if actuators == "none":
                continue
            act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-effort, effort]
            if actuators == "position":
                act.gainprm[0] = kp
                act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
                act.biasprm[:3] = [0.0, -kp, -kd]
            elif actuators == "torque":
                act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
                act.ctrlrange = [-effort, effort]
            else:
                raise ValueError(f"actuators must be 'none', 'position' or 'torque', got {actuators!r}")
        if not self_collisions:
            for geom in spec.geoms:
                if geom.contype or geom.conaffinity:
                    geom.conaffinity = 0  # still collides with the floor (contype 1 meets the floor's conaffinity 1)
        if not visuals:
            _drop_visual_meshes(spec)
        if arena_bytes is not None:
            spec.memory = arena_bytes
        if floor:
            _add_floor(spec)
        return spec

    def model(self, **spec_kwargs) -> mujoco.MjModel:
        """Compile :meth:`spec` (same keyword arguments)."""
        return self.spec(**spec_kwargs).compile()

    def qpos_joint_addresses(self, model: mujoco.MjModel) -> np.ndarray:
        """qpos address of each of :attr:`joint_names` in ``model`` (resolved by name)."""
        return np.array([model.jnt_qposadr[model.joint(j).id] for j in self.joint_names])

    def body_ids(self, model: mujoco.MjModel, names: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        return np.array([model.body(b).id for b in (names if names is not None else self.body_names)])


def _drop_visual_meshes(spec: mujoco.MjSpec) -> None:
    for geom in [g for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH and not (g.contype or g.conaffinity)]:
        spec.delete(geom)
    used = {g.meshname for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH}
    for mesh in [m for m in spec.meshes if m.name not in used]:
        spec.delete(mesh)


def _add_floor(spec: mujoco.MjSpec) -> None:
    tex = spec.add_texture(
        name="hgpt_grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.25, 0.3, 0.35],
        rgb2=[0.35, 0.4, 0.45],
        width=512,
        height=512,
    )
    spec.add_material(name="hgpt_floor", textures=["", tex.name], texrepeat=[8, 8], reflectance=0.1)
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0, 0, 0.05],
        material="hgpt_floor",
        contype=1,
        conaffinity=1,
        condim=3,
        friction=[1.0, 0.005, 0.0001],
    )
    spec.worldbody.add_light(
        name="hgpt_sun",
        pos=[0, 0, 4],
        dir=[0, 0, -1],
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        diffuse=[0.8, 0.8, 0.8],
    )


@functools.lru_cache(maxsize=8)
def _load_cached(xml: Path) -> G1:
    try:
        model = mujoco.MjModel.from_xml_path(str(xml))
    except ValueError as e:  # MuJoCo's compile errors: a missing mesh, a malformed XML
        raise AssetError(
            f"{xml}: MuJoCo cannot load the G1 model ({str(e).strip()}); the folder must hold the whole "
            "mujoco-menagerie unitree_g1 entry (the XML and its assets/ meshes). Check MENAGERIE_ROOT, or unset it "
            "on a machine with internet to download the model"
        ) from e
    names = [model.joint(i).name for i in range(model.njnt)]
    missing = [j for j in G1_JOINT_NAMES if j not in names]
    if missing:
        raise AssetError(f"{xml} is not a G1 29-DoF model: joints {missing} are missing")
    if model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
        raise AssetError(f"{xml}: the first joint must be the floating base (free joint)")
    bodies = tuple(model.body(i).name for i in range(1, model.nbody))
    absent = [k for k in G1_KEYPOINT_NAMES if k not in bodies]
    if absent:
        raise AssetError(f"{xml}: keypoint bodies {absent} are missing from the model")
    limits = np.array([model.jnt_range[model.joint(j).id] for j in G1_JOINT_NAMES])
    limits.setflags(write=False)
    return G1(xml_path=xml, body_names=bodies, joint_limits=limits)


def load_g1(path: str | Path | None = None) -> G1:
    """The G1 read from ``path`` or from mujoco-menagerie (see :func:`resolve_g1_xml`). Cached per file."""
    return _load_cached(resolve_g1_xml(path).resolve())
