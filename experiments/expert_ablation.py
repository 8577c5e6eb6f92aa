"""Expert ablation (issue 12): PPO experts on one cluster of real LAFAN1 clips, one run per change at equal samples
and seed, each scored in sim2sim on 10-s windows of its clips and of a held-out performer.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/expert_ablation.py \\
        --cluster walks --iterations 300 --variants baseline adaptive drift adaptive+drift \\
        --out outputs/evidence/expert_ablation

A variant is a named set of changes to the baseline (:data:`VARIANTS`); ``a+b`` applies both. The baseline is the
configuration of ``docs/evidence/walk`` (actions relative to the next reference pose, sensor and initial-state noise,
no other randomization). Every variant is evaluated under the same criterion: the default terminations (no drift
termination), randomization off, so a row's SR does not depend on the termination it trained with.

Each variant writes ``<out>/<variant>/`` (checkpoints, ``curves.json``, ``result.json``); a variant whose
``result.json`` exists is not run again, so the command can be repeated with more variants. ``report.md`` (the table)
and ``curves.png`` (learning curves against samples) cover every finished variant in ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from evidence_common import CLUSTERS, eval_policy, learn_with_curves, save_figure, window_set  # noqa: E402

from humanoid_gpt import settings  # noqa: E402
from humanoid_gpt.experts.evaluation import load_expert_policy  # noqa: E402
from humanoid_gpt.experts.ppo import expert_ppo_cfg  # noqa: E402
from humanoid_gpt.experts.runner import ExpertRunner  # noqa: E402
from humanoid_gpt.experts.train import run_meta  # noqa: E402
from humanoid_gpt.io_utils import write_text_atomic  # noqa: E402
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig  # noqa: E402
from humanoid_gpt.motion import load_clip  # noqa: E402
from humanoid_gpt.motion.library import MotionLibrary  # noqa: E402
from humanoid_gpt.robot import load_g1  # noqa: E402
from humanoid_gpt.runs import latest_checkpoint, seed_everything  # noqa: E402
from humanoid_gpt_sim2sim.env import MujocoTrackingEnv  # noqa: E402

VARIANTS: dict[str, tuple[str, dict]] = {
    "baseline": ("the configuration of docs/evidence/walk", {}),
    "adaptive": ("start times sampled by failure (BeyondMimic's bins)", {"tracking.sampling.adaptive": True}),
    "drift": ("root xy-drift termination at 0.5 m", {"tracking.terminations.root_xy_drift": 0.5}),
    "std0.5": ("initial action std 0.5 (1.0)", {"ppo.actor.distribution_cfg.init_std": 0.5}),
    "light-update": (
        "3 PPO epochs of 2 mini-batches (5 of 4)",
        {"ppo.algorithm.num_learning_epochs": 3, "ppo.algorithm.num_mini_batches": 2},
    ),
    "fixed-lr": (
        "learning rate fixed at 3e-4 (adaptive-KL schedule)",
        {"ppo.algorithm.schedule": "fixed", "ppo.algorithm.learning_rate": 3e-4},
    ),
    "small-net": (
        "actor and critic 256-256-128 (512-256-128)",
        {"ppo.actor.hidden_dims": [256, 256, 128], "ppo.critic.hidden_dims": [256, 256, 128]},
    ),
    "ee0.35": ("end-effector height termination at 0.35 m (0.25)", {"tracking.terminations.end_effector_height": 0.35}),
    "absolute": ("actions relative to the default pose", {"tracking.action_relative_to_reference": False}),
    "full-dr": (
        "all of the default domain randomization (pushes, friction, mass, gains)",
        {"tracking.randomization": RandomizationConfig().__dict__},
    ),
}


def baseline_config(seed: int) -> dict:
    dr = RandomizationConfig(friction=False, mass=False, push=False, gains=False, latency=False)
    tracking = TrackingConfig(action_relative_to_reference=True, randomization=dr)
    ppo = expert_ppo_cfg(seed=seed, save_interval=100)
    # BeyondMimic's update and networks, as docs/evidence/walk ran (the defaults have since changed by this ablation).
    ppo["algorithm"].update(num_learning_epochs=5, num_mini_batches=4)
    for net in ("actor", "critic"):
        ppo[net]["hidden_dims"] = [512, 256, 128]
    return {"tracking": tracking.to_dict(), "ppo": ppo}


def apply_variant(config: dict, name: str) -> dict:
    """``config`` with the changes of variant ``name`` (``a+b``: both), each a dotted path into the config."""
    config = copy.deepcopy(config)
    for part in name.split("+"):
        if part not in VARIANTS:
            raise SystemExit(f"unknown variant {part!r}; known: {', '.join(VARIANTS)}")
        for path, value in VARIANTS[part][1].items():
            *parents, leaf = path.split(".")
            node = config
            for key in parents:
                node = node[key]
            if leaf not in node:
                raise SystemExit(f"variant {part!r}: {path} is not a setting of the config")
            node[leaf] = copy.deepcopy(value)
    return config


def run_variant(name: str, args, g1, clips, evals) -> dict:
    folder = args.out / name
    config = apply_variant(baseline_config(args.seed), name)
    tracking = TrackingConfig.from_dict(config["tracking"])
    seed_everything(args.seed)
    library = MotionLibrary.from_clips(clips, g1)
    env = MujocoTrackingEnv(g1, library, tracking, args.num_envs, args.seed, num_threads=args.threads)
    meta = run_meta(f"ablation-{name}", env, g1, tracking, config["ppo"])
    runner = ExpertRunner(env, config["ppo"], str(folder / "run"), meta)
    start = time.time()
    curves = learn_with_curves(runner, env, float("inf"), args.iterations, folder / "curves.json")
    minutes = (time.time() - start) / 60
    runner.save(str(folder / "run" / f"model_{runner.current_learning_iteration}.pt"))
    env.close()
    policy = runner.get_inference_policy()
    scores = {
        split: eval_policy(g1, windows, lambda env: policy, tracking_for_eval(), args.threads)
        for split, windows in evals
    }
    return {
        "variant": name,
        "change": " + ".join(VARIANTS[p][0] for p in name.split("+")),
        "iterations": runner.current_learning_iteration,
        "samples": runner.current_learning_iteration * config["ppo"]["num_steps_per_env"] * args.num_envs,
        "minutes": minutes,
        "scores": scores,
        "windows": {split: len(windows) for split, windows in evals},
        "curves": curves,
        "config": config,
    }


def tracking_for_eval() -> TrackingConfig:
    """One criterion for every row: the default terminations, relative actions as trained, randomization off."""
    return TrackingConfig(action_relative_to_reference=True, randomization=RandomizationConfig.off())


def write_report(out: Path, cluster: str, heldout: list[str]) -> None:
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    results.sort(key=lambda r: (r["variant"] != "baseline", r["variant"]))
    rows = [
        "| variant | change | SR train (%) | SR held-out (%) | MPKPE train (mm) | G-MPKPE train (mm) | MPKPE held-out "
        "(mm) | stable train (s) | samples | minutes | collect s/it | update s/it |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, h, c = r["scores"]["train"], r["scores"]["held_out"], r["curves"]
        collect = sum(x["collect_s_per_iteration"] for x in c) / len(c)
        learn = sum(x["learn_s_per_iteration"] for x in c) / len(c)
        rows.append(
            f"| {r['variant']} | {r['change']} | {t['sr_percent']:.1f} | {h['sr_percent']:.1f} | {t['mpkpe_mm']:.1f} "
            f"| {t['g_mpkpe_mm']:.0f} | {h['mpkpe_mm']:.1f} | {t['mean_episode_s']:.1f} | {r['samples']:,} | "
            f"{r['minutes']:.1f} | {collect:.2f} | {learn:.2f} |"
        )
    whole = []
    for r in results:
        f = out / r["variant"] / "whole_clips.json"
        if f.exists():
            s = json.loads(f.read_text())["scores"]
            t, h = s["train"], s["held_out"]
            whole.append(
                f"| {r['variant']} | {t['sr_percent']:.1f} ({t['episodes']}) | {t['mean_episode_s']:.0f} | "
                f"{t['mpkpe_mm']:.1f} | {h['sr_percent']:.1f} ({h['episodes']}) | {h['mean_episode_s']:.0f} | "
                f"{h['mpkpe_mm']:.1f} |"
            )
    if whole:
        whole = [
            "\n## Whole clips (each take played from its first frame to its last, minutes long)\n",
            "| variant | SR train (clips) | tracked train (s) | MPKPE train (mm) | SR held-out (clips) "
            "| tracked held-out (s) | MPKPE held-out (mm) |",
            "|---|---|---|---|---|---|---|",
            *whole,
        ]
    windows = results[0]["windows"] if results else {}
    text = (
        f"# Expert ablation: cluster `{cluster}`\n\n"
        f"One PPO run per row, equal samples and seed, scored on {windows.get('train')} windows of 10 s of the "
        f"cluster's clips and {windows.get('held_out')} of the held-out performer ({', '.join(heldout)}); one window "
        f"is {100 / max(windows.get('held_out', 1), 1):.1f} points of held-out SR. Evaluation: default terminations "
        "(no drift termination), no randomization. Wall-clock columns were measured on a 2-core machine that may have "
        "been running other work; samples are the fair axis.\n\n" + "\n".join(rows + whole) + "\n"
    )
    write_text_atomic(out / "report.md", text)
    plot(results, out / "curves.png")


def plot(results: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    keys = (("episode_s", "episode length (s)"), ("mpkpe_mm", "training MPKPE (mm)"), ("mean_reward", "reward"))
    for r in results:
        per_it = r["samples"] / max(r["iterations"], 1)
        x = [c["iteration"] * per_it / 1e6 for c in r["curves"]]
        for ax, (key, _) in zip(axes, keys, strict=True):
            ax.plot(x, [c[key] for c in r["curves"]], label=r["variant"])
    for ax, (_, title) in zip(axes, keys, strict=True):
        ax.set_xlabel("samples (millions)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walks")
    p.add_argument("--variants", nargs="+", default=["baseline"], help=f"of {', '.join(VARIANTS)}; a+b combines")
    p.add_argument("--iterations", type=int, default=300, help="PPO iterations per variant (equal samples)")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="physics and torch threads (two variants side by side: 1)")
    p.add_argument("--train-windows", type=int, default=4, help="10-s windows per training clip")
    p.add_argument("--heldout-windows", type=int, default=8, help="10-s windows per held-out clip")
    p.add_argument("--whole-clips", action="store_true", help="also score each variant on whole clips (minutes each)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for name in args.variants:
        apply_variant(baseline_config(args.seed), name)  # fail on a typo before hours of training
    torch.set_num_threads(args.threads)
    g1 = load_g1()
    lafan = settings.g1_motions_dir("lafan1")
    train_names, heldout_names = CLUSTERS[args.cluster]
    clips = [load_clip(lafan / f"{n}.csv", g1=g1) for n in train_names]
    heldout = [load_clip(lafan / f"{n}.csv", g1=g1) for n in heldout_names]
    evals = [("train", window_set(clips, args.train_windows)), ("held_out", window_set(heldout, args.heldout_windows))]
    for name in args.variants:
        result_file = args.out / name / "result.json"
        if result_file.exists():
            print(f"{name}: done before ({result_file})")
            continue
        print(f"=== {name}: {args.iterations} iterations", flush=True)
        result = run_variant(name, args, g1, clips, evals)
        write_text_atomic(result_file, json.dumps(result, indent=1, default=str))
        print(f"{name}: {json.dumps(result['scores'])}", flush=True)
        write_report(args.out, args.cluster, heldout_names)
    if args.whole_clips:
        for name in args.variants:
            score_whole_clips(args.out / name, g1, clips, heldout, args.threads)
        write_report(args.out, args.cluster, heldout_names)


def score_whole_clips(folder: Path, g1, clips, heldout, threads: int) -> None:
    """The variant's last checkpoint on every whole clip (minutes long: SR says whether it tracks a whole take)."""
    target = folder / "whole_clips.json"
    if target.exists():
        return
    ckpt = latest_checkpoint(folder / "run", "model")
    make = lambda env: load_expert_policy(ckpt, env, g1)  # noqa: E731
    scores = {
        "train": eval_policy(g1, clips, make, tracking_for_eval(), threads),
        "held_out": eval_policy(g1, heldout, make, tracking_for_eval(), threads),
    }
    write_text_atomic(target, json.dumps({"checkpoint": str(ckpt), "scores": scores}, indent=1))
    print(f"{folder.name} on whole clips: {json.dumps(scores)}", flush=True)


if __name__ == "__main__":
    main()
