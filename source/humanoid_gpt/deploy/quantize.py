"""Smaller weights for a faster CPU step: quantized copies of a student's streaming ONNX (docs/architecture.md,
stage 5).

At batch 1 a control step is bound by reading the weights (GPT-S: 22 MB of float32), not by arithmetic (2 FLOPs per
weight), so fewer weight bytes per step is what makes it faster. Schemes (ONNX Runtime's own quantizers):

- ``int8-dynamic``: 8-bit weights per output channel, activations quantized on the fly (``quantize_dynamic``):
  ~4x fewer weight bytes, integer matrix products. Weights and activations are both unsigned (u8u8): ONNX Runtime's
  u8s8 kernels (signed weights, its default) saturate on x86 CPUs without VNNI (AVX2 only: ``vpmaddubsw`` sums two
  u8 x s8 products into int16), so that copy's error depended on the user's CPU; u8u8 products widen to 16 bits first
  and saturate on no CPU. Measured on an AVX2-only x86 (no ``avx512_vnni`` / ``avx_vnni``; ORT 1.30, one thread, a
  loaded 2-core machine, so latencies are indicative), as mean / worst |action - float32 action| over 2 envs x 40
  steps of real observations (``tests/test_student_kv.py``'s episode; GPT-S-KV with random weights and its
  normalizer fitted to them), and ``ort-1`` p50 step time of GPT-S-KV (``benchmarks/bench_latency.py``'s timing;
  float32: 6.6 ms):

  option                          tiny KV GPT            GPT-S-KV               GPT-S-KV p50
  u8s8 per-channel (until now)    0.0065 / 0.091         0.0172 / 0.131         2.0 ms
  u8s8 per-channel, reduce_range  0.0016 / 0.0070        0.0068 / 0.036         1.4 ms
  u8s8 per-tensor                 0.0017 / 0.025         0.0050 / 0.023         2.2 ms
  u8s8 per-tensor, reduce_range   0.0020 / 0.012         0.0083 / 0.037         2.3 ms
  u8u8 per-channel (the default)  0.0010 / 0.0045        0.0037 / 0.017         1.5 ms
  u8u8 per-tensor                 0.0012 / 0.0054        0.0045 / 0.023         1.2 ms
  s8s8 static QDQ per-channel     0.0028 / 0.063         0.0094 / 0.102         6.8 ms
  s8s8 static QDQ per-tensor      0.0018 / 0.0087        0.0067 / 0.030         6.3 ms

  (mean |action| 0.085 for the tiny GPT, 0.25 for GPT-S-KV: the default's mean error is 1.2% / 1.5% of it, the
  old u8s8's 7.7% / 6.9%, beyond the test's 5%.) s8s8 needs static quantization (calibration observations an
  export does not have; here the evaluation's own, which flatters it) and its QDQ graph ran as slowly as float32.
  ``int8-weights`` for comparison: 0.0009 / 0.0044 (tiny), 0.0030 / 0.015 and 1.8 ms (GPT-S-KV).
- ``int8-weights`` / ``int4-weights``: weight-only block quantization (``MatMulNBits``, blocks of 32, int8 compute
  where the CPU has it): 4x / ~7x fewer weight bytes.

Only matrix products are quantized (the GPT's step graph exports its linear layers as MatMul for this); norms,
attention and the cache stay float32. :func:`action_error` measures what it costs on real observations.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.onnx import read_onnx_metadata
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write

SCHEMES = ("int8-dynamic", "int8-weights", "int4-weights")


def quantize_onnx(path: str | Path, scheme: str = "int8-dynamic", out: str | Path | None = None) -> Path:
    """A quantized copy of a student ONNX (default ``<name>.<scheme>.onnx`` beside it) with the same metadata plus
    ``quantization``; returns its path."""
    import onnx

    if scheme not in SCHEMES:
        raise HGPTError(f"unknown quantization {scheme!r}; choose one of {', '.join(SCHEMES)}")
    path = Path(path)
    read_onnx_metadata(path)  # refuse files that are not our exports before any work
    out = Path(out) if out is not None else path.with_name(f"{path.stem}.{scheme}.onnx")
    model = onnx.load(str(path))
    if scheme == "int8-dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:  # quantize_dynamic writes to a path only
            # u8u8: exact integer products on every x86 (u8s8 saturates without VNNI; module docstring)
            quantize_dynamic(str(path), f"{tmp}/q.onnx", weight_type=QuantType.QUInt8, per_channel=True)
            quantized = onnx.load(f"{tmp}/q.onnx")
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        logging.getLogger(MatMulNBitsQuantizer.__module__).setLevel(logging.WARNING)  # one INFO line per node
        bits = 8 if scheme == "int8-weights" else 4
        # accuracy_level 4: int8 activations in the products (VNNI); level 0 unpacks to float32 and is ~20x slower.
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=bits)
        quantizer = MatMulNBitsQuantizer(model, algo_config=config)
        quantizer.process()
        quantized = quantizer.model.model
    props = {p.key: p.value for p in model.metadata_props}
    props["quantization"] = json.dumps(scheme)
    del quantized.metadata_props[:]
    for key, value in props.items():
        quantized.metadata_props.add(key=key, value=value)
    with atomic_write(out) as f:
        f.write(quantized.SerializeToString())
    return out


def weight_bytes(path: str | Path) -> int:
    """Bytes of the graph's constant tensors (weights and tables): what a batch-1 step streams from memory."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def action_error(reference: str | Path, candidate: str | Path, tokens: np.ndarray, starts: np.ndarray | None = None):
    """Stream ``tokens`` (B, T, obs_dim) through two streaming exports (``starts`` (B, T) marks episode starts after
    the first token); returns (max, mean) absolute action difference over every step."""
    from humanoid_gpt.deploy.runtime import OnnxStream

    a, b = OnnxStream(reference, tokens.shape[0]), OnnxStream(candidate, tokens.shape[0])
    diffs = []
    for t in range(tokens.shape[1]):
        if starts is not None and t > 0:
            a.reset(starts[:, t])
            b.reset(starts[:, t])
        diffs.append(np.abs(a.step(tokens[:, t]) - b.step(tokens[:, t])))
    d = np.stack(diffs)
    return float(d.max()), float(d.mean())
