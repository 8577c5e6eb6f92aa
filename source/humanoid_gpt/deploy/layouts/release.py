"""The Humanoid-GPT authors' released tracker (the paper's deploy files, docs/architecture.md "The G1 facts" and the
design notes' "Deployment"): a Transformer over a window of K past observations, input ``obs`` (B, K, 136), output
``continuous_actions`` (B, 29), K = 4 in their release. Recognised by those names and sizes when a file carries no
``format=humanoid_gpt`` metadata (our own exports carry it and run as students).

- observation: our student observation (136 values, ``STUDENT_LAYOUT``: the reference is the next frame at 50 Hz),
  the K most recent steps oldest first; at an episode's first steps the window is filled with copies of the first
  observation (their files say nothing of padding; a copy keeps every token a valid observation, as TWIST2's
  history does);
- action: target = default + a x effort_limit / kp (their action scale: the effort limit over kp, without our
  0.25), about the G1's default pose, with the G1's gains and motor limits, at 50 Hz on 200 Hz physics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.deploy.layouts.base import Layout, LayoutPolicy, OnnxSignature
from humanoid_gpt.mdp.observations import STUDENT_DIM
from humanoid_gpt.robot.g1 import G1, Actuation

WINDOW = 4
"""K of their release, used when a file leaves the window axis dynamic."""


def fits(sig: OnnxSignature) -> bool:
    ins, outs = list(sig.inputs.values()), list(sig.outputs.values())
    return len(ins) == 1 and len(ins[0]) == 3 and ins[0][-1] == STUDENT_DIM and len(outs) == 1 and outs[0][-1:] == (29,)


def recognize(sig: OnnxSignature) -> bool:
    return fits(sig) and list(sig.inputs) == ["obs"] and list(sig.outputs) == ["continuous_actions"]


def actuation(path: Path, g1: G1) -> Actuation:
    own = lambda x: tuple(np.asarray(x, dtype=float).tolist())  # noqa: E731
    return Actuation(
        "humanoid-gpt-release",
        own(g1.kp),
        own(g1.kd),
        own(g1.effort_limit),
        own(g1.default_joint_pos),
        own(g1.effort_limit / g1.kp),
    )


class ReleasePolicy(LayoutPolicy):
    """The released Transformer in a harness env built with :func:`actuation`, on the env's student observation."""

    def __init__(self, path: Path, env) -> None:
        from humanoid_gpt.deploy.runtime import ort_session

        super().__init__(env, 29)
        self.session = ort_session(path, threads=1, spinning=False)
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        self.window = inp.shape[1] if isinstance(inp.shape[1], int) else WINDOW
        self.batch = inp.shape[0] if isinstance(inp.shape[0], int) else None  # a graph exported for batch 1
        self.tokens = torch.zeros(env.num_envs, self.window, STUDENT_DIM)

    def __call__(self, obs) -> torch.Tensor:
        start = self.starts()
        x = obs["student"].float()
        self.tokens[start] = x[start, None].expand(-1, self.window, -1)
        self.tokens = torch.cat([self.tokens[:, 1:], x[:, None]], dim=1)
        window = self.tokens.numpy()
        if self.batch is None:
            raw = self.session.run(None, {self.input: window})[0]
        else:
            raw = np.concatenate([self.session.run(None, {self.input: w[None]})[0] for w in window])
        return torch.from_numpy(np.asarray(raw).reshape(len(window), 29)).float()


LAYOUT = Layout(
    name="humanoid-gpt-release",
    summary="the Humanoid-GPT authors' release: input 'obs' (B, K, 136), output 'continuous_actions' (B, 29), no "
    "format=humanoid_gpt metadata",
    recognize=recognize,
    fits=fits,
    actuation=actuation,
    task_settings={"action_relative_to_reference": False},
    make_policy=ReleasePolicy,
)
