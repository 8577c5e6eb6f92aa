"""Why the global path is lost (issue 22): does a trained expert use the observation terms that say where the path
is? Plays one checkpoint on 10-s windows of its cluster's clips and of the held-out performer, as trained and with
the reference's xy offset and/or yaw error held at zero in its observation (the rest unchanged), and prints the
paper's table with G-MPKPE and the mean world-frame root distance to the reference.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/drift_diagnosis.py \\
        --checkpoint outputs/evidence/expert_recipe/today/seed1/run/model_399.pt --out outputs/evidence/drift

If hiding the xy offset leaves G-MPKPE where it was, the policy does not act on it: the path is lost because the
recipe never taught the policy to return to it, not because it cannot see it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from evidence_common import CLUSTERS, cluster_windows, eval_policy

from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.mdp.observations import STUDENT_LAYOUT
from humanoid_gpt.metrics import TABLE_COLUMNS, metrics_table
from humanoid_gpt.robot import load_g1
from humanoid_gpt_mujoco.evaluate import evaluate


def _span(name: str) -> slice:
    start = 0
    for part, size in STUDENT_LAYOUT:
        if part == name:
            return slice(start, start + size)
        start += size
    raise KeyError(name)


# The privileged observation starts with the (noiseless) student observation, so these index both.
HIDDEN = {
    "as trained": [],
    "xy offset hidden": ["xy_error_heading"],
    "yaw error hidden": ["yaw_error_cos_sin"],
    "both hidden": ["xy_error_heading", "yaw_error_cos_sin"],
}


def masked(policy, parts: list[str]):
    """``policy`` seeing the values of ``parts`` as a perfectly tracked path (xy offset 0, yaw error cos 1 sin 0)."""
    if not parts:
        return policy

    def act(obs):
        obs = obs.clone()
        for group in ("policy", "critic"):
            x = obs[group]
            for part in parts:
                span = _span(part)
                x[:, span] = torch.tensor([1.0, 0.0]) if part == "yaw_error_cos_sin" else 0.0
        return policy(obs)

    return act


def _yaw(quat_wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = quat_wxyz.T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def path_errors(g1, windows, make, tracking, threads: int) -> dict:
    """Where the robot leaves the path, per window played alone (as trained): its mean heading error, and its root
    offset from the reference's split into the lag along the reference's direction of travel (positive: behind) and
    the offset across it, averaged over the episode."""
    rows = []
    for w in windows:
        rec = evaluate(g1, [w], make, tracking, num_envs=1, num_threads=threads, progress=False, record=True)
        robot, ref = rec["recording"]["robot"], rec["recording"]["reference"]
        if len(robot) < 2:
            continue
        heading = np.gradient(ref[:, :2], axis=0)
        heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-9)
        off = robot[:, :2] - ref[:, :2]
        along = -np.sum(off * heading, axis=1)
        across = np.abs(heading[:, 0] * off[:, 1] - heading[:, 1] * off[:, 0])
        yaw = np.angle(np.exp(1j * (_yaw(robot[:, 3:7]) - _yaw(ref[:, 3:7]))))
        rows.append((np.degrees(np.abs(yaw)).mean(), along.mean(), across.mean(), np.linalg.norm(off, axis=1).mean()))
    yaw, along, across, dist = np.mean(rows, axis=0)
    return {"yaw_err_deg": yaw, "lag_m": along, "across_m": across, "root_distance_m": dist, "windows": len(rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walks")
    p.add_argument("--train-windows", type=int, default=4)
    p.add_argument("--heldout-windows", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    g1 = load_g1()
    sets = cluster_windows(args.cluster, g1, args.train_windows, args.heldout_windows)
    tracking = expert_tracking_config(args.checkpoint)
    results = {}
    for name, parts in HIDDEN.items():
        make = lambda env, parts=parts: masked(load_expert_policy(args.checkpoint, env, g1), parts)  # noqa: E731
        results[name] = {k: eval_policy(g1, w, make, tracking, args.threads) for k, w in sets.items()}
        print(name, json.dumps({k: round(v["g_mpkpe_mm"]) for k, v in results[name].items()}), flush=True)
    where = {
        k: path_errors(g1, w, lambda env: load_expert_policy(args.checkpoint, env, g1), tracking, args.threads)
        for k, w in sets.items()
    }
    print("path errors", json.dumps(where), flush=True)
    columns = (*TABLE_COLUMNS, ("root_pos_err", "root distance (m)", 2))
    lines = [f"# Drift diagnosis: `{args.checkpoint}`\n"]
    for split in sets:
        rows = [((name,), r[split]) for name, r in results.items()]
        lines += [
            f"\n## {split.replace('_', '-')} ({len(sets[split])} windows of 10 s)\n",
            *metrics_table(("observation",), rows, columns),
        ]
    lines += [
        "\n## Where the path is lost (as trained; each window alone, means over its episode)\n",
        "| set | windows | heading error (deg) | lag along the path (m) | offset across it (m) | root distance (m) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {k.replace('_', '-')} | {r['windows']} | {r['yaw_err_deg']:.1f} | {r['lag_m']:+.2f} | "
            f"{r['across_m']:.2f} | {r['root_distance_m']:.2f} |"
            for k, r in where.items()
        ),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "report.md", "\n".join(lines) + "\n")
    write_text_atomic(
        args.out / "report.json",
        json.dumps({"checkpoint": str(args.checkpoint), "results": results, "path": where}, indent=1),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
