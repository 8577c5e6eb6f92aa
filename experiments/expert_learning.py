"""Evidence that an expert learns: PPO on the native MuJoCo backend for a wall-clock budget on a small cluster of
real LAFAN1 clips, with learning curves and sim2sim metrics before and after training (issue 4, section 4).

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie \\
        .venv/bin/python experiments/expert_learning.py --cluster walk --minutes 60 --out outputs/evidence/walk

Writes ``report.json`` (curves and metrics), ``curves.png`` and the run's checkpoints under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from evidence_common import CLUSTERS, eval_policy, learn_with_curves, window_set  # noqa: E402

from humanoid_gpt import settings  # noqa: E402
from humanoid_gpt.experts.ppo import expert_ppo_cfg  # noqa: E402
from humanoid_gpt.experts.runner import ExpertRunner  # noqa: E402
from humanoid_gpt.experts.train import run_meta  # noqa: E402
from humanoid_gpt.io_utils import write_text_atomic  # noqa: E402
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig  # noqa: E402
from humanoid_gpt.motion import load_clip  # noqa: E402
from humanoid_gpt.motion.library import MotionLibrary  # noqa: E402
from humanoid_gpt.robot import load_g1  # noqa: E402
from humanoid_gpt.runs import seed_everything  # noqa: E402
from humanoid_gpt_mujoco.env import MujocoTrackingEnv  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walk")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument(
        "--iterations", type=int, default=None, help="also stop after this many PPO iterations (equal samples)"
    )
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-windows", type=int, default=8, help="10-s windows per clip for sim2sim metrics")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(2)
    seed_everything(args.seed)

    g1 = load_g1()
    lafan = settings.g1_motions_dir("lafan1")
    train_names, held_out_names = CLUSTERS[args.cluster]
    train_clips = [load_clip(lafan / f"{n}.csv", g1=g1) for n in train_names]
    held_out = [load_clip(lafan / f"{n}.csv", g1=g1) for n in held_out_names]
    # Relative-to-reference actions learn fastest on CPU (docs/architecture.md); sensor and initial-state noise stay on.
    dr = RandomizationConfig(friction=False, mass=False, push=False, gains=False, latency=False)
    tracking = TrackingConfig(action_relative_to_reference=True, randomization=dr)
    env = MujocoTrackingEnv(g1, MotionLibrary.from_clips(train_clips, g1), tracking, args.num_envs, args.seed)
    ppo = expert_ppo_cfg(seed=args.seed, save_interval=100)
    meta = run_meta(f"evidence-{args.cluster}", env, g1, tracking, ppo)
    runner = ExpertRunner(env, ppo, str(args.out / "run"), meta)

    eval_train = window_set(train_clips, args.eval_windows)
    eval_held = window_set(held_out, args.eval_windows)
    before = {
        "train": eval_policy(g1, eval_train, lambda env: runner.get_inference_policy(), tracking),
        "held_out": eval_policy(g1, eval_held, lambda env: runner.get_inference_policy(), tracking),
    }
    runner.alg.train_mode()
    print("before:", json.dumps(before, indent=1))

    curves = learn_with_curves(runner, env, args.minutes, args.iterations, args.out / "curves.json")
    runner.save(str(args.out / "run" / f"model_{runner.current_learning_iteration}.pt"))
    policy = runner.get_inference_policy()
    after = {
        "train": eval_policy(g1, eval_train, lambda env: policy, tracking),
        "held_out": eval_policy(g1, eval_held, lambda env: policy, tracking),
    }
    print("after:", json.dumps(after, indent=1))
    report = {
        "cluster": args.cluster,
        "train_clips": train_names,
        "held_out_clips": held_out_names,
        "minutes": args.minutes,
        "num_envs": args.num_envs,
        "iterations": runner.current_learning_iteration,
        "samples": runner.current_learning_iteration * ppo["num_steps_per_env"] * args.num_envs,
        "before": before,
        "after": after,
        "curves": curves,
        "tracking": tracking.to_dict(),
    }
    write_text_atomic(args.out / "report.json", json.dumps(report, indent=1, default=str))
    plot(curves, args.out / "curves.png", args.cluster)


def plot(curves: list[dict], path: Path, cluster: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    x = [c["minutes"] for c in curves]
    for ax, key, label in zip(
        axes,
        ("mean_reward", "episode_s", "mpkpe_mm"),
        ("mean episode reward", "episode length (s)", "MPKPE during training (mm)"),
        strict=True,
    ):
        ax.plot(x, [c[key] for c in curves])
        ax.set_xlabel("wall-clock minutes (2-core CPU)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"PPO expert on the {cluster} cluster, native MuJoCo backend")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
