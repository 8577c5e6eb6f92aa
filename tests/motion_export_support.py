"""Tracking policies written as mjlab's and BeyondMimic's motion exporters write them, built at test time from a real
G1 clip (nothing of the shared data is committed).

Follows, line for line in what the file holds:
- mjlab 1.6.0 (pip): ``mjlab/tasks/tracking/rl/runner.py`` (``_OnnxMotionModel``: inputs ``obs``, ``time_step``; the
  seven outputs; ``time_step`` clamped to the last frame; opset 18, legacy exporter) and ``mjlab/rl/exporter_utils.py``
  (``get_base_metadata`` + ``attach_metadata_to_onnx``: keys in that order, numbers with three decimals, ``;`` inside
  a per-term entry), the MJCF joint order;
- BeyondMimic (HybridRobotics/whole_body_tracking): ``whole_body_tracking/utils/exporter.py`` (the same graph at
  opset 11; ``observation_history_lengths``; Isaac Lab's breadth-first joint order).
``tests/fixtures/mjlab_1.6.0_g1_tracking.json`` is what mjlab's own exporter wrote (``tests/fixtures/
mjlab_real_export.py``, run in a venv with mjlab 1.6.0): the tests hold this builder to it.

The actor is rsl_rl's shape (an empirical normaliser, then the network) with a network that needs no training: it
commands the reference's joint positions, a = (q_ref - default) / scale, read from the ``command`` term, so a harness
that feeds the wrong joints, default pose or scale drives the robot elsewhere. The normaliser holds the statistics of
the observation of the robot on its motion, computed here independently of the harness (numpy, the exporters'
definitions) with the training noise of their config added.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.formats import joint_order_permutations
from humanoid_gpt.motion.kinematics import clip_body_states, quat_to_matrix
from humanoid_gpt.robot.g1 import G1

BODY_NAMES = (
    "pelvis",
    "left_hip_roll_link",
    "left_knee_link",
    "left_ankle_roll_link",
    "right_hip_roll_link",
    "right_knee_link",
    "right_ankle_roll_link",
    "torso_link",
    "left_shoulder_roll_link",
    "left_elbow_link",
    "left_wrist_yaw_link",
    "right_shoulder_roll_link",
    "right_elbow_link",
    "right_wrist_yaw_link",
)
TERMS = (
    ("command", 58),
    ("motion_anchor_pos_b", 3),
    ("motion_anchor_ori_b", 6),
    ("base_lin_vel", 3),
    ("base_ang_vel", 3),
    ("joint_pos", 29),
    ("joint_vel", 29),
    ("actions", 29),
)
NOISE = {
    "motion_anchor_pos_b": 0.25,
    "motion_anchor_ori_b": 0.05,
    "base_lin_vel": 0.5,
    "base_ang_vel": 0.2,
    "joint_pos": 0.01,
    "joint_vel": 0.5,
}
"""Their tracking config's uniform observation noise (+-n): variance n^2 / 3 in the normaliser."""
KNEES_BENT = {"hip_pitch": -0.312, "knee": 0.669, "ankle_pitch": -0.363, "elbow": 0.6, "shoulder_pitch": 0.2}
OUTPUTS = ["actions", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w"]
EPS = 1e-2  # rsl_rl's EmpiricalNormalization eps


def csv(values) -> str:
    """Their ``list_to_csv_str``: numbers with three decimals, strings as they are, a list inside joined by ';'."""
    one = lambda x: f"{x:.3f}" if isinstance(x, (int, float)) else str(x)  # noqa: E731
    return ",".join(";".join(one(v) for v in x) if isinstance(x, (list, tuple)) else one(x) for x in values)


def knees_bent(g1: G1) -> np.ndarray:
    pose = np.array([KNEES_BENT.get(n.removeprefix("left_").removeprefix("right_")[:-6], 0.0) for n in g1.joint_names])
    pose[g1.joint_names.index("left_shoulder_roll_joint")] = 0.2
    pose[g1.joint_names.index("right_shoulder_roll_joint")] = -0.2
    return pose


def motion_tables(g1: G1, clip: MotionClip, order: np.ndarray, fps: float = 50.0) -> dict[str, np.ndarray]:
    """The motion as their ``csv_to_npz`` makes it (resampled to ``fps``), joints in the policy's ``order``."""
    clip = clip.resample(fps)
    states = clip_body_states(g1, clip, BODY_NAMES)
    joint_vel = np.gradient(clip.joint_pos, 1.0 / fps, axis=0)
    return {
        "joint_pos": clip.joint_pos[:, order],
        "joint_vel": joint_vel[:, order],
        "body_pos_w": states.pos,
        "body_quat_w": states.quat,
        "body_lin_vel_w": states.lin_vel,
        "body_ang_vel_w": states.ang_vel,
    }


def replay_observation(t: dict[str, np.ndarray], default: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(T, 160): the tracking observation with the robot exactly on its motion, written from their ``mdp`` (the
    anchor offsets vanish, the last action is the reference-commanding actor's)."""
    n = len(t["joint_pos"])
    pelvis_rot = quat_to_matrix(t["body_quat_w"][:, 0])  # (T, 3, 3), world from pelvis
    in_pelvis = lambda v: np.einsum("tji,tj->ti", pelvis_rot, v)  # noqa: E731
    parts = [
        t["joint_pos"],
        t["joint_vel"],
        np.zeros((n, 3)),
        np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], (n, 1)),
        in_pelvis(t["body_lin_vel_w"][:, 0]),
        in_pelvis(t["body_ang_vel_w"][:, 0]),
        t["joint_pos"] - default,
        t["joint_vel"],
        (t["joint_pos"] - default) / scale,
    ]
    return np.concatenate(parts, axis=1)


class _Export(torch.nn.Module):
    """Their export module: the actor on the normalised observation, and the motion's row at ``time_step``."""

    def __init__(self, actor: torch.nn.Module, mean: np.ndarray, std: np.ndarray, t: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[None])
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[None])
        for key in OUTPUTS[1:]:
            self.register_buffer(key, torch.tensor(t[key], dtype=torch.float32))
        self.time_step_total = len(t["joint_pos"])

    def forward(self, x, time_step):
        k = torch.clamp(time_step.long().squeeze(-1), max=self.time_step_total - 1)
        actions = self.actor((x - self.mean) / (self.std + EPS))
        return (actions, *(getattr(self, key)[k] for key in OUTPUTS[1:]))


