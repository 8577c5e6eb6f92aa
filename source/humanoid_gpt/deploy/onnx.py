"""ONNX export of a student, with everything a deployment needs in the file's metadata.

Two graphs per student:
- streaming (``<name>.stream.onnx``): ``obs`` (B, D), ``cache`` (B, ...), ``count`` (B,) int64 -> ``action`` (B, A),
  ``cache_out``, ``count_out``. Start an episode with zeros; feed the outputs back each control step.
  The KV GPT (``gpt-kv``) streams through a ring buffer the host owns: ``obs``, ``kv`` (B, L, 2, heads, W, head_dim),
  ``count`` -> ``action``, ``kv_new`` (B, L, 2, heads, head_dim), ``count_out``; the host writes ``kv_new`` into slot
  ``count % W`` of axis 4 of ``kv`` (:func:`write_ring_numpy`) before feeding ``count_out`` back. Writing in place
  saves the whole-cache copy a graph output would cost. Metadata ``cache_update`` says which (``replace`` / ``ring``).
- windowed (``<name>.window.onnx``): ``tokens`` (B, T, D) with 1 <= T <= H, the episode's last T observations ->
  ``action`` (B, A) for the last one (``gpt-kv``: T up to its receptive field R, where it is exact).

Metadata (string key/values, JSON where structured): format and version, model kind and H, joint order, kp, kd,
action scale, effort limits, default pose, control and physics dt, quaternion order, observation layout, action
convention, cache shape (and for ring caches the window W and receptive field R). Ring files are format version 2,
so older readers refuse them instead of misfeeding them. See docs/architecture.md, stage 5.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write, contained_path
from humanoid_gpt.robot.g1 import G1, Actuation
from humanoid_gpt.students.base import Student
from humanoid_gpt.students.checkpoint import load_student

ONNX_FORMAT = "humanoid_gpt.onnx"
ONNX_FORMAT_VERSION = 2
"""Newest version this code reads and writes: 2 adds ring-buffer caches (``cache_update: ring``); files without one
are still written as version 1."""
OPSET = 18


class OnnxMetadataError(HGPTError, ValueError):
    """An ONNX file without our metadata, or made for another robot, task or layout."""


class OnnxExternalDataError(HGPTError, ValueError):
    """An ONNX file whose weights live in another file that is missing or lies outside the model's folder."""


class StreamingGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, obs: torch.Tensor, cache: torch.Tensor, count: torch.Tensor):
        return self.student.step(obs, cache, count)


class RingStreamingGraph(nn.Module):
    """One control step of a ring-cache student: returns the new token's cache entries, not the whole cache."""

    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, obs: torch.Tensor, kv: torch.Tensor, count: torch.Tensor):
        action, entries = self.student.step_entries(self.student.normalizer(obs), kv, count)
        return action, entries, self.student.next_count(count)


def uses_ring_cache(student: Student) -> bool:
    """Students whose streaming cache is a ring buffer the host writes (the KV GPT)."""
    return hasattr(student, "step_entries")


def write_ring_numpy(kv: np.ndarray, kv_new: np.ndarray, count: np.ndarray, window: int) -> np.ndarray:
    """The host's half of a ring-cache step: store ``kv_new`` (B, L, 2, heads, head_dim) in slot ``count % window``
    (``count`` as fed to the step) of ``kv`` (B, L, 2, heads, W, head_dim), in place."""
    kv[np.arange(kv.shape[0]), :, :, :, count % window] = kv_new
    return kv


