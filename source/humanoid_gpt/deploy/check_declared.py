"""What a policy file declares about the robot it was made for (``hgpt sim2sim check``), read into a
:class:`~humanoid_gpt.deploy.check_items.Declared`: our metadata (``humanoid_gpt.onnx``), the BeyondMimic / mjlab
exporter's (``joint_names``, ``joint_stiffness``, ``joint_damping``, ``default_joint_pos``, ``action_scale``,
``observation_names`` as comma-separated strings) or holosoma's JSON; and the graph's observation and action sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.check_items import Declared
from humanoid_gpt.deploy.layouts import mjlab as mjlab_layout
from humanoid_gpt.robot.g1 import G1

BEYONDMIMIC_KEYS = mjlab_layout.METADATA
"""What BeyondMimic's and mjlab's exporters write into ONNX metadata (comma-separated strings)."""
BEYONDMIMIC_TERM_SIZES = mjlab_layout.TERM_SIZES
"""Sizes of the observation terms of the BeyondMimic / mjlab G1 tracking task (160 values in all)."""


_csv = mjlab_layout.csv_values


def _floats(props: dict, key: str) -> np.ndarray | None:
    if key not in props:
        return None
    return np.array([float(v) for v in _csv(props[key])])


def declared_ours(meta: dict) -> Declared:
    arr = lambda key: np.asarray(meta[key], dtype=float) if key in meta else None  # noqa: E731
    return Declared(
        joint_names=list(meta.get("joint_names", [])),
        kp=arr("kp"),
        kd=arr("kd"),
        action_scale=arr("action_scale"),
        effort_limit=arr("effort_limit"),
        default_joint_pos=arr("default_joint_pos"),
        control_dt=meta.get("control_dt"),
        physics_dt=meta.get("physics_dt"),
        quaternion=meta.get("quaternion"),
        observation=[(str(n), int(s)) for n, s in meta.get("obs_layout", [])],
        meta=meta,
    )


def declared_beyondmimic(props: dict) -> Declared:
    names = _csv(props["observation_names"]) if "observation_names" in props else []
    return Declared(
        joint_names=_csv(props.get("joint_names", "")),
        kp=_floats(props, "joint_stiffness"),
        kd=_floats(props, "joint_damping"),
        action_scale=_floats(props, "action_scale"),
        default_joint_pos=_floats(props, "default_joint_pos"),
        quaternion=props.get("quaternion_order") or props.get("quat_order"),
        observation=[(n, BEYONDMIMIC_TERM_SIZES.get(n)) for n in names],
        meta=dict(props),
    )


def declared_holosoma(path: Path, g1: G1) -> Declared:
    """holosoma's JSON metadata (``dof_names``, ``kp``, ``kd``); the rest of its interface is fixed by its exporter:
    actions about its knees-bent default pose with scale 1, the six observation terms in sorted name order."""
    from humanoid_gpt.deploy.layouts import holosoma

    order, kp, kd = holosoma.policy_joints(path, g1)
    names = [g1.joint_names[i] for i in order]
    return Declared(
        joint_names=names,
        kp=kp,
        kd=kd,
        observation=list(holosoma.OBSERVATION_TERMS),
        meta={"_layout": "holosoma"},
        fixed={
            "action_scale": "1.0 on every joint: holosoma's G1 tracking export (not in the file)",
            "default_joint_pos": "the knees-bent keyframe of holosoma's g1_29dof config (not in the file)",
        },
    )


def io_sizes(model) -> tuple[int | None, int | None]:
    """The last dimension of the graph's first 2-D input (the observation) and of its first output (the action)."""

    def last(value_info) -> tuple[int, int | None]:
        dims = value_info.type.tensor_type.shape.dim
        return len(dims), (dims[-1].dim_value or None) if dims else None

    obs = next((last(i)[1] for i in model.graph.input if last(i)[0] == 2), None)
    action = last(model.graph.output[0])[1] if model.graph.output else None
    return obs, action
