"""What the layouts of policies that carry their reference motion share (BeyondMimic's motion exporter and those
derived from it: mjlab, holosoma). Such a graph takes the observation and a ``time_step`` and returns the actions
and row ``min(time_step, N - 1)`` of its motion tables (joint positions and velocities in the policy's joint order,
the pose of one or more bodies). Here: the graph on one thread, the tables read back from it, joints mapped by name,
the pelvis placed from a body's pose by forward kinematics, and the env's clips located in the embedded motion.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.deploy.layouts.base import LayoutError
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.kinematics import forward_kinematics
from humanoid_gpt.robot.g1 import G1


def in_g1_order(order: list[int], values: np.ndarray) -> np.ndarray:
    """Per-joint values (..., 29) from the policy's joint order (``order``: the G1 index of each) to the G1's."""
    out = np.empty_like(values)
    out[..., order] = values
    return out


def joint_order(path: Path, names: list[str], g1: G1, field: str) -> list[int]:
    """The G1 index of each of the policy's joints, matched by name: a permuted order is mapped, a foreign name or a
    missing joint refused naming the metadata ``field``."""
    missing, unknown = sorted(set(g1.joint_names) - set(names)), sorted(set(names) - set(g1.joint_names))
    if missing or unknown or len(names) != g1.num_joints:
        raise LayoutError(
            f"{path}: metadata {field} ({len(names)} names) are not the G1's 29 joints: missing {missing}, unknown "
            f"{unknown}; it must be a policy for the 29-DoF G1 with the MJCF's joint names"
        )
    return [g1.joint_names.index(n) for n in names]


class MotionGraph:
    """The file's graph on one thread: its observation and time-step inputs told apart by size, outputs in the
    exporter's order (the actions first)."""

    def __init__(self, path: Path) -> None:
        from humanoid_gpt.deploy.runtime import ort_session

        self.session = ort_session(path, threads=1, spinning=False)  # an MLP: one core; never spin beside physics
        inputs = {i.shape[-1]: i.name for i in self.session.get_inputs()}
        self.obs_dim = max(inputs)
        self.obs, self.time = inputs[self.obs_dim], inputs.get(1) if len(inputs) > 1 else None

    def run(self, obs: np.ndarray, time_step: int) -> list[np.ndarray]:
        """The outputs for one observation; ``time_step`` is dropped for a plain export (no time input)."""
        feeds = {self.obs: obs.reshape(1, self.obs_dim).astype(np.float32)}
        if self.time is not None:
            feeds[self.time] = np.array([[time_step]], np.float32)
        return [y[0] for y in self.session.run(None, feeds)]


