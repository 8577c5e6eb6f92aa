"""Retargeting benchmark: our retargeter against Unitree's retargeting of the same five LAFAN1 takes.

For each BVH clip in ``$HGPT_DATA_ROOT/mocap/lafan1_bvh`` and its Unitree G1 clip in ``g1_motions/lafan1`` (paired
frame for frame; ``fall_getup`` pairs with frames 150-1949 of ``fallAndGetUp3_subject1``), prints side by side:

- agreement: mean keypoint distance between the two (14 keypoints, each side in its own pelvis heading frame, mm)
  and joint MPJPE (rad);
- for each side, the physical scores of :mod:`humanoid_gpt.governance.quality`: foot penetration (mm), foot floating
  while in contact (mm), foot skate speed during contact (cm/s), joint-limit excess (rad), self-collision frames,
  joint jerk (rad/s^3);
- our speed in frames/s per core: retargeting CPU time of this process with numpy/torch on one thread (wall-clock
  frames/s too: the machine may be shared).

Goals (issue "Data governance", retargeting): every physical score at least as good as Unitree's on every clip; mean
keypoint distance to Unitree's at most 30 mm over the five clips and none above 45 mm; at least 1,000 frames/s per
core.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_retarget.py
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from tqdm import tqdm  # noqa: E402

from humanoid_gpt import settings  # noqa: E402
from humanoid_gpt.governance.mocap import read_mocap  # noqa: E402
from humanoid_gpt.governance.quality import (  # noqa: E402
    PHYSICAL_SCORES,
    clip_quality,
    collision_model,
    keypoint_distance_mm,
)
from humanoid_gpt.governance.retarget import RetargetConfig, Retargeter  # noqa: E402
from humanoid_gpt.motion.io import read_g1_csv  # noqa: E402
from humanoid_gpt.robot import load_g1  # noqa: E402

#: BVH name -> (Unitree clip, first paired frame); /work/shared/README.md.
PAIRS: dict[str, tuple[str, int]] = {
    "walk": ("walk1_subject1", 0),
    "run": ("run1_subject5", 0),
    "dance": ("dance1_subject1", 0),
    "jumps": ("jumps1_subject1", 0),
    "fall_getup": ("fallAndGetUp3_subject1", 150),
}
GOAL_MEAN_MM, GOAL_MAX_MM, GOAL_FPS = 30.0, 45.0, 1000.0
LABELS = {
    "penetration_mm": "pen mm",
    "float_mm": "float mm",
    "skate_cm_s": "skate cm/s",
    "limit_excess_rad": "limit rad",
    "self_collision_frames": "self-coll fr",
    "jerk": "jerk",
}


def run_clip(name: str, frames: int | None, g1, cmodel, config: RetargetConfig) -> dict:
    data = settings.data_root()
    unitree_name, start = PAIRS[name]
    motion = read_mocap(data / "mocap" / "lafan1_bvh" / f"{name}.bvh")
    n = motion.num_frames if frames is None else min(frames, motion.num_frames)
    motion = motion.slice(0, n)
    unitree = read_g1_csv(data / "g1_motions" / "lafan1" / f"{unitree_name}.csv", motion.fps)
    unitree = unitree.slice(start, start + n)
    if unitree.num_frames != n:
        raise SystemExit(f"{unitree_name}.csv has only {unitree.num_frames} frames from {start}; need {n}")

    rt = Retargeter.for_motion(motion, config=config, g1=g1)
    cpu, wall = time.process_time(), time.perf_counter()
    ours = rt.retarget(motion, progress=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    kp = keypoint_distance_mm(ours, unitree, g1)
    return {
        "clip": name,
        "frames": n,
        "fps_cpu": n / cpu,
        "fps_wall": n / wall,
        "keypoint_mm": float(kp.mean()),
        "keypoint_mm_frame0": float(kp[0]),
        "mpjpe_rad": float(np.abs(ours.joint_pos - unitree.joint_pos).mean()),
        "flagged_frames": len(rt.report.flagged),
        "residual_mean_mm": float(rt.report.residual_mm.mean()),
        "ours": clip_quality(ours, g1, cmodel).as_dict(),
        "unitree": clip_quality(unitree, g1, cmodel).as_dict(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", nargs="*", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default: all)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(1)

    g1 = load_g1()
    cmodel = collision_model(g1)
    config = RetargetConfig()
    rows = [run_clip(c, args.frames, g1, cmodel, config) for c in tqdm(args.clips, desc="clips", unit="clip")]

    console = Console(width=200)
    table = Table(title="Retargeting: ours vs Unitree's (LAFAN1, paired frame for frame)")
    for col in ("clip", "frames", "side", "kp mm", "MPJPE rad", *LABELS.values(), "frames/s/core", "flagged"):
        table.add_column(col, justify="right")
    for r in rows:
        for side in ("ours", "unitree"):
            q = r[side]
            cells = []
            for k in PHYSICAL_SCORES:
                v, other = q[k], r["unitree" if side == "ours" else "ours"][k]
                text = f"{v:.0f}" if k in ("self_collision_frames", "jerk") else f"{v:.2f}"
                if side == "ours":
                    text = f"[green]{text}[/]" if v <= other + 1e-12 else f"[red]{text}[/]"
                cells.append(text)
            ours = side == "ours"
            table.add_row(
                r["clip"] if ours else "",
                str(r["frames"]) if ours else "",
                side,
                f"{r['keypoint_mm']:.1f}" if ours else "",
                f"{r['mpjpe_rad']:.3f}" if ours else "",
                *cells,
                f"{r['fps_cpu']:.0f} ({r['fps_wall']:.0f} wall)" if ours else "",
                str(r["flagged_frames"]) if ours else "",
            )
    console.print(table)

    kp = np.array([r["keypoint_mm"] for r in rows])
    frames = sum(r["frames"] for r in rows)
    fps = frames / sum(r["frames"] / r["fps_cpu"] for r in rows)
    worse = [
        f"{r['clip']}:{k} {r['ours'][k]:.3g} > {r['unitree'][k]:.3g}"
        for r in rows
        for k in PHYSICAL_SCORES
        if r["ours"][k] > r["unitree"][k] + 1e-12
    ]
    checks = {
        f"mean keypoint distance {kp.mean():.1f} mm <= {GOAL_MEAN_MM:.0f}": kp.mean() <= GOAL_MEAN_MM,
        f"worst clip {kp.max():.1f} mm <= {GOAL_MAX_MM:.0f}": kp.max() <= GOAL_MAX_MM,
        f"speed {fps:.0f} frames/s per core >= {GOAL_FPS:.0f}": fps >= GOAL_FPS,
        "physical scores <= Unitree's on every clip" + (f" (worse: {'; '.join(worse)})" if worse else ""): not worse,
    }
    for text, ok in checks.items():
        console.print(f"[{'green' if ok else 'red'}]{'PASS' if ok else 'FAIL'}[/] {text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "checks": {k: bool(v) for k, v in checks.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
