"""Corpus benchmark: end-to-end build speed, and motion-library load time from the corpus against from CSVs.

1. Builds a corpus from ``--clips`` LAFAN1-G1 takes (and, with ``--bvh``, the LAFAN1 BVH takes retargeted) with the
   default filter and warps, in a fresh folder: prints source frames read per second and corpus frames (50 Hz,
   warps included, forward kinematics cached) written per second of wall time.
2. Loads the motion library for every clip of that corpus twice: ``catalog.store.load_library`` (memory-mapped
   shards, no forward kinematics) and the way it is done without a corpus (read the CSVs, cut the same segments,
   time-warp them, ``MotionLibrary.from_clips``, which runs forward kinematics on every frame), checks the two
   libraries are equal, and prints both times and their ratio.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_corpus.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from humanoid_gpt import configure_process, settings
from humanoid_gpt.catalog.store import load_library, read_manifest
from humanoid_gpt.governance.corpus import build_corpus
from humanoid_gpt.governance.corpus_config import load_corpus_config
from humanoid_gpt.governance.warp import time_warp
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import load_g1

TAKES = (
    "walk1_subject1",
    "run1_subject2",
    "dance1_subject1",
    "jumps1_subject1",
    "fallAndGetUp1_subject1",
    "fight1_subject2",
    "sprint1_subject2",
    "walk3_subject3",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=4, help=f"LAFAN1-G1 takes to build from (at most {len(TAKES)})")
    p.add_argument("--bvh", action="store_true", help="also retarget the 5 LAFAN1 BVH takes")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--out", type=Path, help="corpus folder (default: a temporary one, removed afterwards)")
    args = p.parse_args()
    configure_process()
    root = settings.data_root()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_corpus_")) / "corpus"
    takes = TAKES[: max(1, min(args.clips, len(TAKES)))]
    others = sorted(f.name for f in (root / "g1_motions" / "lafan1").glob("*.csv") if f.stem not in takes)
    sources = [
        {
            "name": "lafan1",
            "path": "g1_motions/lafan1",
            "format": "g1",
            "licence": "CC BY-NC-ND 4.0",
            "exclude": others,  # only the chosen takes
        }
    ]
    if args.bvh:
        sources.append(
            {"name": "lafan1_bvh", "path": "mocap/lafan1_bvh", "format": "bvh", "licence": "CC BY-NC-ND 4.0"}
        )
    config = load_corpus_config({"name": "bench", "output": str(out), "sources": sources}, executor=args.executor)
    if out.exists():
        shutil.rmtree(out)
    g1 = load_g1()
    wall = time.perf_counter()
    summary = build_corpus(config, progress=True)
    wall = time.perf_counter() - wall
    report = json.loads((out / "filter_report.json").read_text())
    source_frames = sum(d.get("frames", 0) for d in report)
    g1_rows = [r for r in read_manifest(out) if r["shard"] is not None and r["format"] == "g1"]

    start = time.perf_counter()
    from_corpus = load_library(out, g1, clips=[r["clip_id"] for r in g1_rows])
    t_corpus = time.perf_counter() - start

    # The library's own constructor (slerp table, per-clip Python loop) is common to both paths: timed apart.
    d, q = from_corpus._num_linear, from_corpus._num_quats
    linear, quats = from_corpus._data[:, :d], from_corpus._data[:, d : d + 4 * q].reshape(-1, q, 4)
    start = time.perf_counter()
    MotionLibrary(from_corpus.names, from_corpus.fps, from_corpus.num_frames, linear, quats, 29, from_corpus.body_names)
    t_ctor = time.perf_counter() - start

    start = time.perf_counter()  # without a corpus: read the CSVs, cut the same segments, warp, forward kinematics
    clips, cache = [], {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in g1_rows:
            if r["path"] not in cache:
                cache[r["path"]] = load_clip(root / r["path"], g1=g1)
            segment = cache[r["path"]].slice(r["source_start"], r["source_stop"])
            clips.append(time_warp(segment, r["warp"], config.fps))
    from_clips = MotionLibrary.from_clips(clips, g1)
    t_clips = time.perf_counter() - start
    same = torch.equal(from_corpus.num_frames, from_clips.num_frames) and torch.equal(
        from_corpus._data, from_clips._data
    )

    console = Console(width=160)
    table = Table(title=f"corpus build: {len(takes)} LAFAN1-G1 takes{' + 5 BVH retargeted' if args.bvh else ''}")
    for col in ("what", "value"):
        table.add_column(col)
    table.add_row("source frames read", f"{source_frames:,} ({source_frames / wall:,.0f} frames/s)")
    table.add_row(
        "corpus frames written (50 Hz, 5 speeds, FK)", f"{summary.frames:,} ({summary.frames / wall:,.0f} frames/s)"
    )
    table.add_row("corpus clips / hours", f"{summary.clips} / {summary.hours:.2f} h")
    table.add_row("build wall time", f"{wall:.1f} s ({args.executor})")
    table.add_row("library from the corpus", f"{t_corpus:.2f} s ({from_corpus.total_frames:,} frames)")
    table.add_row("  of which MotionLibrary's constructor", f"{t_ctor:.2f} s (slerp table; the same in both paths)")
    table.add_row("library from CSVs (read, cut, warp, FK)", f"{t_clips:.2f} s ({from_clips.total_frames:,} frames)")
    table.add_row("ratio (CSVs / corpus)", f"[b]{t_clips / t_corpus:.0f}x[/b] faster from the corpus")
    table.add_row("ratio without the constructor", f"{(t_clips - t_ctor) / max(t_corpus - t_ctor, 1e-9):.0f}x")
    table.add_row("libraries equal", str(same))
    console.print(table)
    if args.out is None:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
