"""ONNX export of a student, with everything a deployment needs in the file's metadata.

Two graphs per student:
- streaming (``<name>.stream.onnx``): ``obs`` (B, D), ``cache`` (B, ...), ``count`` (B,) int64 -> ``action`` (B, A),
  ``cache_out``, ``count_out``. Start an episode with zeros; feed the outputs back each control step.
- windowed (``<name>.window.onnx``): ``tokens`` (B, T, D) with 1 <= T <= H, the episode's last T observations ->
  ``action`` (B, A) for the last one.

Metadata (string key/values, JSON where structured): format and version, model kind and H, joint order, kp, kd,
action scale, default pose, control dt, observation layout, action convention, cache shape.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.students.base import Student
from humanoid_gpt.students.checkpoint import load_student

ONNX_FORMAT = "humanoid_gpt.onnx"
ONNX_FORMAT_VERSION = 1
OPSET = 18


class OnnxMetadataError(HGPTError, ValueError):
    """An ONNX file without our metadata, or made for another robot, task or layout."""


class StreamingGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, obs: torch.Tensor, cache: torch.Tensor, count: torch.Tensor):
        return self.student.step(obs, cache, count)


class WindowedGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.student(tokens)[:, -1]


def onnx_metadata(student: Student, meta: dict, g1: G1, graph: str) -> dict[str, str]:
    tracking = meta["tracking"]
    values = {
        "format": ONNX_FORMAT,
        "format_version": ONNX_FORMAT_VERSION,
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
        "control_dt": tracking["control_dt"],
        "action_relative_to_reference": tracking["action_relative_to_reference"],
        "obs_layout": meta["obs_layout"],
        "robot": meta["robot"],
    }
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
    stream = _export(
        StreamingGraph(student),
        (obs, cache, count),
        out_dir / f"{name}.stream.onnx",
        {
            "inputs": ["obs", "cache", "count"],
            "outputs": ["action", "cache_out", "count_out"],
            "dynamic": {n: {0: "batch"} for n in ("obs", "cache", "count", "action", "cache_out", "count_out")},
        },
        onnx_metadata(student, meta, g1, "streaming"),
    )
    window = _export(
        WindowedGraph(student),
        (torch.zeros(1, student.cfg.context, student.cfg.obs_dim),),
        out_dir / f"{name}.window.onnx",
        {
            "inputs": ["tokens"],
            "outputs": ["action"],
            "dynamic": {"tokens": {0: "batch", 1: "time"}, "action": {0: "batch"}},
        },
        onnx_metadata(student, meta, g1, "windowed"),
    )
    return {"streaming": stream, "windowed": window}


def read_onnx_metadata(path: str | Path) -> dict:
    """Our metadata of an exported student, decoded; refuses files without it."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxMetadataError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for a file that is not a model
        raise OnnxMetadataError(f"{path}: not a readable ONNX model ({e})") from e
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("format") != ONNX_FORMAT:
        raise OnnxMetadataError(
            f"{path}: carries no humanoid_gpt metadata (format={props.get('format')!r}); "
            "export students with `hgpt export onnx CHECKPOINT`"
        )
    if int(props.get("format_version", "0")) > ONNX_FORMAT_VERSION:
        raise OnnxMetadataError(f"{path}: format_version {props['format_version']} is newer than this code")
    return {k: v if k in ("format", "graph", "model", "robot") else json.loads(v) for k, v in props.items()}
