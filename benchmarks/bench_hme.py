"""HME throughput on one core: embedding frames/s (features, windows, PAE encoder and FFT) and K-Means time at 10k
and 1M synthetic embeddings.

Targets (issue 10): embedding at least 100k frames/s on one CPU core. References measured in the same run: a float32
matmul's GFLOP/s (what the convolutions stand on) for the embedding, and for K-Means one plain distance matmul of the
same size (N x D times D x K), so K-Means time reads as "this many full distance passes".

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_hme.py

Without data under HGPT_DATA_ROOT the embedding runs on synthetic clips of the same length.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from humanoid_gpt import settings
from humanoid_gpt.hme.config import HMEConfig
from humanoid_gpt.hme.embed import baseline_vectors, segment_vectors
from humanoid_gpt.hme.features import FEATURE_DIM, frame_features, segment_clip
from humanoid_gpt.hme.kmeans import kmeans
from humanoid_gpt.hme.pae import PeriodicAutoencoder
from humanoid_gpt.motion.clip import MotionClip


def matmul_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        calls += 1
    return calls * 2 * n**3 / (time.perf_counter() - start) / 1e9


def load_corpus(limit: int) -> list[MotionClip]:
    folders = [settings.g1_motions_dir(d) for d in ("lafan1", "g1_moves")]
    folders = [f for f in folders if f.is_dir()]
    if not folders:
        rng = np.random.default_rng(0)
        print("no data under HGPT_DATA_ROOT: synthetic clips (3 min at 30 fps each)")
        n = 5400
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        pos = np.c_[np.zeros((n, 2)), np.full(n, 0.78)]
        return [MotionClip(f"synthetic{i}", 30.0, pos, quat, rng.normal(0, 0.2, (n, 29))) for i in range(limit)]
    from humanoid_gpt.motion import load_clips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clips(folders, progress=True)[:limit]


def bench_embedding(clips: list[MotionClip], cfg: HMEConfig, paes: int) -> dict:
    """Frames/s of the whole embed step on loaded clips (file reading and validation excluded)."""
    p = cfg.pae
    models = [
        PeriodicAutoencoder(FEATURE_DIM, p.window_frames, p.sample_dt, p.channels, p.width, p.kernel).eval()
        for _ in range(paes)
    ]
    source_frames = sum(c.num_frames for c in clips)
    start = time.perf_counter()
    rate_frames = segments = 0
    for clip in clips:
        feats = frame_features(clip, p.rate)
        segs = segment_clip(clip.num_frames, clip.fps, cfg.segment_seconds, p, clip.name)
        bounds = [(s.lo, min(s.hi, len(feats))) for s in segs]
        segment_vectors(models, feats, bounds, cfg)
        baseline_vectors(feats, bounds)
        rate_frames += len(feats)
        segments += len(segs)
    seconds = time.perf_counter() - start
    return {
        "clips": len(clips),
        "segments": segments,
        "seconds": seconds,
        "source_frames_per_s": source_frames / seconds,
        "frames_50hz_per_s": rate_frames / seconds,
    }


def bench_kmeans(n: int, dim: int, k: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, dim)).astype(np.float32)
    x = centres[rng.integers(0, k, n)] + rng.normal(0, 1, (n, dim)).astype(np.float32)
    xt, ct = torch.from_numpy(x), torch.from_numpy(centres)
    start = time.perf_counter()
    xt @ ct.T
    ref = time.perf_counter() - start
    start = time.perf_counter()
    result = kmeans(x, k, seed=seed, iterations=100, restarts=1)
    seconds = time.perf_counter() - start
    return {"n": n, "dim": dim, "k": k, "seconds": seconds, "matmul_seconds": ref, "iterations": result.iterations}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clips", type=int, default=1000, help="at most this many clips of the shared data")
    p.add_argument("--paes", type=int, default=2, help="PAEs per embedding (partitions)")
    p.add_argument("--k", type=int, default=300)
    p.add_argument("--dim", type=int, default=64, help="HME dimensions of the synthetic K-Means data")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gflops = matmul_gflops()
    print(f"reference: float32 1024^3 matmul {gflops:.1f} GFLOP/s on {args.threads} thread(s)")

    cfg = HMEConfig()
    clips = load_corpus(args.clips)
    e = bench_embedding(clips, cfg, args.paes)
    target = "met" if e["frames_50hz_per_s"] >= 1e5 else "MISSED"
    print(
        f"embedding: {e['clips']} clips -> {e['segments']} segments with {args.paes} PAEs in {e['seconds']:.2f} s: "
        f"{e['frames_50hz_per_s']:,.0f} frames/s at {cfg.pae.rate:g} Hz ({e['source_frames_per_s']:,.0f} file "
        f"frames/s); target 100,000/s: {target}; per GFLOP/s of matmul: {e['frames_50hz_per_s'] / gflops:,.0f}"
    )
    for n in args.sizes:
        r = bench_kmeans(n, args.dim, args.k)
        print(
            f"K-Means N={n:,} D={r['dim']} K={r['k']}: {r['seconds']:.2f} s ({r['iterations']} "
            f"{'mini-batch steps' if n > 200_000 else 'Lloyd iterations'}); one distance matmul "
            f"{r['matmul_seconds'] * 1e3:.1f} ms; ratio {r['seconds'] / r['matmul_seconds']:.0f}x"
        )


if __name__ == "__main__":
    main()
