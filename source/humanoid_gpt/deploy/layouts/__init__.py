"""Policy layouts of other labs: how to recognise a policy file, simulate the G1 as it expects (gains, default pose,
action scale, physics rate) and build its observation. One module per layout; the harness, the checker and
distillation look a file up here (:func:`identify`), so the next lab's layout is one new module in :data:`LAYOUTS`.

Our own students carry metadata and are not a layout here (``humanoid_gpt.deploy.policies``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from humanoid_gpt.deploy.onnx import ONNX_FORMAT, load_onnx_graph
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


def _layouts() -> dict[str, Layout]:
    from humanoid_gpt.deploy.layouts import holosoma, mjlab, release, twist2

    return {layout.name: layout for layout in (twist2.LAYOUT, holosoma.LAYOUT, mjlab.LAYOUT, release.LAYOUT)}


def layout_names() -> list[str]:
    return sorted(_layouts())


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


def identify(path: str | Path, name: str | None = None) -> Layout | None:
    """The layout of policy file ``path``: ``name`` when given (checked against the file), else the one layout that
    recognises it; None for files that are not another lab's layout (our own students, checkpoints, TorchScript)."""
    layouts = _layouts()
    if name is not None and name not in layouts:
        raise LayoutError(f"--layout {name!r} is not a known layout; known: {', '.join(layouts)}")
    if not str(path).endswith(".onnx"):
        if name is not None:
            raise LayoutError(f"{path}: --layout {name} needs an ONNX file")
        return None
    sig = onnx_signature(path)
    if name is not None:
        if not layouts[name].fits(sig):
            raise LayoutError(
                f"{path} does not fit the {name} layout ({layouts[name].summary}); found {sig.describe()}"
            )
        return layouts[name]
    if sig.metadata.get("format") == ONNX_FORMAT:  # our students: policies.make_policy runs them
        return None
    found = [layout for layout in layouts.values() if layout.recognize(sig)]
    if len(found) == 1:
        return found[0]
    known = "; ".join(f"{lay.name}: {lay.summary}" for lay in layouts.values())
    if not found:
        raise LayoutError(
            f"{path}: no known policy layout fits it ({sig.describe()}). Known layouts: {known}; Humanoid-GPT "
            "students carry metadata (format=humanoid_gpt). If the file was renamed or re-exported, pass --layout"
        )
    raise LayoutError(f"{path} fits several layouts ({', '.join(x.name for x in found)}); pass --layout")
