"""Motion-library query throughput: frame-queries per second for batches of 4096 (clip, time) queries on one core.

Target (issue 2): at least 1M frame-queries/s. The reference in the same run is a plain gather of the same rows
(``torch.index_select`` of 2 x 4096 rows, no interpolation): the floor any query of this layout pays.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_motion_library.py
"""

from __future__ import annotations

import argparse
import time

import torch

from humanoid_gpt import settings
from humanoid_gpt.motion import load_clips
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import load_g1


def rate(fn, n: int, seconds: float = 2.0) -> float:
    for _ in range(10):
        fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="lafan1")
    p.add_argument("--queries", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    g1 = load_g1()
    t0 = time.perf_counter()
    clips = load_clips([settings.g1_motions_dir(args.dataset)], g1, progress=True)
    t1 = time.perf_counter()
    lib = MotionLibrary.from_clips(clips, g1)
    t2 = time.perf_counter()
    print(
        f"{lib.num_clips} clips, {lib.total_frames} frames: read+validate {t1 - t0:.1f} s, build (FK) {t2 - t1:.1f} s "
        f"({lib.total_frames / (t2 - t1):,.0f} frames/s), {lib._data.numel() * 4 / 2**20:.0f} MiB"
    )

    gen = torch.Generator().manual_seed(0)
    ids, times = lib.sample(args.queries, gen)
    rows = torch.randint(0, lib.total_frames, (2 * args.queries,), generator=gen)
    query = rate(lambda: lib.frames(ids, times), args.queries)
    gather = rate(lambda: torch.index_select(lib._data, 0, rows), args.queries)
    print(
        f"frames(): {query:,.0f} frame-queries/s with {args.queries} queries per call on {args.threads} thread(s) "
        f"({args.queries / query * 1e3:.2f} ms per call); target 1,000,000/s: {'met' if query >= 1e6 else 'MISSED'}"
    )
    print(f"reference gather of the same rows: {gather:,.0f}/s; query / gather = {query / gather:.2f}")


if __name__ == "__main__":
    main()
