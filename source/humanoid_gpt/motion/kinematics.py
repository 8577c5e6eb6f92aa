"""Forward kinematics of the G1 with MuJoCo: every body's pose and velocity for every frame of a clip."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


@dataclass
class BodyStates:
    """Per-frame world-frame states of bodies: ``pos`` (T, B, 3), ``quat`` (T, B, 4) w-first, ``lin_vel`` and
    ``ang_vel`` (T, B, 3) at each body frame's origin. ``names`` (B,) in the same order."""

    names: tuple[str, ...]
    pos: np.ndarray
    quat: np.ndarray
    lin_vel: np.ndarray
    ang_vel: np.ndarray

    def select(self, names: tuple[str, ...] | list[str]) -> BodyStates:
        idx = [self.names.index(n) for n in names]
        return BodyStates(tuple(names), self.pos[:, idx], self.quat[:, idx], self.lin_vel[:, idx], self.ang_vel[:, idx])


def clip_qvel(clip: MotionClip) -> np.ndarray:
    """MuJoCo generalized velocities (T, 6 + 29) of a clip: root linear velocity in the world frame, root angular
    velocity in the pelvis frame (MuJoCo's free-joint convention), then joint velocities."""
    return np.concatenate([clip.root_lin_vel("world"), clip.root_ang_vel("body"), clip.joint_vel()], axis=1)


_MODELS: dict[str, mujoco.MjModel] = {}


def _kinematic_model(g1: G1) -> mujoco.MjModel:
    """The G1 without actuators or floor, compiled once per model file: compiling costs ~0.1 s, more than the
    kinematics of a short clip, and every caller only reads the model (each has its own MjData)."""
    key = str(g1.xml_path)
    if key not in _MODELS:
        _MODELS[key] = g1.model(actuators="none", floor=False)
    return _MODELS[key]


def forward_kinematics(
    g1: G1, qpos: np.ndarray, qvel: np.ndarray | None = None, bodies: tuple[str, ...] | None = None
) -> BodyStates:
    """Body states for generalized positions ``qpos`` (T, 36) and, optionally, velocities ``qvel`` (T, 35).

    Positions and orientations come from ``mj_kinematics``; velocities from MuJoCo's spatial velocities
    (``mj_comVel``), shifted from the subtree centre of mass to each body origin. Without ``qvel`` the velocities
    are zero.
    """
    model = _kinematic_model(g1)
    data = mujoco.MjData(model)
    names = tuple(bodies) if bodies is not None else g1.body_names
    ids = g1.body_ids(model, names)
    adr = g1.qpos_joint_addresses(model)
    dof_adr = np.array([model.jnt_dofadr[model.joint(j).id] for j in g1.joint_names])
    root_com = model.body_rootid[ids]

    T = qpos.shape[0]
    pos = np.empty((T, len(ids), 3))
    quat = np.empty((T, len(ids), 4))
    cvel = np.zeros((T, len(ids), 6))
    com = np.zeros((T, len(ids), 3))
    for t in range(T):
        data.qpos[:7] = qpos[t, :7]
        data.qpos[adr] = qpos[t, 7:]
        if qvel is None:
            mujoco.mj_kinematics(model, data)
        else:
            data.qvel[:6] = qvel[t, :6]
            data.qvel[dof_adr] = qvel[t, 6:]
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            mujoco.mj_comVel(model, data)
            cvel[t] = data.cvel[ids]
            com[t] = data.subtree_com[root_com]
        pos[t] = data.xpos[ids]
        quat[t] = data.xquat[ids]
    ang = cvel[..., :3]
    lin = cvel[..., 3:] + np.cross(ang, pos - com)  # velocity of the body origin from the spatial velocity at the COM
    return BodyStates(names, pos, quat, lin, ang)


def clip_body_states(g1: G1, clip: MotionClip, bodies: tuple[str, ...] | None = None) -> BodyStates:
    """Forward kinematics of every frame of ``clip``, velocities included."""
    return forward_kinematics(g1, clip.qpos(), clip_qvel(clip), bodies)


FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")
"""The G1's feet: the bodies whose collision geoms touch the floor."""


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) w, x, y, z (normalised first)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


_FOOT_GEOMS: dict[str, tuple] = {}


def _foot_geoms(g1: G1) -> tuple:
    """(foot index, centre, axis, half length, radius, box half sizes or None) of the feet's collision geoms in
    their body frames: spheres, capsules and boxes, read from the model (once per model file)."""
    key = str(g1.xml_path)
    if key not in _FOOT_GEOMS:
        _FOOT_GEOMS[key] = _read_foot_geoms(g1)
    return _FOOT_GEOMS[key]


def _read_foot_geoms(g1: G1) -> tuple:
    model = _kinematic_model(g1)
    out = []
    for foot, body in enumerate(FOOT_BODIES):
        bid = model.body(body).id
        for g in range(model.ngeom):
            if model.geom_bodyid[g] != bid or not (model.geom_contype[g] or model.geom_conaffinity[g]):
                continue
            rot = quat_to_matrix(model.geom_quat[g].copy())
            size = model.geom_size[g].copy()
            kind = model.geom_type[g]
            if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
                out.append((foot, model.geom_pos[g].copy(), rot[:, 2], 0.0, size[0], None))
            elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
                out.append((foot, model.geom_pos[g].copy(), rot[:, 2], size[1], size[0], None))
            elif kind == mujoco.mjtGeom.mjGEOM_BOX:
                out.append((foot, model.geom_pos[g].copy(), None, 0.0, 0.0, rot * size[None, :]))
    return tuple(out)


def lowest_foot_points(g1: G1, qpos: np.ndarray) -> np.ndarray:
    """Per frame of ``qpos`` (T, 36), the height (m) of the lowest point of the G1's feet by forward kinematics: the
    feet's collision geoms (spheres, capsules, boxes), or the ankle roll links' origins if the model has none."""
    states = forward_kinematics(g1, qpos, bodies=FOOT_BODIES)
    geoms = _foot_geoms(g1)
    if not geoms:
        return states.pos[..., 2].min(axis=1)
    rot = quat_to_matrix(states.quat)  # (T, 2, 3, 3)
    lows = []
    for foot, centre, axis, half, radius, box in geoms:
        r = rot[:, foot]
        z = states.pos[:, foot, 2] + r[:, 2] @ centre
        if box is None:
            z = z - half * np.abs(r[:, 2] @ axis) - radius
        else:
            z = z - np.abs(r[:, 2] @ box).sum(axis=-1)
        lows.append(z)
    return np.min(lows, axis=0)
