"""N G1 worlds stepped by C MuJoCo on a thread pool (``mj_step`` releases the GIL), read into batched arrays.

PD control runs inside MuJoCo at the physics rate through position actuators (kp, kd from the G1 module, torques
clipped to the effort limits by ``forcerange``), as real motors do. Worlds share one model unless randomization
needs per-env models (friction, masses, gains).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from humanoid_gpt.mdp.randomization import EnvParams
from humanoid_gpt.robot.g1 import G1

_W = mujoco.mjtWarning
# Divergence, and an arena too small for the contacts (never seen at ARENA_BYTES; an env that hits it is reset and
# counted like a diverged one rather than simulated with contacts dropped).
_UNSTABLE = [
    int(w)
    for w in (_W.mjWARN_BADQPOS, _W.mjWARN_BADQVEL, _W.mjWARN_BADQACC, _W.mjWARN_CONTACTFULL, _W.mjWARN_CNSTRFULL)
]
ARENA_BYTES = 2 << 20
"""Per-env MuJoCo arena: a G1 flailing and falling for 10 s uses at most 141 KB (27 contacts); 2 MiB is a 14x
margin where MuJoCo's own sizing gives 15.7 MB (4 GB at 256 envs, 64 MB here)."""
_FULL_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
"""Warnings MuJoCo raises when it resets a world whose state diverged."""


