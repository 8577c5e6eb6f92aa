"""Student training throughput, peak memory and streaming latency on this machine, against a plain matmul.

    .venv/bin/python benchmarks/bench_students.py [--students gpt-s gpt-b mlp tcn gpt-s-kv] [--context 32] [--batch 64]

For each student, in a fresh process (so peak memory is its own): training tokens/s (forward, SmoothL1 loss, backward,
AdamW step on batches of H-token windows), peak resident memory, and the latency of one streaming control step at
batch 1 and 256. The reference is the GFLOP/s of a 1024x1024 float32 matmul measured in the same run; the ratio says
how much of the machine's dense compute training reaches (6 x parameters FLOPs per token). The KV GPTs
(``gpt-s-kv``, ...) train on windows of H supervised tokens plus their L (W - 1) tokens of burn-in, as DAgger cuts them;
their tokens/s counts supervised tokens. ``benchmarks/bench_latency.py`` has the per-step latency distributions.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import torch


def matmul_gflops(seconds: float = 1.0) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def measure(name: str, context: int, batch: int, seconds: float, queue) -> None:
    from humanoid_gpt.students import build_student, preset
    from humanoid_gpt.students.dagger import DaggerConfig, distillation_loss, make_optimizer
    from humanoid_gpt.students.storage import Rollout

    torch.manual_seed(0)
    model = build_student(preset(name, context=context))
    opt = make_optimizer(model, DaggerConfig())
    length = context + model.training_overlap()  # the KV GPT's windows carry a burn-in prefix
    windows = Rollout(
        torch.randn(batch, length, model.cfg.obs_dim),
        torch.randn(batch, length, model.cfg.num_actions),
        torch.zeros(batch, length, dtype=torch.bool),
    )

    def train_step() -> None:
        loss, _ = distillation_loss(model, windows)
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_step()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        train_step()
        steps += 1
    tokens_per_s = steps * batch * context / (time.perf_counter() - start)

    model.eval()
    latency = {}
    with torch.no_grad():
        for envs in (1, 256):
            cache, count = model.initial_state(envs)
            obs = torch.randn(envs, model.cfg.obs_dim)
            for _ in range(max(context, 2 * model.cfg.attn_window)):  # a full window (or ring lap): the steady state
                _, cache, count = model.step(obs, cache, count)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 2:
                _, cache, count = model.step(obs, cache, count)
                n += 1
            latency[envs] = (time.perf_counter() - start) / n * 1e3
    queue.put(
        {
            "student": name,
            "parameters_m": model.num_parameters() / 1e6,
            "train_tokens_per_s": tokens_per_s,
            "train_gflops": 6 * model.num_parameters() * tokens_per_s / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "step_ms_batch1": latency[1],
            "step_ms_batch256": latency[256],
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", nargs="+", default=["gpt-s", "gpt-b", "mlp", "tcn"])
    p.add_argument("--context", type=int, default=32)
    p.add_argument("--batch", type=int, default=64, help="windows per training step")
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per figure")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    reference = matmul_gflops()
    print(f"reference: float32 1024x1024 matmul {reference:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    rows, ctx = [], mp.get_context("spawn")
    for name in args.students:
        queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(name, args.context, args.batch, args.seconds, queue))
        proc.start()
        row = queue.get()
        proc.join()
        row["fraction_of_matmul"] = row["train_gflops"] / reference
        rows.append(row)
        print(
            f"{name:6s} {row['parameters_m']:6.2f}M params: train {row['train_tokens_per_s']:8.0f} tokens/s "
            f"({row['train_gflops']:.1f} GFLOP/s, {row['fraction_of_matmul']:.2f} of matmul), peak RSS "
            f"{row['peak_rss_mb']:.0f} MB, streaming step {row['step_ms_batch1']:.2f} ms (1 env) / "
            f"{row['step_ms_batch256']:.1f} ms (256 envs)",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reference_gflops": reference, "context": args.context, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
