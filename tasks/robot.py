"""The G1 as an Isaac Lab articulation, built from the core robot module (same MJCF, gains, limits, pose)."""

from __future__ import annotations

import isaaclab.sim as sim_utils
import numpy as np
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg
from isaaclab_newton.sim.schemas import NewtonArticulationCfg

from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.robot.usd import g1_usd


def _per_joint(g1: G1, values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(g1.joint_names, values, strict=True)}


def g1_articulation_cfg(g1: G1, self_collisions: bool = False) -> ArticulationCfg:
    """Implicit PD actuators with the G1's kp, kd, armature and effort limits; the default pose as initial state.

    Self-collisions are off, as in the MuJoCo backend's default, so the two backends simulate the same robot.
    Quaternions in Isaac Lab 3.0 are (x, y, z, w).
    """
    return ArticulationCfg(
        prim_path="{ENV_REGEX_NS}/Robot",
        spawn=sim_utils.UsdFileCfg(
            usd_path=str(g1_usd(g1)),
            activate_contact_sensors=True,
            articulation_props=NewtonArticulationCfg(self_collision_enabled=self_collisions),
        ),
        init_state=ArticulationCfg.InitialStateCfg(
            pos=(0.0, 0.0, g1.default_root_height),
            rot=(0.0, 0.0, 0.0, 1.0),
            joint_pos=_per_joint(g1, g1.default_joint_pos),
            joint_vel={".*": 0.0},
        ),
        soft_joint_pos_limit_factor=0.9,
        actuators={
            "g1": ImplicitActuatorCfg(
                joint_names_expr=[".*"],
                stiffness=_per_joint(g1, g1.kp),
                damping=_per_joint(g1, g1.kd),
                armature=_per_joint(g1, g1.armature),
                joint_effort_limit=_per_joint(g1, g1.effort_limit),
            )
        },
    )
