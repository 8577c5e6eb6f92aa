"""Env config factories for the tracking tasks, built from the core's TrackingConfig (mjlab style: one factory,
variants by arguments). A cluster's gym entry point calls :func:`cluster_cfg` (``registration.cluster_cfg_entry``),
so every cluster of the manifest gets a task without a class per cluster."""

from __future__ import annotations

from dataclasses import MISSING
from typing import Literal

import isaaclab.envs.mdp as isaac_mdp
from isaaclab.assets import ArticulationCfg
from isaaclab.envs import ManagerBasedRLEnvCfg
from isaaclab.managers import EventTermCfg as EventTerm
from isaaclab.managers import ObservationGroupCfg as ObsGroup
from isaaclab.managers import ObservationTermCfg as ObsTerm
from isaaclab.managers import RewardTermCfg as RewTerm
from isaaclab.managers import TerminationTermCfg as DoneTerm
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sim import SimulationCfg
from isaaclab.sim.spawners.materials.physics_materials_cfg import RigidBodyMaterialBaseCfg
from isaaclab.terrains import TerrainImporterCfg
from isaaclab.utils import configclass

from humanoid_gpt.catalog.manifests import active_manifest
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.mdp.rewards import REWARD_TERMS
from humanoid_gpt.mdp.terminations import FAILURE_TERMS
from humanoid_gpt.robot.g1 import load_g1
from humanoid_gpt_tasks import mdp
from humanoid_gpt_tasks.robot import g1_articulation_cfg

Physics = Literal["newton", "physx"]


@configclass
class TrackingSceneCfg(InteractiveSceneCfg):
    # "plane" loads Isaac Lab's ground USD from ISAACSIM_ASSET_ROOT: the project's own stand-in (assets.py).
    terrain = TerrainImporterCfg(
        prim_path="/World/ground",
        terrain_type="plane",
        collision_group=-1,
        physics_material=RigidBodyMaterialBaseCfg(static_friction=1.0, dynamic_friction=1.0),
        debug_vis=False,
    )
    robot: ArticulationCfg = MISSING


def _obs_group(func) -> ObsGroup:
    @configclass
    class Group(ObsGroup):
        obs = ObsTerm(func=func)

        def __post_init__(self):
            self.concatenate_terms = True
            self.enable_corruption = False  # sensor noise is the core's (TrackingConfig.randomization)

    return Group()


@configclass
class CommandsCfg:
    motion: mdp.MotionReferenceCommandCfg = MISSING


@configclass
class ActionsCfg:
    joint_pos: mdp.TrackingJointActionCfg = MISSING


@configclass
class ObservationsCfg:
    pass


@configclass
class RewardsCfg:
    pass


@configclass
class TerminationsCfg:
    time_out = DoneTerm(func=isaac_mdp.time_out, time_out=True)
    motion_end = DoneTerm(func=mdp.motion_end, time_out=True)


@configclass
class EventsCfg:
    pass


@configclass
class TrackingEnvCfg(ManagerBasedRLEnvCfg):
    scene: TrackingSceneCfg = TrackingSceneCfg(num_envs=4096, env_spacing=2.5)
    commands: CommandsCfg = CommandsCfg()
    actions: ActionsCfg = ActionsCfg()
    observations: ObservationsCfg = ObservationsCfg()
    rewards: RewardsCfg = RewardsCfg()
    terminations: TerminationsCfg = TerminationsCfg()
    events: EventsCfg = EventsCfg()


def physics_cfg(kind: Physics, dt: float, device: str) -> SimulationCfg:
    """Newton with the MuJoCo-Warp solver (kit-less, CPU or GPU) or PhysX (needs Isaac Sim and a GPU)."""
    if kind == "physx":
        from isaaclab_physx.physics import PhysxCfg

        physics = PhysxCfg()
    else:
        from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg

        # nconmax: a standing G1 makes ~28 contacts, a fallen one up to ~60 (measured); 40 overflowed.
        solver = MJWarpSolverCfg(njmax=150, nconmax=60, cone="pyramidal", integrator="implicitfast")
        physics = NewtonCfg(solver_cfg=solver, num_substeps=1, use_cuda_graph=device.startswith("cuda"))
    return SimulationCfg(device=device, dt=dt, physics=physics)


