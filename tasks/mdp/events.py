"""Domain-randomisation event terms: thin adapters that write the core's draws into the simulation.

What is drawn is decided in one place, :mod:`humanoid_gpt.mdp.randomization`: ``sample_env_params`` gives each env
one friction multiplier, torso mass offset, kp and kd scale and first push interval; ``push_velocity`` and
``next_push_interval`` give the pushes. Each term here draws with a ``torch.Generator`` seeded from the env's seed, so
runs are reproducible (and the per-env parameters are the MuJoCo env's with that seed), and only writes the draws
through the asset's APIs (the lower-level calls of Isaac Lab's own ``randomize_*`` terms, without their samplers).
The terms are small classes because they keep the nominal values (and the push timers) they apply the draws to.
The per-env latency is the action term's (``actions.TrackingJointAction``), from the same draws.
"""

from __future__ import annotations

import torch
from isaaclab.managers import EventTermCfg, ManagerTermBase, SceneEntityCfg

from humanoid_gpt.mdp.config import RandomizationConfig
from humanoid_gpt.mdp.randomization import EnvParams, next_push_interval, push_velocity, sample_env_params

ROBOT = SceneEntityCfg("robot")


def core_draws(env, dr: RandomizationConfig) -> tuple[EnvParams, torch.Generator]:
    """The core's per-env parameters for ``env``, drawn with a generator seeded from the env's seed (0 if unset),
    and that generator, positioned after them. Every term calls this and gets the same draws."""
    seed = env.cfg.seed if env.cfg.seed is not None else 0
    generator = torch.Generator().manual_seed(int(seed))
    return sample_env_params(dr, env.num_envs, generator), generator


def _rows(env, env_ids) -> torch.Tensor:
    """``env_ids`` (None, a slice or a tensor) as a long tensor on the CPU, where the core's draws live."""
    if env_ids is None:
        env_ids = slice(None)
    if isinstance(env_ids, slice):
        return torch.arange(env.num_envs)[env_ids]
    return env_ids.to("cpu", torch.long)


def _is_newton(env) -> bool:
    return any(c.__module__.startswith("isaaclab_newton") for c in type(env.sim.cfg.physics).__mro__)


class _ShapeFriction:
    """Read and write the friction of every collision shape of an articulation, (num_envs, num_shapes).

    Newton: the ``shape_material_mu`` binding of the articulation's view, then a ``SHAPE_PROPERTIES`` model change
    (as ``isaaclab_newton.envs.mdp.events.randomize_rigid_body_material``; Newton has one friction coefficient).
    PhysX: ``root_view.get/set_material_properties`` (static and dynamic friction scaled alike; as
    ``isaaclab_physx.envs.mdp.events.randomize_rigid_body_material``).
    """

    def __init__(self, env, asset) -> None:
        self.asset = asset
        self.newton = _is_newton(env)
        if self.newton:
            self._manager = env.sim.physics_manager
            self._binding = asset._root_view.get_attribute("shape_material_mu", self._manager.get_model())[:, 0]

    def read(self) -> torch.Tensor:
        import warp as wp

        if self.newton:
            return wp.to_torch(self._binding).clone()
        return wp.to_torch(self.asset.root_view.get_material_properties())[..., 0].clone()

    def write(self, friction: torch.Tensor, rows: torch.Tensor) -> None:
        import warp as wp

        if self.newton:
            from newton import ModelFlags

            view = wp.to_torch(self._binding)
            view[rows.to(view.device)] = friction.to(view.device, view.dtype)
            self._manager.add_model_change(ModelFlags.SHAPE_PROPERTIES)
            return
        materials = wp.to_torch(self.asset.root_view.get_material_properties())
        ids = rows.to(materials.device, torch.int32)
        materials[ids.long(), :, 0] = friction.to(materials.device, materials.dtype)
        materials[ids.long(), :, 1] = friction.to(materials.device, materials.dtype)
        self.asset.root_view.set_material_properties(
            wp.from_torch(materials, dtype=wp.float32), wp.from_torch(ids, dtype=wp.int32)
        )


def shape_friction(env, asset_cfg: SceneEntityCfg = ROBOT) -> torch.Tensor:
    """The friction of every collision shape of the asset, (num_envs, num_shapes), e.g. to check the draws."""
    return _ShapeFriction(env, env.scene[asset_cfg.name]).read()


