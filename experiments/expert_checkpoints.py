"""A PPO run's checkpoints scored along the way (issue 22): every ``--every`` iterations, the expert on 10-s windows of
its cluster's clips and of the held-out performer's, so a long run shows SR and MPKPE against samples. Training
episode length is a poor guide: adaptive start sampling moves starts to where the expert fails, so training episodes
can shorten while it improves.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie \\
        .venv/bin/python experiments/expert_checkpoints.py \\
        --run outputs/evidence/expert_long/today/seed1 --cluster walks --every 600 --out docs/evidence/expert_long

``--run`` is a folder of ``experiments/expert_ablation.py`` (checkpoints under ``run/``, ``curves.json`` beside).
Scores already in ``<out>/checkpoints.json`` are kept, so the command can be repeated as the run goes on. Writes
``checkpoints.json``, ``checkpoints.md`` and ``checkpoints.png``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from evidence_common import CLUSTERS, cluster_windows, eval_policy, save_figure  # noqa: E402

from humanoid_gpt.experts.checkpoint import load_checkpoint  # noqa: E402
from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy  # noqa: E402
from humanoid_gpt.io_utils import write_text_atomic  # noqa: E402
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig  # noqa: E402
from humanoid_gpt.robot import load_g1  # noqa: E402

SPLITS = ("train", "held_out")


def checkpoints(run: Path, every: int) -> dict[int, Path]:
    """Iteration -> checkpoint for the multiples of ``every`` and the latest one."""
    found = {
        int(m.group(1)): p for p in (run / "run").glob("model_*.pt") if (m := re.match(r"model_(\d+)\.pt", p.name))
    }
    if not found:
        raise SystemExit(f"{run / 'run'}: no model_<iteration>.pt checkpoints")
    last = max(found)
    return {i: p for i, p in sorted(found.items()) if (i > 0 and i % every == 0) or i == last}


def score(path: Path, g1, windows: dict, threads: int) -> dict:
    """One checkpoint on every window set: randomization off, default terminations, its own action convention."""
    trained = expert_tracking_config(path)
    tracking = TrackingConfig(
        action_relative_to_reference=trained.action_relative_to_reference, randomization=RandomizationConfig.off()
    )
    make = lambda env: load_expert_policy(path, env, g1)  # noqa: E731
    return {split: eval_policy(g1, clips, make, tracking, threads) for split, clips in windows.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walks")
    p.add_argument("--every", type=int, default=600, help="score every N-th iteration's checkpoint, and the last")
    p.add_argument("--train-windows", type=int, default=4)
    p.add_argument("--heldout-windows", type=int, default=8)
    p.add_argument("--num-envs", type=int, default=256, help="the run's env count (expert_ablation.py --num-envs)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g1 = load_g1()
    windows = cluster_windows(args.cluster, g1, args.train_windows, args.heldout_windows)
    heldout_names = CLUSTERS[args.cluster][1]
    out_file = args.out / "checkpoints.json"
    rows = {int(k): v for k, v in json.loads(out_file.read_text()).items()} if out_file.exists() else {}
    num_envs = _num_envs(args.run, args.num_envs)
    for iteration, path in checkpoints(args.run, args.every).items():
        if iteration in rows:
            continue
        steps = load_checkpoint(path)["infos"]["hgpt"]["train_cfg"]["num_steps_per_env"]
        samples = (iteration + 1) * steps * num_envs  # rsl_rl names a checkpoint by the iteration it finished
        rows[iteration] = {"samples": samples, "num_envs": num_envs, **score(path, g1, windows, args.threads)}
        write_text_atomic(out_file, json.dumps({str(k): v for k, v in sorted(rows.items())}, indent=1))
        print(iteration, json.dumps({s: round(rows[iteration][s]["sr_percent"], 1) for s in SPLITS}), flush=True)
    write_report(args, rows, heldout_names)


def _num_envs(run: Path, given: int) -> int:
    """The run's env count: from its result once it has one (samples / iterations / steps), else ``given``."""
    result = run / "result.json"
    if not result.exists():
        return given
    r = json.loads(result.read_text())
    found = int(r["samples"] // (r["iterations"] * r["config"]["ppo"]["num_steps_per_env"]))
    if found != given:
        raise SystemExit(f"{result}: the run used {found} envs, not --num-envs {given}")
    return found


def write_report(args, rows: dict[int, dict], heldout_names: list[str]) -> None:
    its = sorted(rows)
    lines = [
        f"# Checkpoints of `{args.run}` along the way ({args.cluster} cluster)\n",
        f"10-s windows: {args.train_windows} per training clip, {args.heldout_windows} per held-out clip "
        f"({', '.join(heldout_names)}); randomization off, default terminations.\n",
        "| iteration | samples (M) | SR train (%) | SR held-out (%) | MPKPE train (mm) | MPKPE held-out (mm) | "
        "G-MPKPE train (mm) | G-MPKPE held-out (mm) | stable held-out (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i in its:
        t, h = rows[i]["train"], rows[i]["held_out"]
        lines.append(
            f"| {i} | {rows[i]['samples'] / 1e6:.1f} | {t['sr_percent']:.1f} | {h['sr_percent']:.1f} | "
            f"{t['mpkpe_mm']:.0f} | {h['mpkpe_mm']:.0f} | {t['g_mpkpe_mm']:.0f} | {h['g_mpkpe_mm']:.0f} | "
            f"{h['mean_episode_s']:.1f} |"
        )
    write_text_atomic(args.out / "checkpoints.md", "\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    samples = [rows[i]["samples"] / 1e6 for i in its]
    for split in SPLITS:
        for ax, key, label in zip(
            axes, ("sr_percent", "mpkpe_mm", "g_mpkpe_mm"), ("SR (%)", "MPKPE (mm)", "G-MPKPE (mm)"), strict=True
        ):
            ax.plot(samples, [rows[i][split][key] for i in its], marker="o", label=split)
            ax.set(xlabel="samples (M)", title=label)
            ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, args.out / "checkpoints.png")


if __name__ == "__main__":
    main()
