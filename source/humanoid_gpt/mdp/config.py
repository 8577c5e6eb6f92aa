"""Configuration of the tracking MDP: plain dataclasses, saved beside every run.

Defaults follow BeyondMimic (Liao et al. 2025) and mjlab's tracking task where the paper is silent, in the
paper's reward form: each keypoint term is sum_k w_k exp(-alpha |e_k|) / sum_k w_k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp.sampling import StartSamplingConfig
from humanoid_gpt.robot.g1 import END_EFFECTOR_BODIES, G1, G1_KEYPOINT_NAMES


@dataclass
class RewardConfig:
    """Term weights (multiplied by the control dt, as Isaac Lab's reward manager does) and sharpness."""

    anchor_pos: float = 0.5  # BeyondMimic motion_global_anchor_pos
    anchor_rot: float = 0.5  # BeyondMimic motion_global_anchor_ori
    keypoint_pos: float = 1.0  # BeyondMimic motion_body_pos (relative to the root heading frame)
    keypoint_rot: float = 1.0
    keypoint_lin_vel: float = 1.0
    keypoint_ang_vel: float = 1.0
    action_rate: float = -0.01
    """BeyondMimic uses -0.1; on this CPU budget (256 envs, exploration std 1.0) that penalty outweighed the tracking
    reward of a young policy (about -0.12 vs +0.05 per step), so PPO learnt to end episodes early."""
    joint_limit: float = -10.0  # BeyondMimic joint_limit
    torque: float = -1e-5
    self_collision: float = -0.1  # BeyondMimic undesired_contacts
    # Sharpness: each term reaches e^-1 at the error where BeyondMimic's exp(-e^2 / sigma^2) does (sigma 0.3 m,
    # 0.4 rad, 1 m/s, 3.14 rad/s; an L1 norm of a 3-vector is ~1.5x its L2 norm). Sharper terms made the tracking
    # reward smaller than the action-rate penalty early in training, and PPO then learnt to end episodes quickly.
    alpha_anchor_pos: float = 3.0  # 1/m on the L2 anchor error
    alpha_pos: float = 2.0  # 1/m on each keypoint's L1 error
    alpha_rot: float = 2.5  # 1/rad on the SO(3) log-map angle
    alpha_lin_vel: float = 0.67  # s/m on the L1 velocity error
    alpha_ang_vel: float = 0.2  # s/rad on the L1 angular velocity error
    form: str = "l1"
    """"l1": the paper's per-keypoint kernel sum_k w_k exp(-alpha |e_k|_1) / sum_k w_k (the alphas above);
    "gaussian": BeyondMimic's exp(-(sum_k w_k |e_k|^2 / sum_k w_k) / sigma^2) (the sigmas below)."""
    sigma_anchor_pos: float = 0.3  # m; BeyondMimic's sigmas, read only by the "gaussian" form
    sigma_rot: float = 0.4  # rad, anchor and keypoints
    sigma_pos: float = 0.3  # m
    sigma_lin_vel: float = 1.0  # m/s
    sigma_ang_vel: float = 3.14  # rad/s
    soft_joint_limit: float = 0.9  # fraction of the range beyond which the joint-limit penalty grows
    keypoint_weights: tuple[float, ...] = (1.0,) * len(G1_KEYPOINT_NAMES)


@dataclass
class TerminationConfig:
    anchor_height: float = 0.25  # m, |z_ref - z| of the anchor body (docs/architecture.md)
    anchor_tilt: float = 1.0  # rad between the reference's and the robot's anchor up axes (heading-invariant)
    end_effector_height: float = 0.25  # m, any end effector; 0 turns it off
    root_xy_drift: float = 0.0
    """m of horizontal root distance to the reference beyond which an episode fails; 0 turns it off (BeyondMimic and
    the experts here track in the heading frame and drift up to ~1 m on long walks; set ~0.5 to hold the global
    path, at the price of shorter early episodes)."""
    end_effectors: tuple[str, ...] = END_EFFECTOR_BODIES


def falls_only(cfg: TrackingConfig) -> TrackingConfig:
    """``cfg`` whose episodes end only on a fall (the pelvis's height error over ``anchor_height`` or its tilt error
    over ``anchor_tilt``) or a non-finite state: the training-only terminations (end-effector height, xy drift) off."""
    terms = replace(cfg.terminations, end_effector_height=0.0, root_xy_drift=0.0)
    return replace(cfg, anchor_body=cfg.root_body, terminations=terms)


def evaluation_task(cfg: TrackingConfig) -> TrackingConfig:
    """``cfg`` as the metrics judge it (docs/architecture.md, "Metrics"): no randomization, and an episode fails only
    on a fall (:func:`falls_only`), so SR is comparable across policies trained with any termination, and drift
    shows in G-MPKPE instead."""
    return replace(falls_only(cfg), randomization=RandomizationConfig.off())


@dataclass
class RandomizationConfig:
    """Domain randomization; each part is on or off. Ranges as in BeyondMimic / mjlab tracking."""

    friction: bool = True
    friction_range: tuple[float, float] = (0.3, 1.6)
    mass: bool = True
    torso_mass_offset: tuple[float, float] = (-1.0, 3.0)  # kg added to the torso
    push: bool = True
    push_interval: tuple[float, float] = (1.0, 3.0)  # s between pushes
    push_velocity: tuple[float, float] = (-0.5, 0.5)  # m/s added to the root xy velocity
    gains: bool = True
    gain_scale: tuple[float, float] = (0.9, 1.1)  # kp and kd multipliers
    latency: bool = False
    latency_steps: tuple[int, int] = (0, 1)  # control steps the action is delayed, per env
    obs_noise: bool = True
    noise_ang_vel: float = 0.2
    noise_gravity: float = 0.05
    noise_joint_pos: float = 0.01
    noise_joint_vel: float = 0.5
    init_noise: bool = True
    init_joint_pos: float = 0.1  # rad
    init_root_pos: float = 0.05  # m, xy and z
    init_root_rot: float = 0.1  # rad, roll pitch yaw
    init_root_vel: float = 0.1  # m/s and rad/s

    @classmethod
    def off(cls) -> RandomizationConfig:
        """No randomization at all: for evaluation and backend comparisons."""
        return cls(
            friction=False, mass=False, push=False, gains=False, latency=False, obs_noise=False, init_noise=False
        )


@dataclass
class TrackingConfig:
    """Everything the MDP needs besides the robot and the motions."""

    control_dt: float = 0.02  # 50 Hz policy
    physics_dt: float = 0.005  # 200 Hz physics: decimation 4
    episode_seconds: float = 10.0
    action_relative_to_reference: bool = False
    """False: target = q_default + a * scale (the student's fixed action space). True: target = q_ref_next + a * scale
    (zero action is plain PD tracking; docs/architecture.md, "What runs where")."""
    self_collisions: bool = False
    """Robot links collide with each other (then the self_collision penalty counts those contacts). Off by default
    in both backends, as in Isaac Lab's Newton articulation default."""
    keypoints: tuple[str, ...] = G1_KEYPOINT_NAMES
    root_body: str = "pelvis"
    anchor_body: str = "torso_link"
    rewards: RewardConfig = field(default_factory=RewardConfig)
    terminations: TerminationConfig = field(default_factory=TerminationConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    sampling: StartSamplingConfig = field(default_factory=StartSamplingConfig)

    @property
    def decimation(self) -> int:
        n = round(self.control_dt / self.physics_dt)
        if n < 1 or abs(n * self.physics_dt - self.control_dt) > 1e-9:
            raise ConfigError(f"control_dt {self.control_dt} must be a whole multiple of physics_dt {self.physics_dt}")
        return n

    @property
    def max_episode_steps(self) -> int:
        return int(round(self.episode_seconds / self.control_dt))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrackingConfig:
        """Inverse of :meth:`to_dict` (lists from JSON become tuples again). Parts a config saved before they existed
        (``sampling``) take their defaults."""
        tup = lambda x: {k: tuple(v) if isinstance(v, list) else v for k, v in x.items()}  # noqa: E731
        parts = {
            "rewards": RewardConfig,
            "terminations": TerminationConfig,
            "randomization": RandomizationConfig,
            "sampling": StartSamplingConfig,
        }
        return cls(
            **tup({k: v for k, v in d.items() if k not in parts}),
            **{k: c(**tup(d[k])) for k, c in parts.items() if k in d},
        )

    def validate(self) -> None:
        """Raise on impossible settings before any environment is built."""
        _ = self.decimation
        missing = {self.root_body, self.anchor_body, *self.terminations.end_effectors} - set(self.keypoints)
        if missing:
            raise ConfigError(f"bodies {sorted(missing)} must be among the keypoints {self.keypoints}")
        if self.keypoints[0] != self.root_body:
            raise ConfigError(f"the first keypoint must be the root body {self.root_body!r}")
        if len(self.rewards.keypoint_weights) != len(self.keypoints):
            raise ConfigError(
                f"{len(self.rewards.keypoint_weights)} keypoint weights for {len(self.keypoints)} keypoints"
            )
        if self.rewards.form not in ("l1", "gaussian"):
            raise ConfigError(f"rewards.form {self.rewards.form!r} is not a reward form; use 'l1' or 'gaussian'")
        if self.episode_seconds <= self.control_dt:
            raise ConfigError("episode_seconds must exceed one control step")
        self.sampling.validate()


@dataclass
class RobotTensors:
    """The robot constants the MDP maths needs, as tensors on the compute device."""

    default_joint_pos: torch.Tensor
    action_scale: torch.Tensor
    joint_lower: torch.Tensor
    joint_upper: torch.Tensor
    effort_limit: torch.Tensor
    kp: torch.Tensor
    kd: torch.Tensor
    anchor: int  # index of the anchor body among the keypoints
    end_effectors: torch.Tensor  # keypoint indices
    keypoint_weights: torch.Tensor

    @classmethod
    def build(cls, g1: G1, cfg: TrackingConfig, device: torch.device | str = "cpu") -> RobotTensors:
        cfg.validate()
        missing = [b for b in cfg.keypoints if b not in g1.body_names]
        if missing:
            raise ConfigError(f"keypoint bodies {missing} are not in the robot model {g1.xml_path}")
        t = lambda x: torch.tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
        return cls(
            default_joint_pos=t(g1.default_joint_pos),
            action_scale=t(g1.action_scale),
            joint_lower=t(g1.joint_limits[:, 0]),
            joint_upper=t(g1.joint_limits[:, 1]),
            effort_limit=t(g1.effort_limit),
            kp=t(g1.kp),
            kd=t(g1.kd),
            anchor=cfg.keypoints.index(cfg.anchor_body),
            end_effectors=torch.tensor([cfg.keypoints.index(b) for b in cfg.terminations.end_effectors], device=device),
            keypoint_weights=t(cfg.rewards.keypoint_weights),
        )


def check_library(library, cfg: TrackingConfig) -> None:
    """Refuse, before any step, a motion library the task cannot run on (wrong bodies, clips shorter than two
    control steps)."""
    if tuple(library.body_names) != tuple(cfg.keypoints):
        raise ConfigError(f"the motion library tracks {library.body_names}, the task needs {cfg.keypoints}")
    durations = library.duration.tolist()
    too_short = [n for n, d in zip(library.names, durations, strict=True) if d < 2 * cfg.control_dt]
    if too_short:
        raise ConfigError(f"clips {too_short[:5]} are shorter than two control steps ({2 * cfg.control_dt} s)")
