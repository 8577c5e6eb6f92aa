"""How far a reference walk gets by sliding its feet (issue 22): the distance a robot with planted feet cannot cover
while it tracks the reference's joints, measured on the cluster's clips and the held-out performer's.

    export HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie
    .venv/bin/python experiments/reference_skating.py --cluster walks --out docs/evidence/drift/skating.md

Per frame the stance foot is the lower ankle; it is planted when its height is within 2 cm of the clip's lowest ankle
height. Its horizontal velocity, projected on the root's direction of travel, is what the reference's root gains by
sliding (a planted real foot moves not at all). Over each 10-s window (4 per clip, as the ablations score) that
integrates to metres of path a perfect joint tracker would fall behind. Kinematics only: no simulation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from evidence_common import CLUSTERS, window_set

from humanoid_gpt import settings
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.kinematics import forward_kinematics
from humanoid_gpt.robot import load_g1

FEET = ("left_ankle_roll_link", "right_ankle_roll_link")
PLANTED = 0.02  # m above the clip's lowest ankle height
MOVING = 0.3  # m/s of root speed: standing still has no direction of travel


def window_slide(clip, g1) -> dict:
    """Metres the root gains by sliding planted feet over ``clip``, the root's path (m), and the planted foot's
    speeds (m/s) on the frames counted."""
    feet = forward_kinematics(g1, clip.qpos(), bodies=FEET).pos  # (T, 2, 3)
    dt = 1.0 / clip.fps
    stance = feet[:, :, 2].argmin(axis=1)
    foot = feet[np.arange(len(feet)), stance]  # (T, 3) the lower ankle
    planted = foot[:, 2] < feet[:, :, 2].min() + PLANTED
    # A frame's slide counts only when the same foot stays the stance foot (no switch between two positions).
    same = stance[1:] == stance[:-1]
    foot_v = np.diff(foot[:, :2], axis=0) / dt
    root_v = np.diff(clip.root_pos[:, :2], axis=0) / dt
    speed = np.linalg.norm(root_v, axis=1)
    travel = root_v / np.maximum(speed, 1e-9)[:, None]
    counted = planted[1:] & planted[:-1] & same & (speed > MOVING)
    gained = float((np.sum(foot_v * travel, axis=1) * counted).sum() * dt)
    path = float(speed.sum() * dt)
    return {"slide_m": gained, "path_m": path, "planted_speeds": np.linalg.norm(foot_v[counted], axis=1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walks")
    p.add_argument("--windows", type=int, default=4, help="10-s windows per clip")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    g1 = load_g1()
    root = settings.data_root() / "g1_motions" / "lafan1"
    train, held_out = CLUSTERS[args.cluster]
    lines = [
        f"# Reference skating: cluster `{args.cluster}`",
        "",
        "What the reference's root gains by sliding its planted feet, per 10-s window (mean over windows): the path a "
        "robot that tracks the joints with feet that do not slide falls behind (`experiments/reference_skating.py`).",
        "",
        "| set | windows | root path (m) | gained by sliding (m) | share of the path | planted foot, median (m/s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, clips in (("train", train), ("held-out", held_out)):
        windows = window_set([load_clip(root / f"{c}.csv", g1=g1) for c in clips], args.windows)
        rows = [window_slide(w, g1) for w in windows]
        slide, path = np.mean([r["slide_m"] for r in rows]), np.mean([r["path_m"] for r in rows])
        speed = np.median(np.concatenate([r["planted_speeds"] for r in rows]))
        lines.append(f"| {name} | {len(rows)} | {path:.2f} | {slide:.2f} | {100 * slide / path:.1f}% | {speed:.3f} |")
        print(lines[-1], flush=True)
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
