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


def tensorrt_unavailable() -> str | None:
    """Why this machine cannot build an engine (no ``tensorrt`` package, or no CUDA GPU that torch sees), or None
    when it can. The main job skips its engine for this stated reason instead of failing after the training."""
    try:
        import_tensorrt()
    except HGPTError as e:
        return str(e)
    import torch

    if not torch.cuda.is_available():
        return "building a TensorRT engine needs an NVIDIA GPU with its driver, and torch sees no CUDA device"
    return None


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


def engine_metadata(engine_path: str | Path) -> dict:
    """The metadata written beside an engine (``<engine>.json``: the ONNX metadata plus the build settings)."""
    engine_path = Path(engine_path)
    info = engine_path.with_name(engine_path.name + ".json")
    if not engine_path.is_file():
        raise HGPTError(f"engine {engine_path} does not exist; build one with `hgpt export tensorrt STUDENT.onnx`")
    if not info.is_file():
        raise HGPTError(
            f"{engine_path}: its metadata {info.name} is missing (engines carry none themselves); rebuild it with "
            "`hgpt export tensorrt`, which writes both"
        )
    try:
        return json.loads(info.read_text())
    except ValueError as e:
        raise HGPTError(f"{info}: not readable engine metadata ({e}); rebuild the engine") from e


class EngineRunner:
    """One serialized engine run on the GPU: inputs and outputs by name, as torch tensors. Buffers are torch CUDA
    tensors whose addresses the execution context reads (TensorRT 10's tensor-address API)."""

    def __init__(self, engine_path: str | Path) -> None:
        import torch

        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise HGPTError(f"{engine_path}: running a TensorRT engine needs a CUDA GPU, and torch sees none")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise HGPTError(f"{engine_path}: TensorRT cannot load it (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_input[n]]
        self.outputs = [n for n in names if not is_input[n]]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        self.stream = torch.cuda.Stream()

    def run(self, feeds: dict) -> list:
        """Outputs (torch CPU tensors, in the engine's order) for ``feeds`` (name -> torch tensor or numpy array)."""
        import torch

        keep = []
        for name in self.inputs:
            x = torch.as_tensor(feeds[name]).to("cuda", self.dtypes[name]).contiguous()
            keep.append(x)
            self.context.set_input_shape(name, tuple(x.shape))
            self.context.set_tensor_address(name, x.data_ptr())
        outs = []
        for name in self.outputs:
            y = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name], device="cuda")
            outs.append(y)
            self.context.set_tensor_address(name, y.data_ptr())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise HGPTError("TensorRT failed to run the engine (see its log above)")
        self.stream.synchronize()
        return [y.cpu() for y in outs]


def _torch_dtype(trt, dtype):
    import torch

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int64: torch.int64}
    return table[dtype]