def stream_step(
    run, obs: np.ndarray, cache: np.ndarray, count: np.ndarray, ring_window: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One control step of a streaming graph through ``run(feeds) -> outputs`` (any runtime): ``(action, cache,
    count)`` after it. A ring cache (``ring_window``: the KV GPT's W) is updated in place; a replaced cache is the
    graph's output."""
    if ring_window is not None:
        action, kv_new, count_out = run({"obs": obs, "kv": cache, "count": count})
        return action, write_ring_numpy(cache, kv_new, count, ring_window), count_out
    return tuple(run({"obs": obs, "cache": cache, "count": count}))


class WindowedGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.student(tokens)[:, -1]


def onnx_metadata(student: Student, meta: dict, g1: G1, graph: str) -> dict[str, str]:
    tracking = meta["tracking"]
    actuation = Actuation.from_dict(meta.get("actuation"))  # a student of a foreign teacher acts as it did
    g1 = g1.with_actuation(actuation)
    ring = graph == "streaming" and uses_ring_cache(student)
    values = {
        "format": ONNX_FORMAT,
        "format_version": 2 if ring else 1,
        "graph": graph,
        "model": student.cfg.kind,
        "context": student.cfg.context,
        "student": student.cfg.to_dict(),
        "cache_shape": list(student.cache_shape()),
        "joint_names": list(g1.joint_names),
        "kp": g1.kp.tolist(),
        "kd": g1.kd.tolist(),
        "action_scale": g1.action_scale.tolist(),
        "default_joint_pos": g1.default_joint_pos.tolist(),
        "effort_limit": g1.effort_limit.tolist(),
        "actuation": "humanoid_gpt" if actuation is None else actuation.name,
        "control_dt": tracking["control_dt"],
        "physics_dt": tracking["physics_dt"],
        "quaternion": "wxyz",  # the order the runtime reads MuJoCo's and the motion clips' rotations in
        "action_relative_to_reference": tracking["action_relative_to_reference"],
        "obs_layout": meta["obs_layout"],
        "robot": meta["robot"],
        "cache_update": "ring" if ring else "replace",
    }
    if uses_ring_cache(student):
        values.update(attn_window=student.cfg.attn_window, receptive_field=student.cfg.kv_receptive_field)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def _export(module: nn.Module, args: tuple, path: Path, names: dict, metadata: dict[str, str]) -> Path:
    import onnx

    module.eval()
    with atomic_write(path) as f, warnings.catch_warnings():
        # The TorchScript exporter warns that shapes it traces are constants: they are (sizes fixed by the config).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            f,
            input_names=names["inputs"],
            output_names=names["outputs"],
            dynamic_axes=names["dynamic"],
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter handles the masked attention and int64 counter directly
        )
    model = onnx.load(str(path))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
    return path


def export_onnx(checkpoint: str | Path, out_dir: str | Path, g1: G1) -> dict[str, Path]:
    """Write the streaming and windowed ONNX graphs of a student checkpoint; returns their paths."""
    student, meta = load_student(checkpoint, g1)
    out_dir = Path(out_dir)
    name = Path(checkpoint).stem
    cache, count = student.initial_state(1)
    obs = torch.zeros(1, student.cfg.obs_dim)
    ring = uses_ring_cache(student)
    inputs = ["obs", "kv", "count"] if ring else ["obs", "cache", "count"]
    outputs = ["action", "kv_new", "count_out"] if ring else ["action", "cache_out", "count_out"]
    stream = _export(
        RingStreamingGraph(student) if ring else StreamingGraph(student),
        (obs, cache, count),
        out_dir / f"{name}.stream.onnx",
        {"inputs": inputs, "outputs": outputs, "dynamic": {n: {0: "batch"} for n in inputs + outputs}},
        onnx_metadata(student, meta, g1, "streaming"),
    )
    tokens = student.cfg.kv_receptive_field if ring else student.cfg.context
    window = _export(
        WindowedGraph(student),
        (torch.zeros(1, tokens, student.cfg.obs_dim),),
        out_dir / f"{name}.window.onnx",
        {
            "inputs": ["tokens"],
            "outputs": ["action"],
            "dynamic": {"tokens": {0: "batch", 1: "time"}, "action": {0: "batch"}},
        },
        onnx_metadata(student, meta, g1, "windowed"),
    )
    return {"streaming": stream, "windowed": window}


def load_onnx_graph(path: str | Path, error: type[Exception] = HGPTError):
    """The ONNX model proto of ``path`` without its external data (never followed), or ``error`` naming the file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise error(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for a file that is not a model
        raise error(f"{path}: not a readable ONNX model ({e})") from e
    check_external_data(model, path)
    return model


def check_external_data(model, path: Path) -> None:
    """Refuse a model whose tensors keep their data in files outside its folder, or in missing files: a model from
    elsewhere must not make its reader open other files (ONNX Runtime refuses them too, less clearly)."""
    for tensor in _tensors(model.graph):
        if tensor.data_location != tensor.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        where = f"{path}: tensor {tensor.name!r}: its external data"
        data = contained_path(location, path.parent, "the model's folder", where, OnnxExternalDataError, absolute=False)
        if not data.is_file():
            raise OnnxExternalDataError(
                f"{where}: {location!r} ({data}) is missing; a model saved with external data is several files. "
                f"Fix: copy {location!r} beside {path.name}"
            )


def _tensors(graph):
    """The graph's tensors that can hold data (initializers and tensor attributes), subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from _tensors(sub)


def read_onnx_metadata(path: str | Path) -> dict:
    """Our metadata of an exported student, decoded; refuses files without it."""
    path = Path(path)
    model = load_onnx_graph(path, OnnxMetadataError)
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("format") != ONNX_FORMAT:
        raise OnnxMetadataError(
            f"{path}: carries no humanoid_gpt metadata (format={props.get('format')!r}); "
            "export students with `hgpt export onnx CHECKPOINT`"
        )
    if int(props.get("format_version", "0")) > ONNX_FORMAT_VERSION:
        raise OnnxMetadataError(f"{path}: format_version {props['format_version']} is newer than this code")
    strings = ("format", "graph", "model", "robot", "cache_update", "quaternion")
    return {k: v if k in strings else _json_or_text(v) for k, v in props.items()}


def _json_or_text(value: str):
    """Structured values are JSON; a key added by another tool (a plain string) stays as it is."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
