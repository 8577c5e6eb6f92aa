"""TensorRT engines from exported student ONNX graphs (NVIDIA GPUs: the robot's Jetson or a workstation).

The engine is built for the machine it is built on, so build it there: ``hgpt export tensorrt student.stream.onnx``.
Engines carry no free-form metadata, so the ONNX metadata is written beside the engine as ``<engine>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from humanoid_gpt.deploy.onnx import read_onnx_metadata
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write, write_text_atomic


def import_tensorrt():
    """The ``tensorrt`` module, or an error saying what is missing."""
    try:
        import tensorrt
    except ImportError as e:
        raise HGPTError(
            "building a TensorRT engine needs the `tensorrt` Python package and an NVIDIA GPU with its driver "
            f"({e}); on a machine without them, deploy the ONNX file with ONNX Runtime instead"
        ) from e
    return tensorrt


def build_engine(
    onnx_path: str | Path, out: str | Path | None = None, fp16: bool = False, max_batch: int = 4096
) -> Path:
    """Parse a student ONNX graph and build a serialized engine for batches 1..``max_batch`` (and, for the windowed
    graph, 1..H tokens). Returns the engine path (default: the ONNX path with ``.engine``)."""
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    meta = read_onnx_metadata(onnx_path)
    out = Path(out) if out is not None else onnx_path.with_suffix(".engine")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch; older versions need the flag.
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise HGPTError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    # Windowed graphs take 1..H tokens; the KV GPT's is exact up to its receptive field R.
    context = int(meta.get("receptive_field", meta["context"]))
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = list(tensor.shape)
        low, opt, high = list(shape), list(shape), list(shape)
        low[0], opt[0], high[0] = 1, min(256, max_batch), max_batch
        if meta["graph"] == "windowed":  # (batch, time, obs): 1..H tokens
            low[1], opt[1], high[1] = 1, context, context
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise HGPTError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    with atomic_write(out) as f:
        f.write(bytes(serialized))
    info = {**meta, "tensorrt": trt.__version__, "fp16": fp16, "max_batch": max_batch, "onnx": onnx_path.name}
    write_text_atomic(out.with_name(out.name + ".json"), json.dumps(info, indent=1))
    return out