class MujocoWorlds:
    """Batched C MuJoCo simulation of ``num_envs`` G1s.

    After :meth:`step` (or :meth:`set_state`) the arrays ``qpos`` (N, 36), ``qvel`` (N, 35), ``body_pos`` (N, B, 3),
    ``body_quat`` (N, B, 4), ``body_vel`` (N, B, 6: angular then linear, world frame, at the body origin),
    ``torque`` (N, 29) and ``self_contacts`` (N,) hold the current state, bodies in ``body_names`` order, joints in the
    G1 order.
    """

    def __init__(
        self,
        g1: G1,
        num_envs: int,
        body_names: tuple[str, ...],
        physics_dt: float = 0.005,
        num_threads: int = 2,
        per_env_models: bool = False,
        self_collisions: bool = False,
    ) -> None:
        self.g1 = g1
        self.num_envs = num_envs
        self.body_names = tuple(body_names)
        self.model = g1.model(
            actuators="position",
            timestep=physics_dt,
            floor=True,
            self_collisions=self_collisions,
            visuals=False,
            arena_bytes=ARENA_BYTES,
        )
        self.models = (
            [copy.deepcopy(self.model) for _ in range(num_envs)] if per_env_models else [self.model] * num_envs
        )
        self.datas = [mujoco.MjData(m) for m in self.models]
        m = self.model
        self.body_ids = g1.body_ids(m, self.body_names)
        roots = set(m.body_rootid[self.body_ids].tolist())
        if len(roots) != 1:
            raise ValueError("all tracked bodies must belong to the robot's one kinematic tree")
        self._root = roots.pop()
        adr = g1.qpos_joint_addresses(m)
        if not np.array_equal(adr, np.arange(7, 7 + g1.num_joints)):
            raise ValueError(f"{g1.xml_path}: joints must follow the free joint in the G1 order")
        self._floor = m.geom("floor").id
        self._torso = m.body("torso_link").id
        self.base_torso_mass = float(m.body_mass[self._torso])
        self.base_friction = m.geom_friction.copy()
        n, b = num_envs, len(self.body_ids)
        self.qpos = np.zeros((n, m.nq))
        self.qvel = np.zeros((n, m.nv))
        self.body_pos = np.zeros((n, b, 3))
        self.body_quat = np.zeros((n, b, 4))
        self.body_vel = np.zeros((n, b, 6))
        self._cvel = np.zeros((n, b, 6))
        self._com = np.zeros((n, 3))
        self.torque = np.zeros((n, m.nu))
        self.self_contacts = np.zeros(n, dtype=np.int64)
        self.unstable = np.zeros(n, dtype=bool)
        self._warnings = np.zeros(n, dtype=np.int64)
        self._targets = np.zeros((n, m.nu))
        self.num_threads = max(1, num_threads)
        self._chunks = [c for c in np.array_split(np.arange(n), self.num_threads) if len(c)]
        self._pool = ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 else None

    # Randomization -------------------------------------------------------------------------------------------------

    def randomize(self, params: EnvParams) -> None:
        """Apply per-env friction multipliers, torso mass offsets (kg) and PD gain scales; needs ``per_env_models``."""
        if self.models[0] is self.models[-1] and self.num_envs > 1:
            raise ValueError("randomization needs MujocoWorlds(per_env_models=True)")
        kp, kd = self.g1.kp, self.g1.kd
        p = {k: getattr(params, k).numpy() for k in ("friction", "torso_mass_offset", "kp_scale", "kd_scale")}
        for i, m in enumerate(self.models):
            m.geom_friction[:, 0] = self.base_friction[:, 0] * p["friction"][i]
            m.body_mass[self._torso] = self.base_torso_mass + p["torso_mass_offset"][i]
            m.actuator_gainprm[:, 0] = kp * p["kp_scale"][i]
            m.actuator_biasprm[:, 1] = -kp * p["kp_scale"][i]
            m.actuator_biasprm[:, 2] = -kd * p["kd_scale"][i]

    # State ---------------------------------------------------------------------------------------------------------

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Place the worlds ``env_ids`` at ``qpos`` (k, 36) / ``qvel`` (k, 35) and refresh their arrays."""
        for k, i in enumerate(env_ids):
            d = self.datas[i]
            mujoco.mj_resetData(self.models[i], d)
            d.qpos[:] = qpos[k]
            d.qvel[:] = qvel[k]
            mujoco.mj_forward(self.models[i], d)
            self._read(i)
            self.unstable[i] = False
        self._finish_read()

    def state(self) -> dict:
        """Everything that makes the next step what it is (MuJoCo's integration state of every world, warm start and
        controls included, and the warning counters that flag divergence): what an exact resume restores. Tensors,
        so that checkpoints holding it load weights-only."""
        size = mujoco.mj_stateSize(self.model, _FULL_STATE)
        full = np.empty((self.num_envs, size))
        for i, (m, d) in enumerate(zip(self.models, self.datas, strict=True)):
            mujoco.mj_getState(m, d, full[i], _FULL_STATE)
        warnings = np.stack([d.warning.number.copy() for d in self.datas])
        return {
            "mj_state": torch.from_numpy(full),
            "warnings": torch.from_numpy(warnings),
            "unstable": torch.from_numpy(self.unstable.copy()),
        }

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state` into worlds built the same way (same model, count and randomization)."""
        full, warnings = state["mj_state"].numpy(), state["warnings"].numpy()
        if full.shape != (self.num_envs, mujoco.mj_stateSize(self.model, _FULL_STATE)):
            raise ValueError(f"a saved state of shape {full.shape} does not fit {self.num_envs} worlds of this model")
        for i, (m, d) in enumerate(zip(self.models, self.datas, strict=True)):
            mujoco.mj_setState(m, d, full[i], _FULL_STATE)
            d.warning.number[:] = warnings[i]
            mujoco.mj_kinematics(m, d)  # what a step leaves computed (see _step_chunk)
            mujoco.mj_comPos(m, d)
            mujoco.mj_comVel(m, d)
            self._read(i)
        self.unstable[:] = state["unstable"].numpy()
        self._finish_read()

    def add_root_velocity(self, env_ids: np.ndarray, dv: np.ndarray) -> None:
        """Pushes: add ``dv`` (k, 3) to the root linear velocity of ``env_ids``."""
        for k, i in enumerate(env_ids):
            self.datas[i].qvel[:3] += dv[k]

    def _read(self, i: int) -> None:
        """Copy world i's state into the batched arrays (no allocation: this runs once per env per step)."""
        d = self.datas[i]
        self.qpos[i] = d.qpos
        self.qvel[i] = d.qvel
        np.take(d.xpos, self.body_ids, axis=0, out=self.body_pos[i])
        np.take(d.xquat, self.body_ids, axis=0, out=self.body_quat[i])
        np.take(d.cvel, self.body_ids, axis=0, out=self._cvel[i])
        self._com[i] = d.subtree_com[self._root]
        self.torque[i] = d.actuator_force
        ncon = d.ncon
        if ncon:
            g = d.contact.geom[:ncon]
            self.self_contacts[i] = ncon - int(np.count_nonzero((g[:, 0] == self._floor) | (g[:, 1] == self._floor)))
        else:
            self.self_contacts[i] = 0

    def _finish_read(self) -> None:
        """Batched part of reading: MuJoCo's cvel is (angular, linear at the subtree COM); move the linear part to
        each body origin."""
        ang = self._cvel[..., :3]
        self.body_vel[..., :3] = ang
        self.body_vel[..., 3:] = self._cvel[..., 3:] + np.cross(ang, self.body_pos - self._com[:, None, :])

    # Stepping ------------------------------------------------------------------------------------------------------

    def _step_chunk(self, ids: np.ndarray, nstep: int) -> None:
        """Worker thread: step, then read, each world of ``ids``; MuJoCo calls release the GIL, so one thread's
        stepping runs while another reads."""
        for i in ids:
            m, d = self.models[i], self.datas[i]
            d.ctrl[:] = self._targets[i]
            self._warnings[i] = d.warning.number[_UNSTABLE].sum()
            for _ in range(nstep):
                mujoco.mj_step(m, d)
            # mj_step leaves kinematics one physics step behind qpos: bring positions and velocities up to date.
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_comVel(m, d)
            # MuJoCo resets a diverging world itself, with a warning: report it so the env resets and counts it.
            self.unstable[i] = d.warning.number[_UNSTABLE].sum() != self._warnings[i]
            # Reading is Python work under the GIL; done here, per world, it overlaps the other threads' C stepping.
            self._read(i)

    def step(self, targets: np.ndarray, nstep: int) -> None:
        """Hold joint ``targets`` (N, 29) for ``nstep`` physics steps in every world."""
        self._targets[:] = targets
        if self._pool is None:
            self._step_chunk(self._chunks[0], nstep)
        else:
            list(self._pool.map(lambda ids: self._step_chunk(ids, nstep), self._chunks))
        self._finish_read()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
