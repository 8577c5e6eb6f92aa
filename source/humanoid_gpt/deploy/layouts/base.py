"""What every layout module is built from: the file's interface (:class:`OnnxSignature`), the layout record
(:class:`Layout`) and the per-env state every layout policy keeps (:class:`LayoutPolicy`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from humanoid_gpt.deploy.onnx import load_onnx_graph
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1, Actuation


class LayoutError(HGPTError):
    """A policy file no layout recognises, or one forced onto a layout it does not fit."""


@dataclass(frozen=True)
class OnnxSignature:
    """What a layout is recognised by: the graph's inputs and outputs (name -> shape, a dynamic axis as None) and its
    metadata properties."""

    path: Path
    inputs: dict[str, tuple[int | None, ...]]
    outputs: dict[str, tuple[int | None, ...]]
    metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        fmt = lambda d: ", ".join(f"{k} {list(v)}" for k, v in d.items())  # noqa: E731
        keys = ", ".join(sorted(self.metadata)) or "none"
        return f"inputs: {fmt(self.inputs)}; outputs: {fmt(self.outputs)}; metadata keys: {keys}"


@dataclass(frozen=True)
class Layout:
    """One lab's policy interface."""

    name: str
    summary: str
    recognize: Callable[[OnnxSignature], bool]
    """The file is this layout beyond doubt (names and sizes); tried on every file."""
    fits: Callable[[OnnxSignature], bool]
    """The file can run as this layout (sizes only): checked when a user forces the layout on a renamed file."""
    actuation: Callable[[Path, G1], Actuation]
    """(file, robot) -> how the policy drives the robot (gains, torque limits, default pose, action scale)."""
    task_settings: dict
    """TrackingConfig fields the policy needs (its physics rate; actions about its default pose)."""
    make_policy: Callable[[Path, object], Callable]
    """(file, env) -> policy: reads the env's robot and reference state and returns actions in the env's action
    space (target = default + action * scale of :attr:`actuation`)."""
    embedded_reference: Callable[[Path, G1], MotionClip] | None = None
    """(file, robot) -> the reference motion inside the file, for layouts whose policy tracks only that motion
    (``hgpt sim2sim eval --policy FILE`` without ``--motions`` plays it); None: the policy tracks the harness's
    reference."""


class LayoutPolicy:
    """What every layout's policy keeps per env: the previous raw action, zeroed when an episode starts."""

    def __init__(self, env, num_actions: int) -> None:
        self.env = env
        self.last_action = torch.zeros(env.num_envs, num_actions)
        self._fresh = True  # episodes already under way (a resumed run) start at the first call

    def starts(self) -> torch.Tensor:
        """The envs whose episode starts at this step (their previous action zeroed)."""
        start = (self.env.episode_length_buf == 0) | self._fresh
        self._fresh = False
        self.last_action[start] = 0.0
        return start


def onnx_signature(path: str | Path) -> OnnxSignature:
    """Read a policy file's interface without running it (external data is never followed)."""
    path = Path(path)
    model = load_onnx_graph(path, LayoutError)
    init = {t.name for t in model.graph.initializer}

    def shapes(values) -> dict[str, tuple[int | None, ...]]:
        dims = lambda v: tuple(d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim)  # noqa: E731
        return {v.name: dims(v) for v in values if v.name not in init}

    meta = {p.key: p.value for p in model.metadata_props}
    return OnnxSignature(path, shapes(model.graph.input), shapes(model.graph.output), meta)
