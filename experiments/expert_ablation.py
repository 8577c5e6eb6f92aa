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
from humanoid_gpt_mujoco.env import MujocoTrackingEnv  # noqa: E402

_TODAY = {  # the expert defaults the main job trains with (hgpt train expert --relative-actions)
    "ppo.algorithm.num_learning_epochs": 3,
    "ppo.algorithm.num_mini_batches": 2,
    "ppo.actor.hidden_dims": [256, 256, 128],
    "ppo.critic.hidden_dims": [256, 256, 128],
    "tracking.sampling.adaptive": True,
    "tracking.randomization": RandomizationConfig().__dict__,
}

VARIANTS: dict[str, tuple[str, dict]] = {
    "baseline": ("the configuration of docs/evidence/walk", {}),
    "today": ("the main job's expert defaults (PPO 3x2, 256-256-128, adaptive sampling, full randomization)", _TODAY),
    "adaptive": ("start times sampled by failure (BeyondMimic's bins)", {"tracking.sampling.adaptive": True}),
    "drift": ("root xy-drift termination at 0.5 m", {"tracking.terminations.root_xy_drift": 0.5}),
    "drift1": ("root xy-drift termination at 1.0 m", {"tracking.terminations.root_xy_drift": 1.0}),
    "std0.5": ("initial action std 0.5 (1.0)", {"ppo.actor.distribution_cfg.init_std": 0.5}),
    "light-update": (
        "3 PPO epochs of 2 mini-batches (5 of 4)",
        {"ppo.algorithm.num_learning_epochs": 3, "ppo.algorithm.num_mini_batches": 2},
    ),
    "fixed-lr": (
        "learning rate fixed at 3e-4 (adaptive-KL schedule)",
        {"ppo.algorithm.schedule": "fixed", "ppo.algorithm.learning_rate": 3e-4},
    ),
    "fixed-lr1e-4": (
        "learning rate fixed at 1e-4 (adaptive-KL schedule)",
        {"ppo.algorithm.schedule": "fixed", "ppo.algorithm.learning_rate": 1e-4},
    ),
    "fixed-std": (
        "DeepMimic's line: action std fixed at 0.2 (learnt from 1.0), no entropy bonus, lr fixed at 3e-4",
        {
            "ppo.actor.distribution_cfg.init_std": 0.2,
            "ppo.actor.distribution_cfg.learn_std": False,
            "ppo.algorithm.entropy_coef": 0.0,
            "ppo.algorithm.schedule": "fixed",
            "ppo.algorithm.learning_rate": 3e-4,
        },
    ),
    "anchor-wide": (
        "anchor position reward weight 1.0 (0.5) and exp(-1.0 e) (exp(-3 e)): a gradient back to the path at 1 m",
        {"tracking.rewards.anchor_pos": 1.0, "tracking.rewards.alpha_anchor_pos": 1.0},
    ),
    "gaussian": ("BeyondMimic's reward kernels exp(-e^2 / sigma^2)", {"tracking.rewards.form": "gaussian"}),
    "pelvis-anchor": (
        "the anchor terms (world position and orientation; height and tilt terminations) on the pelvis, not the "
        "torso: the pelvis's world heading is otherwise free (keypoints are tracked in its own heading frame) and "
        "the legs walk where it faces",
        {"tracking.anchor_body": "pelvis"},
    ),
    "beyondmimic": (
        "BeyondMimic's whole recipe: PPO 5x4, 512-256-128, exp(-e^2/sigma^2) rewards, action rate -0.1, no torque "
        "penalty, actions about the default pose, adaptive sampling, full randomization",
        {
            "ppo.algorithm.num_learning_epochs": 5,
            "ppo.algorithm.num_mini_batches": 4,
            "ppo.actor.hidden_dims": [512, 256, 128],
            "ppo.critic.hidden_dims": [512, 256, 128],
            "tracking.rewards.form": "gaussian",
            "tracking.rewards.action_rate": -0.1,
            "tracking.rewards.torque": 0.0,
            "tracking.action_relative_to_reference": False,
            "tracking.sampling.adaptive": True,
            "tracking.randomization": RandomizationConfig().__dict__,
        },
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
            if leaf not in node and parents[-1:] != ["distribution_cfg"]:  # rsl_rl's optional keys (learn_std)
                raise SystemExit(f"variant {part!r}: {path} is not a setting of the config")
            node[leaf] = copy.deepcopy(value)
    return config


def run_variant(name: str, seed: int, args, g1, clips, evals) -> dict:
    """Train variant ``name`` with ``seed`` (resuming its last checkpoint if a run was interrupted), then score it."""
    folder = args.out / name / f"seed{seed}"
    config = apply_variant(baseline_config(seed), name)
    tracking = TrackingConfig.from_dict(config["tracking"])
    seed_everything(seed)
    library = MotionLibrary.from_clips(clips, g1)
    env = MujocoTrackingEnv(g1, library, tracking, args.num_envs, seed, num_threads=args.threads)
    meta = run_meta(f"ablation-{name}", env, g1, tracking, config["ppo"])
    runner = ExpertRunner(env, config["ppo"], str(folder / "run"), meta)
    curves, resumed = [], latest_checkpoint(folder / "run", "model") if (folder / "run").is_dir() else None
    if resumed is not None:
        done = runner.resume(resumed)
        if (folder / "curves.json").exists():
            curves = [c for c in json.loads((folder / "curves.json").read_text()) if c["iteration"] <= done]
        print(f"{name} seed {seed}: resumed at iteration {done} from {resumed}", flush=True)
    curves = learn_with_curves(runner, env, float("inf"), args.iterations, folder / "curves.json", curves)
    env.close()  # rsl_rl saved the last iteration's checkpoint at the end of learn()
    policy = runner.get_inference_policy()
    scores = {
        split: eval_policy(g1, windows, lambda env: policy, tracking_for_eval(tracking), args.threads)
        for split, windows in evals
    }
    return {
        "variant": name,
        "seed": seed,
        "change": " + ".join(VARIANTS[p][0] for p in name.split("+")),
        "iterations": runner.current_learning_iteration,
        "samples": runner.current_learning_iteration * config["ppo"]["num_steps_per_env"] * args.num_envs,
        "minutes": curves[-1]["minutes"] if curves else 0.0,
        "scores": scores,
        "windows": {split: len(windows) for split, windows in evals},
        "curves": curves,
        "config": config,
    }


def tracking_for_eval(trained: TrackingConfig) -> TrackingConfig:
    """One criterion for every row: the default terminations (no drift termination), the action convention the
    policy trained with, randomization off."""
    relative = trained.action_relative_to_reference
    return TrackingConfig(action_relative_to_reference=relative, randomization=RandomizationConfig.off())


def _results(out: Path) -> dict[str, list[dict]]:
    """Finished runs in ``out`` by variant (each a list over seeds); runs of the single-seed layout count as seed 1."""
    by_variant: dict[str, list[dict]] = {}
    for f in sorted(out.glob("*/result.json")) + sorted(out.glob("*/seed*/result.json")):
        r = json.loads(f.read_text())
        by_variant.setdefault(r["variant"], []).append(r)
    return dict(sorted(by_variant.items(), key=lambda kv: (kv[0] not in ("baseline", "today"), kv[0])))


def _cell(runs: list[dict], split: str, key: str, fmt: str) -> str:
    """Mean over seeds, and each seed's value in brackets when there are several."""
    vals = [r["scores"][split].get(key) for r in runs]
    if any(v is None for v in vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "—"
    mean = f"{sum(vals) / len(vals):{fmt}}"
    return mean if len(vals) == 1 else f"{mean} ({' / '.join(f'{v:{fmt}}' for v in vals)})"


COLUMNS = (
    ("train", "sr_percent", ".1f", "SR train (%)"),
    ("held_out", "sr_percent", ".1f", "SR held-out (%)"),
    ("train", "mpkpe_mm", ".0f", "MPKPE train (mm)"),
    ("train", "g_mpkpe_mm", ".0f", "G-MPKPE train (mm)"),
    ("held_out", "mpkpe_mm", ".0f", "MPKPE held-out (mm)"),
    ("held_out", "g_mpkpe_mm", ".0f", "G-MPKPE held-out (mm)"),
    ("train", "mean_episode_s", ".1f", "stable train (s)"),
    ("held_out", "mean_episode_s", ".1f", "stable held-out (s)"),
    ("train", "fail_s", ".1f", "fell after, train (s)"),
)


def write_report(out: Path, cluster: str, heldout: list[str]) -> None:
    results = _results(out)
    rows = [
        "| variant | change | seeds | " + " | ".join(c[3] for c in COLUMNS) + " | samples | minutes |",
        "|---" * (5 + len(COLUMNS)) + "|",
    ]
    for name, runs in results.items():
        seeds = ", ".join(str(r.get("seed", 1)) for r in runs)
        minutes = sum(r["minutes"] for r in runs) / len(runs)
        cells = " | ".join(_cell(runs, split, key, fmt) for split, key, fmt, _ in COLUMNS)
        rows.append(f"| {name} | {runs[0]['change']} | {seeds} | {cells} | {runs[0]['samples']:,} | {minutes:.0f} |")
    whole = []
    for name in results:
        f = out / name / "whole_clips.json"
        if f.exists():
            s = json.loads(f.read_text())["scores"]
            t, h = s["train"], s["held_out"]
            whole.append(
                f"| {name} | {t['sr_percent']:.1f} ({t['episodes']}) | {t['mean_episode_s']:.0f} | "
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
    first = next(iter(results.values()), [{}])[0]
    windows = first.get("windows", {})
    text = (
        f"# Expert ablation: cluster `{cluster}`\n\n"
        f"PPO runs at equal samples, scored on {windows.get('train')} windows of 10 s of the cluster's clips and "
        f"{windows.get('held_out')} of the held-out performer ({', '.join(heldout)}); one window is "
        f"{100 / max(windows.get('held_out', 1), 1):.1f} points of held-out SR. Each cell is the mean over the row's "
        "seeds, each seed's value in brackets. Evaluation: default terminations (no drift termination), no "
        "randomization, the action convention the policy trained with. G-MPKPE is in the world frame: far above MPKPE, "
        "the robot kept its pose but left the path. Wall-clock minutes were measured on a 2-core machine shared by two "
        "runs; samples are the fair axis.\n\n" + "\n".join(rows + whole) + "\n"
    )
    write_text_atomic(out / "report.md", text)
    plot(results, out / "curves.png")


def plot(results: dict[str, list[dict]], path: Path) -> None:
    keys = (
        ("episode_s", "training episode length (s)"),
        ("mpkpe_mm", "training MPKPE (mm)"),
        ("g_mpkpe_mm", "training G-MPKPE (mm)"),
        ("mean_reward", "reward"),
        ("learning_rate", "learning rate"),
        ("action_std", "action std"),
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    axes = axes.flatten()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, runs) in enumerate(results.items()):
        for j, r in enumerate(runs):
            per_it = r["samples"] / max(r["iterations"], 1)
            x = [c["iteration"] * per_it / 1e6 for c in r["curves"]]
            for ax, (key, _) in zip(axes, keys, strict=True):
                y = [c.get(key) for c in r["curves"]]
                y = [float("nan") if v is None else v for v in y]
                ax.plot(x, y, color=colors[i % len(colors)], alpha=0.85, label=name if j == 0 else None)
    for ax, (key, title) in zip(axes, keys, strict=True):
        ax.set_xlabel("samples (millions)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if key == "learning_rate":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("one line per seed; training episodes start where the sampler puts them, so judge by evaluation")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", choices=sorted(CLUSTERS), default="walks")
    p.add_argument("--variants", nargs="+", default=["baseline"], help=f"of {', '.join(VARIANTS)}; a+b combines")
    p.add_argument("--iterations", type=int, default=300, help="PPO iterations per variant (equal samples)")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed and variant")
    p.add_argument("--threads", type=int, default=2, help="physics and torch threads (two variants side by side: 1)")
    p.add_argument("--train-windows", type=int, default=4, help="10-s windows per training clip")
    p.add_argument("--heldout-windows", type=int, default=8, help="10-s windows per held-out clip")
    p.add_argument("--whole-clips", action="store_true", help="also score each variant on whole clips (minutes each)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for name in args.variants:
        apply_variant(baseline_config(1), name)  # fail on a typo before hours of training
    torch.set_num_threads(args.threads)
    g1 = load_g1()
    lafan = settings.g1_motions_dir("lafan1")
    train_names, heldout_names = CLUSTERS[args.cluster]
    clips = [load_clip(lafan / f"{n}.csv", g1=g1) for n in train_names]
    heldout = [load_clip(lafan / f"{n}.csv", g1=g1) for n in heldout_names]
    evals = [("train", window_set(clips, args.train_windows)), ("held_out", window_set(heldout, args.heldout_windows))]
    for name in args.variants:
        for seed in args.seeds:
            result_file = args.out / name / f"seed{seed}" / "result.json"
            if result_file.exists() or (seed == 1 and (args.out / name / "result.json").exists()):
                print(f"{name} seed {seed}: done before", flush=True)
                continue
            print(f"=== {name} seed {seed}: {args.iterations} iterations", flush=True)
            result = run_variant(name, seed, args, g1, clips, evals)
            write_text_atomic(result_file, json.dumps(result, indent=1, default=str))
            print(f"{name} seed {seed}: {json.dumps(result['scores'])}", flush=True)
            write_report(args.out, args.cluster, heldout_names)
    if args.whole_clips:
        for name in args.variants:
            score_whole_clips(args.out / name, g1, clips, heldout, args.threads)
    write_report(args.out, args.cluster, heldout_names)


def score_whole_clips(folder: Path, g1, clips, heldout, threads: int) -> None:
    """The variant's last checkpoint (first seed) on every whole clip (minutes long: SR says whether it tracks a whole
    take)."""
    target = folder / "whole_clips.json"
    if target.exists():
        return
    runs = sorted(folder.glob("seed*/run")) or [folder / "run"]
    ckpt = latest_checkpoint(runs[0], "model")
    saved = json.loads(((runs[0].parent) / "result.json").read_text())["config"]["tracking"]
    tracking = tracking_for_eval(TrackingConfig.from_dict(saved))
    make = lambda env: load_expert_policy(ckpt, env, g1)  # noqa: E731
    scores = {
        "train": eval_policy(g1, clips, make, tracking, threads),
        "held_out": eval_policy(g1, heldout, make, tracking, threads),
    }
    write_text_atomic(target, json.dumps({"checkpoint": str(ckpt), "scores": scores}, indent=1))
    print(f"{folder.name} on whole clips: {json.dumps(scores)}", flush=True)


if __name__ == "__main__":
    main()
