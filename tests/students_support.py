"""What the student, DAgger and export tests share: a tiny student of each kind, the test task config, and a walk
env (imported by those test files; the fixtures built on them live in conftest.py)."""

from __future__ import annotations

import torch

from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.students import build_student, preset
from humanoid_gpt.students.checkpoint import student_meta
from humanoid_gpt_mujoco.env import MujocoTrackingEnv

TRACKING = TrackingConfig(action_relative_to_reference=True, randomization=RandomizationConfig.off())
TINY = {
    "gpt": dict(n_layer=2, n_head=2, n_embd=32),
    "mlp": dict(mlp_hidden=(32, 32)),
    "tcn": dict(tcn_channels=16, tcn_dilations=(1, 2, 4)),
}


def tiny(kind: str, context: int = 8):
    torch.manual_seed(0)
    return build_student(preset({"gpt": "gpt-s", "mlp": "mlp", "tcn": "tcn"}[kind], context=context, **TINY[kind]))


def make_env(g1, library, num_envs=4, seed=0):
    return MujocoTrackingEnv(g1, library, TRACKING, num_envs, seed, num_threads=1)


def export_tiny(kind: str, g1, real_tokens, folder):
    """A tiny student (normalizer fitted on real observations), saved as a checkpoint and exported to ONNX."""
    from humanoid_gpt.deploy.onnx import export_onnx
    from humanoid_gpt.runs import save_checkpoint

    model = tiny(kind, context=16 if kind == "tcn" else 8)
    model.normalizer.train()
    model.normalizer.update(real_tokens.flatten(0, 1))
    payload = {"meta": student_meta(model.cfg, g1, TRACKING.to_dict()), "model": model.eval().state_dict()}
    save_checkpoint(folder / "s.pt", payload)
    return model, export_onnx(folder / "s.pt", folder, g1)


# The banded key/value-cache GPT ("gpt-kv") ---------------------------------------------------------------------------

TINY_KV = dict(n_layer=2, n_head=2, n_embd=32, attn_window=4)
"""Receptive field 2 * (4 - 1) + 1 = 7 tokens: episodes of the 40-step real_tokens fixture cross it several times."""


def tiny_kv(context: int = 8, **overrides):
    torch.manual_seed(0)
    return build_student(preset("gpt-s-kv", context=context, **{**TINY_KV, **overrides}))


def export_tiny_kv(g1, real_tokens, folder):
    """A tiny KV GPT (normalizer fitted on real observations), saved as a checkpoint and exported to ONNX."""
    from humanoid_gpt.deploy.onnx import export_onnx
    from humanoid_gpt.runs import save_checkpoint

    model = tiny_kv()
    model.normalizer.train()
    model.normalizer.update(real_tokens.flatten(0, 1))
    payload = {"meta": student_meta(model.cfg, g1, TRACKING.to_dict()), "model": model.eval().state_dict()}
    save_checkpoint(folder / "s.pt", payload)
    return model, export_onnx(folder / "s.pt", folder, g1)


# Policies for the sim2sim check ------------------------------------------------------------------------------------


def standing_student(g1, order: str = "unitree", arm_offset: float = 0.0):
    """An MLP student that is exactly a linear balance controller (no training needed to stand): joint targets
    q_ref - K (q - q_ref) (K = 5 on the legs, 1 elsewhere), ankle pitch pushing against the tilt (+3.5 rad per unit
    of projected gravity x), plus ``arm_offset`` rad on the left shoulder pitch. ``order="isaaclab"`` builds it as if
    trained in Isaac Lab's breadth-first joint order while its file declares the G1's: the classic deployment bug.
    Reference-relative actions; the hidden layer runs ELU in its linear range (inputs + 100)."""
    import numpy as np

    from humanoid_gpt.mdp.observations import STUDENT_LAYOUT
    from humanoid_gpt.motion.formats import joint_order_permutations

    perm = joint_order_permutations(g1)[order]  # the policy's joints, as G1 indices
    offsets = dict(zip([n for n, _ in STUDENT_LAYOUT], np.cumsum([0] + [s for _, s in STUDENT_LAYOUT]), strict=False))
    scale = g1.action_scale[perm]
    gains = np.where(perm < 12, 5.0, 1.0)  # the first 12 G1 joints are the legs
    linear = np.zeros((29, 136))
    bias = np.zeros(29)
    for j in range(29):
        linear[j, offsets["joint_pos_rel"] + j] = -gains[j]
        linear[j, offsets["ref_joint_pos_rel"] + j] = gains[j]
        name = g1.joint_names[perm[j]]
        if name.endswith("ankle_pitch_joint"):
            linear[j, offsets["projected_gravity"]] = 3.5
        if name == "left_shoulder_pitch_joint":
            bias[j] = arm_offset
    linear, bias = linear / scale[:, None], bias / scale
    torch.manual_seed(0)
    model = build_student(preset("mlp", mlp_hidden=(136,)))
    with torch.no_grad():
        model.normalizer._std.fill_(1.0 - model.normalizer.eps)  # the normalizer passes observations unchanged
        first, last = model.net[0], model.net[-1]
        first.weight.copy_(torch.eye(136))
        first.bias.fill_(100.0)
        last.weight.copy_(torch.as_tensor(linear, dtype=torch.float32))
        last.bias.copy_(torch.as_tensor(bias - linear.sum(1) * 100.0, dtype=torch.float32))
    return model.eval()


def export_student(model, g1, folder):
    """Save ``model`` as a checkpoint of the test task and export it; returns the ONNX paths."""
    from humanoid_gpt.deploy.onnx import export_onnx
    from humanoid_gpt.runs import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    payload = {"meta": student_meta(model.cfg, g1, TRACKING.to_dict()), "model": model.state_dict()}
    save_checkpoint(folder / "s.pt", payload)
    return export_onnx(folder / "s.pt", folder, g1)


def dagger_runner(g1, library, experts, registry, folder, student, **cfg):
    """A DAgger runner on 4 walk envs taught by two experts (clusters "a" and "b", envs routed alternately), writing
    into ``folder / "run"``; ``cfg`` replaces the small test settings."""
    from humanoid_gpt.students.dagger import DaggerConfig
    from humanoid_gpt.students.runner import DaggerRunner
    from humanoid_gpt.students.teachers import TeacherPool

    env = make_env(g1, library, num_envs=4)
    obs = env.get_observations()
    teachers = TeacherPool(registry, ["a", "b"], TRACKING, int(obs["teacher"].shape[-1]), 29, g1)
    settings = dict(
        num_envs=4,
        steps_per_iteration=16,
        batch_windows=8,
        updates_per_iteration=4,
        warmup_updates=1,
        lr=1e-3,
        beta_iterations=1,
        save_interval=1,
    )
    meta = {
        **student_meta(student.cfg, g1, TRACKING.to_dict()),
        "teachers": {"a": str(experts[0]), "b": str(experts[1])},
    }
    route = lambda: torch.arange(4) % 2  # noqa: E731
    return DaggerRunner(env, student, teachers, route, DaggerConfig(**{**settings, **cfg}), meta, folder / "run")
