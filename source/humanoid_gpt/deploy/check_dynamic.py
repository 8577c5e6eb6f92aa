"""The dynamic items of a policy check (``hgpt sim2sim check``): the policy tracks a slow standing reference
(:func:`standing_clip`: the default pose, arms swinging slowly) in the MuJoCo harness for a few seconds. When our
student falls, the usual deployment mistakes are tried in turn (Isaac Lab's breadth-first joint order instead of the
G1's; kp and kd from the file, swapped or scaled; another control rate) and the first that makes it stand is reported
as the likely fix. Another lab's policy runs as its layout (:func:`check_layout_dynamic`), on the motion in its file
or on the standing reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.check_items import Declared, PolicyCheck, in_robot_order
from humanoid_gpt.deploy.onnx import OnnxMetadataError
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


def standing_clip(g1: G1, seconds: float = 4.0, fps: float = 50.0) -> MotionClip:
    """The default pose with the feet on the floor, arms swinging slowly (0.25 Hz, 0.15 rad at the shoulders)."""
    import mujoco

    model = g1.model(actuators="none", floor=False)
    data = mujoco.MjData(model)
    data.qpos[:] = g1.default_qpos()
    mujoco.mj_forward(model, data)
    low = np.inf
    for g in range(model.ngeom):
        if model.geom_contype[g] or model.geom_conaffinity[g]:
            rot = data.geom_xmat[g].reshape(3, 3)
            centre = data.geom_xpos[g] + rot @ model.geom_aabb[g, :3]
            low = min(low, centre[2] - np.abs(rot[2]) @ model.geom_aabb[g, 3:])
    n = int(round(seconds * fps)) + 1
    t = np.arange(n) / fps
    joints = np.tile(g1.default_joint_pos, (n, 1))
    for side in ("left", "right"):
        joints[:, g1.joint_names.index(f"{side}_shoulder_pitch_joint")] += 0.15 * np.sin(2 * np.pi * 0.25 * t)
    root = np.tile([0.0, 0.0, g1.default_root_height - low], (n, 1))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    return MotionClip("standing", fps, root, quat, joints, {"source": "hgpt sim2sim check"})


@dataclass
class Hypothesis:
    """A deployment mistake to undo in a trial."""

    name: str
    fix: str = ""
    order: np.ndarray | None = None  # the policy's joint order, as G1 indices
    kp: np.ndarray | None = None  # gains to simulate with (G1 order)
    kd: np.ndarray | None = None
    control_dt: float | None = None


class _TrialPolicy:
    """A streaming student in the harness under a hypothesis: observations and actions reordered, gains replaced."""

    def __init__(self, path: Path, env, hypothesis: Hypothesis) -> None:
        from humanoid_gpt.deploy.runtime import OnnxStream
        from humanoid_gpt.mdp.observations import STUDENT_LAYOUT

        self.env, self.h = env, hypothesis
        self.stream = OnnxStream(path, env.num_envs)
        offsets = np.cumsum([0] + [s for _, s in STUDENT_LAYOUT])
        per_joint = ("joint_pos_rel", "joint_vel", "last_action", "ref_joint_pos_rel")
        self.blocks = [offsets[i] for i, (n, _) in enumerate(STUDENT_LAYOUT) if n in per_joint]
        if hypothesis.kp is not None:
            worlds = getattr(env, "worlds", None)
            if worlds is None:
                raise OnnxMetadataError("this backend's env does not expose its MuJoCo models: gains cannot be tried")
            for model in {id(m): m for m in worlds.models}.values():
                model.actuator_gainprm[:, 0] = hypothesis.kp
                model.actuator_biasprm[:, 1] = -hypothesis.kp
                model.actuator_biasprm[:, 2] = -hypothesis.kd

    def __call__(self, obs):
        import torch

        self.stream.reset((self.env.episode_length_buf == 0).numpy())
        x = obs["student"].numpy().astype(np.float32)
        order = self.h.order
        if order is not None:
            x = x.copy()
            for start in self.blocks:
                x[:, start : start + len(order)] = x[:, start + order]
        action = self.stream.step(x)
        if order is not None:
            action_g1 = np.empty_like(action)
            action_g1[:, order] = action
            action = action_g1
        return torch.from_numpy(action)


def _trial(path: Path, g1: G1, declared: Declared, hypothesis: Hypothesis, seconds: float, backend) -> dict:
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig

    tracking = TrackingConfig(
        control_dt=hypothesis.control_dt or declared.control_dt or 0.02,
        physics_dt=declared.physics_dt or 0.005,
        action_relative_to_reference=bool(declared.meta.get("action_relative_to_reference")),
        randomization=RandomizationConfig.off(),
    )
    clip = standing_clip(g1, seconds)
    result = backend.evaluate(
        [clip], lambda env: _TrialPolicy(path, env, hypothesis), tracking, num_envs=1, seed=0, progress=False
    )
    agg = result["aggregate"]
    held = float(agg.get("mean_episode_s", 0.0))
    stood = agg.get("sr_percent", 0.0) >= 100.0 and held >= seconds - 2 * tracking.control_dt
    return {
        "hypothesis": hypothesis.name,
        "stood": bool(stood),
        "seconds": held,
        "mpjpe": float(agg.get("mpjpe", float("nan"))),
        "mpkpe_mm": float(agg.get("mpkpe_mm", float("nan"))),
    }


def hypotheses(g1: G1, declared: Declared) -> list[Hypothesis]:
    """The usual deployment mistakes, most likely first."""
    from humanoid_gpt.motion.formats import joint_order_permutations

    out = [
        Hypothesis(
            "joint order: Isaac Lab breadth-first",
            "the policy was trained in Isaac Lab's joint order: reorder observations and actions by joint name",
            order=joint_order_permutations(g1)["isaaclab"],
        )
    ]
    kp, kd = in_robot_order(declared, declared.kp, g1), in_robot_order(declared, declared.kd, g1)
    if kp is not None and kd is not None and not (np.allclose(kp, g1.kp) and np.allclose(kd, g1.kd)):
        out.append(Hypothesis("gains from the file", "set the robot's kp / kd to the file's", kp=kp, kd=kd))
    out += [
        Hypothesis("kp and kd swapped", "the policy was trained with kp and kd swapped", kp=g1.kd, kd=g1.kp),
        Hypothesis("gains x2", "the policy was trained with twice the gains", kp=2 * g1.kp, kd=2 * g1.kd),
        Hypothesis("gains x0.5", "the policy was trained with half the gains", kp=0.5 * g1.kp, kd=0.5 * g1.kd),
    ]
    rate = declared.control_dt or 0.02
    for factor in (0.5, 2.0):
        dt = rate * factor
        out.append(Hypothesis(f"control at {1 / dt:g} Hz", f"run the policy at {1 / dt:g} Hz", control_dt=dt))
    return out


def check_dynamic(path: Path, g1: G1, declared: Declared, seconds: float = 4.0, backend=None) -> dict:
    """Stand on the slow standing reference; on a fall, retry the usual mistakes. Returns the trials and the fix."""
    from humanoid_gpt.backends import load_backend

    backend = backend or load_backend("mujoco", g1=g1, threads=1)
    trials = [_trial(path, g1, declared, Hypothesis("as declared"), seconds, backend)]
    fix = None
    if not trials[0]["stood"]:
        for hypothesis in hypotheses(g1, declared):
            trials.append(_trial(path, g1, declared, hypothesis, seconds, backend))
            if trials[-1]["stood"]:
                fix = {"hypothesis": hypothesis.name, "fix": hypothesis.fix}
                break
    return {"status": "stood" if trials[0]["stood"] else "fell", "seconds": seconds, "trials": trials, "fix": fix}


def check_layout_dynamic(check: PolicyCheck, path: Path, g1: G1, seconds: float) -> None:
    """Another lab's policy run as its layout (its actuation, its observation): on the first seconds of the motion
    inside the file, or on the standing reference for a policy that tracks ours."""
    from humanoid_gpt.backends import load_backend
    from humanoid_gpt.deploy.layouts import LayoutError
    from humanoid_gpt.deploy.policies import policy_setup
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig

    setup = policy_setup(str(path), g1)
    try:
        reference = setup.reference() if setup.reference is not None else None
    except LayoutError:  # a plain export: no motion of its own
        reference = None
    if reference is not None:
        clip, what = reference.slice(0, int(seconds * reference.fps) + 1), "its embedded motion"
    else:
        clip, what = standing_clip(g1, seconds), "standing"
    name = f"dynamic: {what} {seconds:g} s"
    tracking = TrackingConfig(randomization=RandomizationConfig.off(), **setup.task_settings)
    backend = load_backend("mujoco", g1=setup.g1, threads=1)  # the layout's actuation, whatever backend was passed
    agg = backend.evaluate([clip], setup.make, tracking, num_envs=1, seed=0, progress=False)["aggregate"]
    held = float(agg.get("mean_episode_s", 0.0))
    check.dynamic = {"status": "stood" if agg.get("sr_percent", 0.0) >= 100 else "fell", "seconds": held, **agg}
    if check.dynamic["status"] == "stood":
        check.add(name, "ok", f"tracked {held:.1f} s as the {setup.layout} layout, MPKPE {agg['mpkpe_mm']:.0f} mm")
    else:
        check.add(
            name,
            "mismatch",
            f"fell after {held:.1f} s as the {setup.layout} layout (MPKPE {agg.get('mpkpe_mm', float('nan')):.0f} mm)",
            "check the items above; a policy that tracks its motion in its own simulator should here too",
        )