def _reference_actor(mean, std, default, scale) -> torch.nn.Linear:
    """a = (command joint positions - default) / scale on the raw observation, folded through the normaliser."""
    w = np.zeros((29, 160))
    w[np.arange(29), np.arange(29)] = 1.0 / scale
    b = -default / scale
    actor = torch.nn.Linear(160, 29)
    with torch.no_grad():
        actor.weight.copy_(torch.tensor(w * (std + EPS)[None], dtype=torch.float32))
        actor.bias.copy_(torch.tensor(b + w @ mean, dtype=torch.float32))
    return actor


def write_motion_export(
    path: Path,
    g1: G1,
    clip: MotionClip,
    flavour: str = "mjlab",
    motion_fps: float = 50.0,
    quat_xyzw: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """An mjlab (``flavour="mjlab"``) or BeyondMimic (``"beyondmimic"``) tracking export of ``clip``. The broken
    variants the checker must catch: ``motion_fps`` (a motion made at another rate), ``quat_xyzw`` (quaternions
    stored x, y, z, w), ``metadata`` (keys replaced after export)."""
    order = joint_order_permutations(g1)["isaaclab" if flavour == "beyondmimic" else "unitree"]
    names = [g1.joint_names[i] for i in order]
    default, kp, kd = knees_bent(g1)[order], g1.kp[order], g1.kd[order]
    scale = 0.25 * g1.effort_limit[order] / kp
    t = motion_tables(g1, clip, order, motion_fps)
    obs = replay_observation(t, default, scale)
    noise = np.concatenate([np.full(size, NOISE.get(name, 0.0)) for name, size in TERMS])
    mean, std = obs.mean(0), np.sqrt(obs.var(0) + noise**2 / 3)
    if quat_xyzw:
        t["body_quat_w"] = t["body_quat_w"][..., [1, 2, 3, 0]]
    module = _Export(_reference_actor(mean, std, default, scale), mean, std, t).eval()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 160), torch.zeros(1, 1)),
            str(path),
            export_params=True,
            opset_version=18 if flavour == "mjlab" else 11,
            input_names=["obs", "time_step"],
            output_names=OUTPUTS,
            dynamic_axes={},
            dynamo=False,
        )
    meta: dict = {
        "run_path": "local",
        "joint_names": names,
        "joint_stiffness": kp.tolist(),
        "joint_damping": kd.tolist(),
        "default_joint_pos": default.tolist(),
        "command_names": ["motion"],
        "observation_names": [n for n, _ in TERMS],
    }
    if flavour == "mjlab":
        meta |= {
            "observation_terms_scale": [1.0] * len(TERMS),
            "observation_terms_flatten_history_dim": [True] * len(TERMS),
            "observation_terms_history_length": [0] * len(TERMS),
            "observation_terms_clip": [[-np.inf, np.inf]] * len(TERMS),
        }
    else:
        meta["observation_history_lengths"] = [1] * len(TERMS)
    meta |= {"action_scale": scale.tolist(), "anchor_body_name": "torso_link", "body_names": list(BODY_NAMES)}
    model = onnx.load(str(path))
    values = {k: csv(v) if isinstance(v, list) else str(v) for k, v in meta.items()} | (metadata or {})
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def with_metadata(src: Path, dst: Path, **changes: str) -> Path:
    """A copy of an export with metadata values replaced (the graph untouched)."""
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props} | changes
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(dst))
    return dst


def signature(path: Path) -> dict:
    """The file's interface in the form of ``tests/fixtures/mjlab_1.6.0_g1_tracking.json``."""
    m = onnx.load(str(path))
    shape = lambda v: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]  # noqa: E731
    init = {t.name for t in m.graph.initializer}
    return {
        "opset": next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": {i.name: shape(i) for i in m.graph.input if i.name not in init},
        "outputs": {o.name: shape(o) for o in m.graph.output},
        "metadata": {p.key: p.value for p in m.metadata_props},
    }


def write_release(path: Path, window: int = 4) -> Path:
    """The Humanoid-GPT release's interface (input ``obs`` (1, K, 136), output ``continuous_actions`` (1, 29), no
    metadata) holding a network that commands the next reference pose: a = ref_joint_pos_rel / (effort / kp), read
    from the window's newest token (their action scale)."""
    from humanoid_gpt.mdp.observations import STUDENT_LAYOUT
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    offset = dict(zip([n for n, _ in STUDENT_LAYOUT], np.cumsum([0] + [s for _, s in STUDENT_LAYOUT]), strict=False))
    start = int(offset["ref_joint_pos_rel"])

    class Release(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("gain", torch.tensor(g1.kp / g1.effort_limit, dtype=torch.float32))

        def forward(self, obs):
            return obs[:, -1, start : start + 29] * self.gain

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Release(),
            (torch.zeros(1, window, 136),),
            str(path),
            input_names=["obs"],
            output_names=["continuous_actions"],
            dynamo=False,
        )
    return path
