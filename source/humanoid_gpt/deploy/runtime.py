"""Running a streaming student ONNX one control step at a time with ONNX Runtime, outside the harness: latency
benchmarks, quantization checks, teleoperation (docs/architecture.md, stage 5).

The harness policy (:class:`humanoid_gpt.deploy.policies.OnnxStudentPolicy`) does the same inside an env; this class
needs only the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from humanoid_gpt.deploy.onnx import OnnxMetadataError, load_onnx_graph, read_onnx_metadata, stream_step


def ort_session(path: str | Path, threads: int | None = 1, spinning: bool = True):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (None: ONNX Runtime's default, all cores).
    ``spinning``: worker threads spin between runs, which cuts step jitter on a robot's dedicated core."""
    import onnxruntime as ort

    load_onnx_graph(path, OnnxMetadataError)  # refuses unreadable files and external data outside the folder
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxStream:
    """``batch`` envs streamed through a student's streaming graph: ``step(obs)`` -> actions; ``reset(starts)``
    begins new episodes. Handles both cache kinds (``replace`` and the KV GPT's host-written ``ring``)."""

    def __init__(self, path: str | Path, batch: int = 1, threads: int | None = 1, spinning: bool = True) -> None:
        self.path = Path(path)
        self.meta = read_onnx_metadata(path)
        if self.meta["graph"] != "streaming":
            raise OnnxMetadataError(f"{path} is the {self.meta['graph']} graph; stream the .stream.onnx one")
        self.session = ort_session(path, threads, spinning)
        self.ring_window = int(self.meta["attn_window"]) if self.meta.get("cache_update") == "ring" else None
        self.cache = np.zeros((batch, *self.meta["cache_shape"]), dtype=np.float32)
        self.count = np.zeros(batch, dtype=np.int64)

    def reset(self, starts: np.ndarray | None = None) -> None:
        """Forget the history of the envs where ``starts`` is True (all envs when None)."""
        starts = slice(None) if starts is None else np.asarray(starts, dtype=bool)
        self.cache[starts] = 0.0
        self.count[starts] = 0

    def step(self, obs: np.ndarray) -> np.ndarray:
        """One control step: (B, obs_dim) float32 -> (B, num_actions)."""
        obs = np.ascontiguousarray(obs, dtype=np.float32)
        run = lambda feeds: self.session.run(None, feeds)  # noqa: E731
        action, self.cache, self.count = stream_step(run, obs, self.cache, self.count, self.ring_window)
        return action
