"""What the evidence scripts share: the LAFAN1 clusters (training performers and a held-out one), how a policy is
scored on 10-s windows of clips, how a student is distilled at a DAgger budget, and the paper-layout table and the
DAgger curve plot of the reports."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from humanoid_gpt import settings  # noqa: E402
from humanoid_gpt.io_utils import atomic_write, write_text_atomic  # noqa: E402
from humanoid_gpt.jobs.distill import run_distill  # noqa: E402
from humanoid_gpt.metrics import summarize  # noqa: E402
from humanoid_gpt.motion import load_clip  # noqa: E402
from humanoid_gpt.motion.clip import clip_windows  # noqa: E402
from humanoid_gpt.runs import latest_checkpoint  # noqa: E402
from humanoid_gpt.students.dagger import DaggerConfig  # noqa: E402
from humanoid_gpt.students.distill import DistillRun, print_progress  # noqa: E402
from humanoid_gpt_mujoco.evaluate import evaluate  # noqa: E402

CLUSTERS = {
    # Subject 1's walks for training; another performer's walk held out.
    "walk": (["walk1_subject1", "walk2_subject1", "walk3_subject1"], ["walk1_subject5"]),
    # Every walk of subjects 1-4 (40 minutes); subject 5's walks held out (issue 12's walk cluster).
    "walks": (
        ["walk1_subject1", "walk1_subject2", "walk2_subject1", "walk2_subject3", "walk2_subject4"]
        + ["walk3_subject1", "walk3_subject2", "walk3_subject3", "walk3_subject4", "walk4_subject1"],
        ["walk1_subject5", "walk3_subject5"],
    ),
    "dance": (["dance1_subject1", "dance2_subject1"], ["dance1_subject2"]),
    "fight": (["fight1_subject2", "fightAndSports1_subject1"], ["fight1_subject3"]),
}


def window_set(clips, count: int, seconds: float = 10.0):
    return [w for c in clips for w in clip_windows(c, seconds, count)]


def cluster_windows(cluster: str, g1, train_windows: int, heldout_windows: int) -> dict[str, list]:
    """10-s windows of a cluster's training clips (``train``) and of its held-out performer's (``held_out``)."""
    lafan = settings.g1_motions_dir("lafan1")
    names = dict(zip(("train", "held_out"), CLUSTERS[cluster], strict=True))
    counts = {"train": train_windows, "held_out": heldout_windows}
    return {s: window_set([load_clip(lafan / f"{n}.csv", g1=g1) for n in names[s]], counts[s]) for s in names}


def learn_with_curves(
    runner, env, minutes: float, iterations: int | None, curves_path: Path, curves: list[dict] | None = None
) -> list[dict]:
    """PPO in rounds of 10 iterations until ``minutes`` of wall clock or ``iterations`` (equal samples), recording
    after each round the reward, the episode length, the training MPKPE and G-MPKPE of the episodes that round
    finished, the learning rate, the mean action std, and the seconds per iteration spent collecting samples and
    updating (written to ``curves_path`` as it goes). ``curves``: the rounds of a resumed run, continued."""
    curves = list(curves or [])
    start, first = time.time() - 60 * (curves[-1]["minutes"] if curves else 0.0), runner.current_learning_iteration == 0
    budget = iterations or float("inf")
    times = runner.logger.timings  # ExpertRunner's logger sums rsl_rl's per-iteration timings
    while time.time() - start < minutes * 60 and runner.current_learning_iteration < budget:
        seen, done_before = len(env.metrics.records), runner.current_learning_iteration
        times.update(collect=0.0, learn=0.0)
        runner.learn(min(10, budget - runner.current_learning_iteration), init_at_random_ep_len=first)
        runner.current_learning_iteration += 1  # learn() leaves it on the last finished iteration
        first = False
        rounds = runner.current_learning_iteration - done_before
        recent = summarize(env.metrics.records[seen:])
        rew = list(runner.logger.rewbuffer)
        curves.append(
            {
                "minutes": (time.time() - start) / 60,
                "iteration": runner.current_learning_iteration,
                "mean_reward": sum(rew) / max(len(rew), 1),
                "episode_s": recent.get("mean_episode_steps", 0) * env.dt,
                "mpkpe_mm": recent.get("mpkpe_mm"),
                "g_mpkpe_mm": recent.get("g_mpkpe_mm"),
                "mpjpe": recent.get("mpjpe"),
                "learning_rate": float(runner.alg.learning_rate),
                "action_std": action_std(runner),
                "collect_s_per_iteration": times["collect"] / rounds,
                "learn_s_per_iteration": times["learn"] / rounds,
            }
        )
        print(curves[-1], flush=True)
        write_text_atomic(curves_path, json.dumps(curves, indent=1))
        prune_round_checkpoints(runner)
    return curves


def prune_round_checkpoints(runner) -> None:
    """rsl_rl saves a checkpoint at the end of every ``learn()`` call, so rounds of 10 iterations leave one per round
    (8 MB each: 1.7 GB for a 2,000-iteration run). Keep the multiples of ``save_interval`` and the latest, which resume
    needs."""
    if runner.logger.log_dir is None:
        return
    found = {int(p.stem.removeprefix("model_")): p for p in Path(runner.logger.log_dir).glob("model_*.pt")}
    latest, every = max(found, default=None), runner.cfg["save_interval"]
    for iteration, path in found.items():
        if iteration != latest and iteration % every:
            path.unlink()


def action_std(runner) -> float | None:
    """The mean standard deviation of the actor's Gaussian (rsl_rl keeps it as ``std_param`` or ``log_std_param``)."""
    for name, p in runner.alg.actor.named_parameters():
        if name.endswith("log_std_param"):
            return float(p.detach().exp().mean())
        if name.endswith("std_param"):
            return float(p.detach().mean())
    return None


