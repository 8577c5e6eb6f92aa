"""What the student, DAgger and export tests share: a tiny student of each kind, the test task config, and a walk
env (imported by those test files; the fixtures built on them live in conftest.py)."""

from __future__ import annotations

import torch

from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.students import build_student, preset
from humanoid_gpt.students.checkpoint import student_meta
from humanoid_gpt_sim2sim.env import MujocoTrackingEnv

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