def make_tracking_env_cfg(
    motion_files: list[str],
    tracking: TrackingConfig | None = None,
    num_envs: int = 4096,
    groups: tuple[str, ...] = ("policy", "critic"),
    physics: Physics = "newton",
    device: str = "cpu",
) -> TrackingEnvCfg:
    """The tracking env for ``motion_files``: every term calls the core MDP with ``tracking``'s settings.

    ``groups`` picks observation groups among ``policy`` and ``critic`` (privileged, what experts train on),
    ``student`` (deployable, 136 values) and ``teacher`` (privileged).
    """
    tracking = tracking or TrackingConfig()
    tracking.validate()
    g1 = load_g1()
    cfg = TrackingEnvCfg()
    cfg.scene.num_envs = num_envs
    cfg.scene.robot = g1_articulation_cfg(g1, tracking.self_collisions)
    cfg.sim = physics_cfg(physics, tracking.physics_dt, device)
    cfg.sim.physics_material = cfg.scene.terrain.physics_material
    cfg.decimation = tracking.decimation
    cfg.sim.render_interval = tracking.decimation
    cfg.episode_length_s = tracking.episode_seconds
    cfg.commands.motion = mdp.MotionReferenceCommandCfg(motion_files=list(motion_files), tracking=tracking)
    dr = tracking.randomization
    cfg.actions.joint_pos = mdp.TrackingJointActionCfg(joint_names=list(g1.joint_names), randomization=dr)
    funcs = {
        "policy": mdp.privileged_obs,
        "critic": mdp.privileged_obs,
        "teacher": mdp.privileged_obs,
        "student": mdp.student_obs,
    }
    for group in groups:
        setattr(cfg.observations, group, _obs_group(funcs[group]))
    for name in REWARD_TERMS:
        weight = getattr(tracking.rewards, name)
        if weight:
            setattr(cfg.rewards, name, RewTerm(func=mdp.tracking_reward, weight=weight, params={"term": name}))
    for name in FAILURE_TERMS:
        setattr(cfg.terminations, name, DoneTerm(func=mdp.tracking_failure, params={"term": name}))
    _add_randomization_events(cfg.events, dr)
    return cfg


def _add_randomization_events(events: EventsCfg, dr: RandomizationConfig) -> None:
    """Friction, torso mass, PD gains and pushes: the core draws them (``humanoid_gpt.mdp.randomization``), these
    terms only write the draws into the simulation (``humanoid_gpt_tasks.mdp.events``)."""
    params = {"dr": dr}
    if dr.friction:
        events.friction = EventTerm(func=mdp.scale_friction, mode="startup", params=params)
    if dr.mass:
        events.torso_mass = EventTerm(func=mdp.add_torso_mass, mode="startup", params=params)
    if dr.gains:
        events.gains = EventTerm(func=mdp.scale_pd_gains, mode="startup", params=params)
    if dr.push:
        # Every control step; the term keeps the core's per-env push timers.
        events.push = EventTerm(
            func=mdp.push_root, mode="interval", interval_range_s=(0.0, 0.0), is_global_time=True, params=params
        )


# Gym entry points -------------------------------------------------------------------------------------------------


def cluster_cfg(cluster: str, play: bool = False) -> TrackingEnvCfg:
    """The expert-training task of one cluster (``play``: 16 envs, no randomization, for watching a policy)."""
    files = [str(p) for p in active_manifest().clip_refs(cluster)]  # "path@start:stop" for segments
    if play:
        return make_tracking_env_cfg(files, TrackingConfig(randomization=RandomizationConfig.off()), num_envs=16)
    return make_tracking_env_cfg(files)


def distill_cfg() -> TrackingEnvCfg:
    """Distillation over every clip of the manifest, with ``student`` and ``teacher`` groups."""
    manifest = active_manifest()
    files = [str(p) for c in sorted(manifest.clusters) for p in manifest.clip_refs(c)]
    return make_tracking_env_cfg(files, groups=("student", "teacher"))