def motion_length(path: Path, exporter: str) -> int:
    """N, the frames of the embedded motion: the rows of the tables the graph gathers its reference outputs from."""
    from onnx import numpy_helper

    from humanoid_gpt.deploy.onnx import load_onnx_graph

    graph = load_onnx_graph(path, LayoutError).graph
    tables = {t.name: tuple(t.dims) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tables[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).shape
    producers = {out: node for node in graph.node for out in node.output}

    def source(name: str) -> str:  # through the Identity nodes newer torch exports put after a buffer
        while name in producers and producers[name].op_type == "Identity":
            name = producers[name].input[0]
        return name

    rows = set()
    for output in graph.output[1:]:
        node = producers.get(output.name)
        shape = tables.get(source(node.input[0])) if node is not None and node.op_type == "Gather" else None
        rows.add(shape[0] if shape else None)
    if len(rows) != 1 or None in rows:
        raise LayoutError(
            f"{path}: cannot tell the embedded motion's length (its reference outputs are not gathered from one "
            f"table, as {exporter}'s exporter writes them); export the policy with {exporter}'s exporter"
        )
    return int(rows.pop())


def reference_tables(path: Path, exporter: str) -> tuple[np.ndarray, ...]:
    """The graph's reference outputs at every time step of its motion, (N, ...) each, float64, read-only, in the
    exporter's order. Read by running the graph (a zero observation: the reference does not depend on it); kept
    for the file's version, as the harness, the policy and the checker all read them."""
    stat = path.stat()
    return _reference_tables(str(path.resolve()), stat.st_mtime_ns, stat.st_size, exporter)


@functools.lru_cache(maxsize=4)
def _reference_tables(path: str, mtime_ns: int, size: int, exporter: str) -> tuple[np.ndarray, ...]:
    graph = MotionGraph(Path(path))
    zero = np.zeros(graph.obs_dim, np.float32)
    rows = [graph.run(zero, t)[1:] for t in range(motion_length(Path(path), exporter))]
    tables = tuple(np.stack(col).astype(np.float64) for col in zip(*rows, strict=True))
    for table in tables:
        table.flags.writeable = False
    return tables


def relative_rotation_6d(frame: torch.Tensor, quat: torch.Tensor) -> torch.Tensor:
    """``quat``'s rotation in ``frame``'s (both w, x, y, z) as these exporters' tasks observe it: the first two
    columns of its rotation matrix, flattened row by row (``mat[..., :2].reshape(N, -1)``: m00, m01, m10, m11, m20,
    m21)."""
    rel = R.quat_mul(R.quat_conjugate(frame), quat)
    axis = lambda i: torch.eye(3, dtype=rel.dtype)[i].expand(*rel.shape[:-1], 3)  # noqa: E731
    columns = torch.stack([R.quat_apply(rel, axis(0)), R.quat_apply(rel, axis(1))], dim=-1)  # (..., 3, 2)
    return columns.reshape(*rel.shape[:-1], 6)


def clip_from_body_pose(
    g1: G1, name: str, joint_pos: np.ndarray, body: str, pos: np.ndarray, quat: np.ndarray, fps: float, source: dict
) -> MotionClip:
    """A G1 clip from joint positions (G1 order) and one body's world pose (quaternions w, x, y, z): the pelvis is
    placed so that forward kinematics puts ``body`` there (the exporters' chains are the MJCF's)."""
    n = len(joint_pos)
    qpos = np.concatenate([np.zeros((n, 3)), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), joint_pos], axis=1)
    local = forward_kinematics(g1, qpos, bodies=(body,))  # the body in the pelvis frame
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    root_quat = R.quat_normalize(R.quat_mul(t(quat), R.quat_conjugate(t(local.quat[:, 0]))))
    root_pos = t(pos) - R.quat_apply(root_quat, t(local.pos[:, 0]))
    provenance = {**source, "tags": ["embedded reference"]}
    return MotionClip(name, fps, root_pos.numpy(), root_quat.numpy(), joint_pos, provenance)


def locate_clips(env, joint_pos: np.ndarray, fps: float) -> list[int | None]:
    """Where each of the env's clips starts in the embedded motion (``joint_pos``, G1 order, at ``fps``), in frames;
    None for a clip that is not a part of it."""
    lib, offsets = env.library, []
    for c in range(len(lib.names)):
        n, clip_fps = int(lib.num_frames[c]), float(lib.fps[c])
        clip = lib.frames(torch.full((n,), c), torch.arange(n, dtype=torch.float64) / clip_fps).joint_pos
        clip = clip.double().numpy()
        # The library reads frames at float32 times: 1e-3 rad absorbs that, and no other motion comes this close.
        close = lambda a, b: np.abs(a - b).max() < 1e-3  # noqa: E731
        starts = [
            s
            for s in np.flatnonzero(np.abs(joint_pos - clip[0]).max(-1) < 1e-3)
            if np.isclose(clip_fps, fps) and s + n <= len(joint_pos) and close(joint_pos[s : s + n], clip)
        ]
        offsets.append(int(starts[0]) if starts else None)
    return offsets


def time_steps(env, offsets: torch.Tensor, length: int) -> torch.Tensor:
    """Each env's row of the embedded tables: its clip's offset plus the env's clock in control steps, clamped to the
    motion's last frame as the exporters' graphs clamp ``time_step``."""
    steps = torch.round(env.clock.motion_time / env.dt).long()
    return (offsets[env.clock.clip_ids] + steps).clamp(max=length - 1)


def run_rows(graph: MotionGraph, x: np.ndarray, steps: torch.Tensor) -> torch.Tensor:
    """The graph's actions (N, A) for observations ``x`` (N, D) at time steps ``steps``: one row per call, as the
    exporters fix the batch to 1."""
    return torch.from_numpy(np.stack([graph.run(x[i], int(steps[i]))[0] for i in range(len(x))])).float()