def eval_policy(g1, clips, make_policy, tracking, threads: int = 2) -> dict:
    """Aggregate sim2sim metrics; ``make_policy(env)`` builds the policy for the evaluation env."""
    return evaluate(
        g1, clips, make_policy, tracking, num_envs=min(16, len(clips)), num_threads=threads, progress=False
    )["aggregate"]


# Distillation at a DAgger budget -----------------------------------------------------------------------------------


def add_dagger_args(p: argparse.ArgumentParser) -> None:
    """The DAgger budget flags every distillation script takes (read back by :func:`dagger_config`)."""
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--iterations", type=int, default=100, help="DAgger iterations")
    p.add_argument("--steps-per-iteration", type=int, default=32)
    p.add_argument("--beta-iterations", type=int, default=20)
    p.add_argument("--batch-windows", type=int, default=64, help="windows of H tokens per gradient step")
    p.add_argument("--updates-per-iteration", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)


def dagger_config(args: argparse.Namespace, iterations: int) -> DaggerConfig:
    """The DAgger settings of :func:`add_dagger_args`, run for ``iterations``."""
    return DaggerConfig(
        num_envs=args.num_envs,
        steps_per_iteration=args.steps_per_iteration,
        max_iterations=iterations,
        beta_iterations=args.beta_iterations,
        batch_windows=args.batch_windows,
        updates_per_iteration=args.updates_per_iteration,
        save_interval=50,
        seed=args.seed,
    )


def distill_student(run: DistillRun, g1, manifest) -> tuple[Path, list[dict], float]:
    """Distil ``run`` (printing progress); returns its latest student checkpoint, the per-iteration statistics (with
    wall-clock minutes since the start) and the wall-clock seconds the distillation took."""
    curve, start = [], time.time()

    def record(iteration: int, stats: dict) -> None:
        curve.append({"iteration": iteration, "minutes": (time.time() - start) / 60, **stats})
        print_progress(iteration, stats)

    folder = run_distill(run, g1, manifest=manifest, on_iteration=record)
    return latest_checkpoint(folder, "student"), curve, time.time() - start


# Reports -----------------------------------------------------------------------------------------------------------


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as a PNG atomically (a reader never sees half a file) and close it."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def plot_curves(curves: dict[str, list[dict]], path: Path) -> None:
    """DAgger loss and episode length under the student, per iteration, one line per run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, log in curves.items():
        axes[0].plot([c["iteration"] for c in log], [c["loss"] for c in log], label=name)
        axes[1].plot([c["iteration"] for c in log], [c.get("episode_length_s", float("nan")) for c in log], label=name)
    axes[0].set_title("DAgger loss (SmoothL1 to the teacher)")
    axes[0].set_yscale("log")
    axes[1].set_title("episode length under the student (s)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