class scale_friction(ManagerTermBase):
    """Friction of all the robot's shapes = nominal x the env's core multiplier (one per env)."""

    def __init__(self, cfg: EventTermCfg, env) -> None:
        super().__init__(cfg, env)
        self._shapes = _ShapeFriction(env, env.scene[cfg.params.get("asset_cfg", ROBOT).name])
        self._nominal = self._shapes.read()

    def __call__(self, env, env_ids, dr: RandomizationConfig, asset_cfg: SceneEntityCfg = ROBOT) -> None:
        rows = _rows(env, env_ids)
        multiplier = core_draws(env, dr)[0].friction[rows]
        self._shapes.write(self._nominal[rows.to(self._nominal.device)] * multiplier[:, None], rows)


class add_torso_mass(ManagerTermBase):
    """Torso mass = nominal + the env's core offset (kg); inertia left as is, as in the MuJoCo backend."""

    def __init__(self, cfg: EventTermCfg, env) -> None:
        super().__init__(cfg, env)
        self.asset = env.scene[cfg.params.get("asset_cfg", ROBOT).name]
        self._body = self.asset.find_bodies(cfg.params.get("body_name", "torso_link"))[0][0]
        self._nominal = self.asset.data.body_mass.torch[:, self._body].clone()

    def __call__(
        self, env, env_ids, dr: RandomizationConfig, asset_cfg: SceneEntityCfg = ROBOT, body_name: str = "torso_link"
    ) -> None:
        rows = _rows(env, env_ids)
        offset = core_draws(env, dr)[0].torso_mass_offset[rows].to(self._nominal.device)
        ids = rows.to(self._nominal.device)
        masses = (self._nominal[ids] + offset)[:, None]
        self.asset.set_masses_index(masses=masses, body_ids=[self._body], env_ids=ids)


class scale_pd_gains(ManagerTermBase):
    """Joint stiffness and damping = nominal x the env's core kp and kd scales (implicit PD actuators)."""

    def __init__(self, cfg: EventTermCfg, env) -> None:
        super().__init__(cfg, env)
        self.asset = env.scene[cfg.params.get("asset_cfg", ROBOT).name]
        explicit = [n for n, a in self.asset.actuators.items() if not getattr(a, "is_implicit_model", False)]
        if explicit:
            raise NotImplementedError(f"scale_pd_gains writes implicit PD gains; explicit actuators: {explicit}")
        self._kp = self.asset.data.joint_stiffness.torch.clone()
        self._kd = self.asset.data.joint_damping.torch.clone()

    def __call__(self, env, env_ids, dr: RandomizationConfig, asset_cfg: SceneEntityCfg = ROBOT) -> None:
        rows = _rows(env, env_ids)
        params = core_draws(env, dr)[0]
        ids = rows.to(self._kp.device)
        kp = self._kp[ids] * params.kp_scale[rows].to(self._kp.device)[:, None]
        kd = self._kd[ids] * params.kd_scale[rows].to(self._kd.device)[:, None]
        self.asset.write_joint_stiffness_to_sim_index(stiffness=kp, env_ids=ids)
        self.asset.write_joint_damping_to_sim_index(damping=kd, env_ids=ids)


class push_root(ManagerTermBase):
    """Pushes at the core's per-env intervals: the core's velocity change added to the root linear velocity.

    Run every control step (mode ``"interval"`` with ``interval_range_s=(0, 0)``, global time): Isaac Lab's own
    interval timers draw from torch's global generator and are redrawn at every reset, so this term keeps the
    per-env timers itself, as the MuJoCo env does (first interval from ``sample_env_params``, then
    ``next_push_interval``; not reset with episodes).
    """

    def __init__(self, cfg: EventTermCfg, env) -> None:
        super().__init__(cfg, env)
        self.asset = env.scene[cfg.params.get("asset_cfg", ROBOT).name]
        params, self._generator = core_draws(env, cfg.params["dr"])
        self._timer = params.push_interval.clone()

    def __call__(self, env, env_ids, dr: RandomizationConfig, asset_cfg: SceneEntityCfg = ROBOT) -> None:
        self._timer -= env.step_dt
        due = (self._timer <= 0).nonzero().flatten()
        if not len(due):
            return
        dv = push_velocity(dr, len(due), self._generator)
        self._timer[due] = next_push_interval(dr, len(due), self._generator)
        ids = due.to(self.asset.device)
        vel = self.asset.data.root_vel_w.torch[ids].clone()
        vel[:, :3] += dv.to(vel.device, vel.dtype)
        self.asset.write_root_velocity_to_sim_index(root_velocity=vel, env_ids=ids)
