"""Latency of one control step of every student on every runtime this machine has: p50 / p99 / max per step against
the 20 ms control period (50 Hz) and the paper's 1.5 ms (TensorRT on an RTX 4090), with the machine's float32 matmul
GFLOP/s and memory read bandwidth measured in the same run as the reference.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_latency.py \\
        [--students mlp tcn gpt-s gpt-b gpt-l gpt-s-kv gpt-b-kv gpt-l-kv] [--runtimes torch-1 ort-1 ort-all tensorrt] \\
        [--steps 10000] [--max-seconds 30] [--batch 1] [--quantize int8-dynamic int8-weights int4-weights] \\
        [--json FILE]

Each student (random weights: latency does not depend on their values) is saved and exported exactly as
``hgpt export onnx`` does; a step is what a robot's control loop runs: ``model.step`` under ``torch.no_grad`` with one
intra-op thread (``torch-1``), the streaming ONNX graph in ONNX Runtime with one intra-op thread (``ort-1``, spinning
on) or all cores (``ort-all``), plus the host's ring-buffer write for the KV GPTs, or ONNX Runtime's TensorRT provider
where ``tensorrt`` imports. Every configuration runs ``--steps`` steps after a warm-up, or fewer when the slowest ones
would take longer than ``--max-seconds`` (the table says how many). ``--quantize`` adds quantized copies of the KV
GPTs' streaming graphs (``humanoid_gpt.deploy.quantize``) at ``ort-1``, with their action error against float32 on a
stream of standard-normal observations (the normalizer is fitted to the same distribution).

Per step: FLOPs (counted by ``torch.utils.flop_counter`` on one steady-state step at batch 1, times the batch) and
bytes streamed (constant tensors of the graph, which is what bounds a batch-1 step, and the cache read and written).
The H of the window models is ``--context`` (default 16, the distillation experiments' H); the KV GPTs use their
presets (W = 16, H = 32 supervised tokens per training window: H does not change their step).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CONTROL_PERIOD_MS = 20.0
PAPER_MS = 1.5
DEFAULT_STUDENTS = ["mlp", "tcn", "gpt-s", "gpt-b", "gpt-l", "gpt-s-kv", "gpt-b-kv", "gpt-l-kv"]


# References ---------------------------------------------------------------------------------------------------------


def matmul_gflops(threads: int, seconds: float = 1.0) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def read_gbps(megabytes: float, seconds: float = 0.5) -> float:
    """Bytes/s of summing a float32 buffer on one thread: DRAM for large buffers, caches for small ones."""
    torch.set_num_threads(1)
    x = torch.ones(int(megabytes * 2**20 / 4))
    x.sum()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x.sum()
        n += 1
    return x.numel() * 4 * n / (time.perf_counter() - start) / 1e9


# Students -----------------------------------------------------------------------------------------------------------


def build(name: str, context: int, folder: Path, g1):
    """A student with random weights, its normalizer fitted to standard-normal tokens, saved and exported."""
    from humanoid_gpt.deploy.onnx import export_onnx
    from humanoid_gpt.mdp.config import TrackingConfig
    from humanoid_gpt.runs import save_checkpoint
    from humanoid_gpt.students import build_student, preset
    from humanoid_gpt.students.checkpoint import student_meta

    torch.manual_seed(0)
    overrides = {} if name.endswith("-kv") else {"context": context}
    if name == "tcn" and context < 31:  # the experiments' TCN: its receptive field must fit in H
        overrides["tcn_dilations"] = (1, 1, 2, 2, 1, 1, 2, 4)
    model = build_student(preset(name, **overrides))
    model.normalizer.train()
    model.normalizer.update(torch.randn(4096, model.cfg.obs_dim))
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"meta": student_meta(model.cfg, g1, TrackingConfig().to_dict()), "model": model.state_dict()}
    save_checkpoint(folder / "s.pt", payload)
    return model, export_onnx(folder / "s.pt", folder, g1)["streaming"]


def warmup_steps(model) -> int:
    return max(model.cfg.context, 2 * model.cfg.attn_window) + 20


def flops_per_step(model) -> int:
    """Floating-point operations of one steady-state step at batch 1 (matrix products and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    cache, count = model.initial_state(1)
    obs = torch.randn(1, model.cfg.obs_dim)
    with torch.no_grad():
        for _ in range(warmup_steps(model)):
            _, cache, count = model.step(obs, cache, count)
        with FlopCounterMode(display=False) as counter:
            model.step(obs, cache, count)
    return int(counter.get_total_flops())


def step_bytes(model, onnx_path: Path, batch: int) -> dict:
    from humanoid_gpt.deploy.quantize import weight_bytes

    cache = int(np.prod(model.cache_shape())) * 4 * batch
    ring = hasattr(model, "step_entries")
    written = cache // model.cfg.attn_window if ring else cache  # a ring writes one slot, others the whole cache
    return {"weights": weight_bytes(onnx_path), "cache_read": cache, "cache_written": written}


# Runtimes -----------------------------------------------------------------------------------------------------------


class TorchRunner:
    def __init__(self, model, batch: int) -> None:
        self.model = model
        self.cache, self.count = model.initial_state(batch)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            action, self.cache, self.count = self.model.step(torch.from_numpy(obs), self.cache, self.count)
        return action.numpy()


def tensorrt_stream(path: Path, batch: int):
    """The streaming graph through ONNX Runtime's TensorRT provider (how the authors' release runs it), or the
    reason it cannot run here."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return None, f"tensorrt does not import ({e}); it needs an NVIDIA GPU and its driver"
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        return None, "this onnxruntime build has no TensorrtExecutionProvider (install onnxruntime-gpu)"
    from humanoid_gpt.deploy.runtime import OnnxStream

    stream = OnnxStream(path, batch)
    stream.session = ort.InferenceSession(str(path), providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    return stream.step, None


def runner_for(runtime: str, model, path: Path, batch: int):
    """(step function, None) or (None, why this runtime is skipped)."""
    from humanoid_gpt.deploy.runtime import OnnxStream

    if runtime == "torch-1":
        torch.set_num_threads(1)
        return TorchRunner(model, batch), None
    if runtime == "torch-all":
        torch.set_num_threads(os.cpu_count() or 1)
        return TorchRunner(model, batch), None
    if runtime == "ort-1":
        return OnnxStream(path, batch, threads=1).step, None
    if runtime == "ort-all":
        return OnnxStream(path, batch, threads=None).step, None
    if runtime == "tensorrt":
        return tensorrt_stream(path, batch)
    raise ValueError(f"unknown runtime {runtime!r}")


def time_steps(step, obs_pool: np.ndarray, warmup: int, steps: int, max_seconds: float, label: str) -> np.ndarray:
    """Per-step wall times (ms) after ``warmup`` steps: ``steps`` of them, or as many as fit in ``max_seconds``."""
    from tqdm import tqdm

    for i in range(warmup):
        step(obs_pool[i % len(obs_pool)])
    times = []
    deadline = time.perf_counter() + max_seconds
    with tqdm(total=steps, desc=label, unit="step", leave=False, mininterval=0.5) as bar:
        for i in range(steps):
            obs = obs_pool[i % len(obs_pool)]
            start = time.perf_counter()
            step(obs)
            end = time.perf_counter()
            times.append(end - start)
            bar.update()
            if end > deadline:
                break
    return np.array(times) * 1e3


def action_error(reference: Path, candidate: Path, obs_pool: np.ndarray, steps: int = 200) -> tuple[float, float]:
    from humanoid_gpt.deploy.runtime import OnnxStream

    a, b = OnnxStream(reference, obs_pool.shape[1]), OnnxStream(candidate, obs_pool.shape[1])
    diffs = [np.abs(a.step(obs_pool[i % len(obs_pool)]) - b.step(obs_pool[i % len(obs_pool)])) for i in range(steps)]
    return float(np.max(diffs)), float(np.mean(diffs))


# Main ---------------------------------------------------------------------------------------------------------------


def row_line(row: dict) -> str:
    if row.get("skipped"):
        return f"{row['student']:22s} {row['runtime']:9s} skipped: {row['skipped']}"
    err = f"  action err max {row['err_max']:.4f} mean {row['err_mean']:.5f}" if "err_max" in row else ""
    return (
        f"{row['student']:22s} {row['runtime']:9s} {row['steps']:6d} {row['p50_ms']:9.3f} {row['p99_ms']:9.3f} "
        f"{row['max_ms']:9.3f} {100 * row['p50_ms'] / CONTROL_PERIOD_MS:6.1f}% {row['p50_ms'] / PAPER_MS:7.2f}x "
        f"{row['mflops']:9.1f} {row['weight_mb']:8.2f} {row['cache_mb']:8.3f}{err}"
    )


HEADER = (
    f"{'student':22s} {'runtime':9s} {'steps':>6s} {'p50 ms':>9s} {'p99 ms':>9s} {'max ms':>9s} {'/20ms':>7s} "
    f"{'/1.5ms':>8s} {'MFLOP':>9s} {'wts MB':>8s} {'cache MB':>8s}"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", nargs="+", default=DEFAULT_STUDENTS)
    p.add_argument("--runtimes", nargs="+", default=["torch-1", "ort-1", "ort-all", "tensorrt"])
    p.add_argument("--steps", type=int, default=10_000, help="timed steps per configuration")
    p.add_argument("--max-seconds", type=float, default=30.0, help="stop a configuration's timing after this long")
    p.add_argument("--batch", type=int, default=1, help="envs per step")
    p.add_argument("--context", type=int, default=16, help="H of the window students")
    p.add_argument("--quantize", nargs="*", default=["int8-dynamic", "int8-weights", "int4-weights"])
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    from humanoid_gpt import configure_process

    configure_process()
    from humanoid_gpt.deploy.quantize import quantize_onnx, weight_bytes
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    cores = torch.get_num_threads()
    reference = {
        "matmul_gflops_1_thread": matmul_gflops(1),
        f"matmul_gflops_{cores}_threads": matmul_gflops(cores),
        "read_gbps_256mb": read_gbps(256),
        "read_gbps_8mb": read_gbps(8),
    }
    print(
        f"reference: float32 1024x1024 matmul {reference['matmul_gflops_1_thread']:.1f} GFLOP/s on 1 thread, "
        f"{reference[f'matmul_gflops_{cores}_threads']:.1f} on {cores}; one-thread reads "
        f"{reference['read_gbps_256mb']:.1f} GB/s (256 MB) / {reference['read_gbps_8mb']:.1f} GB/s (8 MB); "
        f"batch {args.batch}; control period {CONTROL_PERIOD_MS} ms, paper {PAPER_MS} ms",
        flush=True,
    )
    print(HEADER, flush=True)
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.students:
            model, path = build(name, args.context, Path(tmp) / name, g1)
            obs_pool = rng.standard_normal((64, args.batch, model.cfg.obs_dim)).astype(np.float32)
            torch.set_num_threads(1)
            flops = flops_per_step(model) * args.batch
            sizes = step_bytes(model, path, args.batch)
            base = {
                "student": name,
                "parameters_m": model.num_parameters() / 1e6,
                "mflops": flops / 1e6,
                "weight_mb": sizes["weights"] / 1e6,
                "cache_mb": sizes["cache_read"] / 1e6,
                "cache_written_mb": sizes["cache_written"] / 1e6,
                "batch": args.batch,
            }
            variants = [(name, path, args.runtimes)]
            if hasattr(model, "step_entries"):
                for scheme in args.quantize:
                    quantized = quantize_onnx(path, scheme)
                    variants.append((f"{name} {scheme}", quantized, ["ort-1"]))
            for label, onnx_path, runtimes in variants:
                for runtime in runtimes:
                    row = {**base, "student": label, "runtime": runtime}
                    if onnx_path != path:
                        row["weight_mb"] = weight_bytes(onnx_path) / 1e6
                        row["err_max"], row["err_mean"] = action_error(path, onnx_path, obs_pool)
                    step, skipped = runner_for(runtime, model, onnx_path, args.batch)
                    if step is None:
                        row["skipped"] = skipped
                    else:
                        times = time_steps(
                            step, obs_pool, warmup_steps(model), args.steps, args.max_seconds, f"{label} {runtime}"
                        )
                        row.update(
                            steps=len(times),
                            p50_ms=float(np.percentile(times, 50)),
                            p99_ms=float(np.percentile(times, 99)),
                            max_ms=float(times.max()),
                        )
                    rows.append(row)
                    print(row_line(row), flush=True)
    torch.set_num_threads(cores)
    short = [f"{r['student']} {r['runtime']} ({r['steps']})" for r in rows if r.get("steps", args.steps) < args.steps]
    if short:
        print(f"fewer than {args.steps} steps (the --max-seconds budget): {', '.join(short)}")
    if args.json:
        args.json.write_text(
            json.dumps({"reference": reference, "args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
