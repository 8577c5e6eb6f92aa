"""Exporting a student for deployment, checked: its ONNX graphs (:func:`~humanoid_gpt.deploy.onnx.export_onnx`), the
streaming graph stepped against PyTorch, quantized copies and a TensorRT engine. One function, so that ``hgpt export
onnx`` and the main job's export stage write the same files and refuse the same wrong export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.deploy.onnx import export_onnx
from humanoid_gpt.deploy.runtime import OnnxStream
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.flags import option
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.students.checkpoint import load_student


class ParityError(HGPTError, ValueError):
    """The exported streaming graph computes other actions than the PyTorch student it came from."""


@dataclass(frozen=True)
class ExportSettings:
    """What an export writes besides the two ONNX graphs, and how closely the streaming one must match PyTorch."""

    quantize: list[str] = field(default_factory=list)  # int8-dynamic, fp16, ... (deploy.quantize)
    parity_steps: int = option("streaming ONNX against PyTorch, step by step, on random observations", 1, default=64)
    parity_tolerance: float = option("largest |action| difference the export may show", 0, default=1e-5)
    tensorrt: bool = False  # also build a TensorRT engine; where it cannot (no tensorrt or no GPU): skipped, saying why


@dataclass
class Exported:
    """The files an export wrote and what its check measured."""

    streaming: Path
    windowed: Path
    parity_max_abs: float
    quantized: dict[str, Path] = field(default_factory=dict)
    engine: Path | None = None
    engine_skipped: str | None = None
    """Why no TensorRT engine was built though one was asked for (no ``tensorrt`` package or no GPU)."""


def parity(checkpoint: Path, onnx_path: Path, g1: G1, steps: int, seed: int) -> float:
    """Largest |action| difference between the streaming ONNX graph and the PyTorch student over ``steps`` steps
    of random observations in 2 streams (the second restarted halfway, so resets are checked too)."""
    student, _ = load_student(checkpoint, g1)
    stream = OnnxStream(onnx_path, batch=2)
    rng = np.random.default_rng(seed)
    cache, count = student.initial_state(2)
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            if t == steps // 2:
                stream.reset(np.array([False, True]))
                fresh, _ = student.initial_state(1)
                cache[1:], count[1:] = fresh, 0
            obs = rng.standard_normal((2, student.cfg.obs_dim)).astype(np.float32)
            want, cache, count = student.step(torch.from_numpy(obs), cache, count)
            worst = max(worst, float(np.abs(stream.step(obs) - want.numpy()).max()))
    return worst


def export_student(
    checkpoint: str | Path,
    out_dir: str | Path,
    g1: G1,
    settings: ExportSettings = ExportSettings(),
    seed: int = 0,
    engine: Path | None = None,
    log: Callable[[str], None] = print,
) -> Exported:
    """Write the student's ONNX graphs into ``out_dir``, check the streaming one against PyTorch (a difference above
    ``settings.parity_tolerance`` is a :class:`ParityError`: the file must not reach a robot), then the quantized
    copies and, where this machine can build one, the TensorRT engine (``engine``, default beside the graph).
    ``seed``: the check's random observations."""
    checkpoint = Path(checkpoint)
    paths = export_onnx(checkpoint, out_dir, g1)
    streaming = paths["streaming"]
    err = parity(checkpoint, streaming, g1, settings.parity_steps, seed)
    log(f"{streaming.name}: max |ONNX - PyTorch| = {err:.2e} over {settings.parity_steps} steps")
    if not err <= settings.parity_tolerance:
        raise ParityError(
            f"{streaming}: the streaming ONNX differs from PyTorch by {err:.2e} > the parity tolerance "
            f"{settings.parity_tolerance}; the export is wrong (report it with the checkpoint)"
        )
    out = Exported(streaming, paths["windowed"], err)
    if settings.quantize:
        from humanoid_gpt.deploy.quantize import quantize_onnx

        out.quantized = {scheme: quantize_onnx(streaming, scheme) for scheme in settings.quantize}
    if settings.tensorrt:
        from humanoid_gpt.deploy.tensorrt import build_engine, tensorrt_unavailable

        out.engine_skipped = tensorrt_unavailable()
        if out.engine_skipped is None:
            out.engine = Path(build_engine(streaming, engine))
    return out
