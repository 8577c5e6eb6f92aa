"""Expert training throughput end to end (rollout and PPO update) on the native MuJoCo backend, a profile of one
PPO iteration, and the raw C MuJoCo env-step rate of the same worlds measured in the same run (issue 12).

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie \\
        .venv/bin/python benchmarks/bench_expert_training.py [--envs 256] [--iterations 6] [--randomize] \\
        [--epochs 5 --mini-batches 4]

Each iteration's wall clock is split into: physics (MuJoCo stepping the worlds), state reads (world arrays into
tensors), MDP maths (observations, rewards, terminations, errors), the rest of the env step (resets, pushes, start
sampling, metrics), policy inference (``act``), rollout storage and the PPO update (returns and gradient epochs). The
ratio compares training samples/s with the raw rate: plain ``mj_step`` calls on copies of the same worlds, same threads
and decimation, no Python work at all.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from humanoid_gpt import settings
from humanoid_gpt.experts.ppo import expert_ppo_cfg
from humanoid_gpt.experts.runner import ExpertRunner
from humanoid_gpt.experts.train import run_meta
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import load_g1
from humanoid_gpt_mujoco.env import MujocoTrackingEnv


def timed(owner, name: str, bucket: str, totals: dict) -> None:
    """Replace ``owner.name`` with a wrapper adding its wall time to ``totals[bucket]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[bucket] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def raw_rate(env: MujocoTrackingEnv, steps: int) -> float:
    """Env-steps/s of plain ``mj_step`` on copies of the env's worlds (same models, threads, decimation)."""
    w = env.worlds
    scratch = [mujoco.MjData(m) for m in w.models]
    for i in range(env.num_envs):
        mujoco.mj_copyData(scratch[i], w.models[i], w.datas[i])
        scratch[i].ctrl[:] = w.datas[i].ctrl
    chunks = [c for c in np.array_split(np.arange(env.num_envs), w.num_threads) if len(c)]

    def run(ids):
        for i in ids:
            for _ in range(env.decimation):
                mujoco.mj_step(w.models[i], scratch[i])

    with ThreadPoolExecutor(w.num_threads) as pool:
        start = time.perf_counter()
        for _ in range(steps):
            list(pool.map(run, chunks))
        return steps * env.num_envs / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, default=256)
    p.add_argument("--iterations", type=int, default=6, help="PPO iterations measured (after one warm-up)")
    p.add_argument("--threads", type=int, default=2, help="physics threads and torch threads")
    p.add_argument("--epochs", type=int, default=None, help="PPO epochs (default: the expert config's)")
    p.add_argument("--mini-batches", type=int, default=None, help="PPO mini-batches (default: the expert config's)")
    p.add_argument("--randomize", action="store_true", help="all of the training randomization (per-env models)")
    p.add_argument("--compile", action="store_true", help="torch.compile the MDP maths (30-40 s to compile)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    g1 = load_g1()
    clip = load_clip(settings.g1_motions_dir("lafan1") / "walk1_subject1.csv", g1=g1)
    dr = RandomizationConfig() if args.randomize else RandomizationConfig(friction=False, mass=False, gains=False)
    tracking = TrackingConfig(action_relative_to_reference=True, randomization=dr)
    env = MujocoTrackingEnv(
        g1, MotionLibrary.from_clips([clip], g1), tracking, args.envs, 0, args.threads, compile=args.compile
    )
    ppo = expert_ppo_cfg(save_interval=10**9, logger="tensorboard")
    for key, value in (("num_learning_epochs", args.epochs), ("num_mini_batches", args.mini_batches)):
        if value is not None:
            ppo["algorithm"][key] = value
    runner = ExpertRunner(env, ppo, None, run_meta("bench", env, g1, tracking, ppo))
    runner.learn(1)  # warm-up: allocation, first resets (and compilation)
    runner.current_learning_iteration += 1

    totals: dict[str, float] = defaultdict(float)
    timed(env.worlds, "step", "physics", totals)
    timed(env, "robot_state", "state reads", totals)
    timed(env, "_observe", "MDP maths", totals)
    timed(env, "_evaluate", "MDP maths", totals)
    timed(env, "step", "env step", totals)
    timed(runner.alg, "act", "policy act", totals)
    timed(runner.alg, "process_env_step", "rollout storage", totals)
    timed(runner.alg, "compute_returns", "PPO update", totals)
    timed(runner.alg, "update", "PPO update", totals)
    start = time.perf_counter()
    runner.learn(args.iterations)
    wall = time.perf_counter() - start
    env_other = totals["env step"] - totals["physics"] - totals["state reads"] - totals["MDP maths"]
    parts = {
        "physics": totals["physics"],
        "state reads": totals["state reads"],
        "MDP maths": totals["MDP maths"],
        "env bookkeeping": env_other,
        "policy act": totals["policy act"],
        "rollout storage": totals["rollout storage"],
        "PPO update": totals["PPO update"],
    }
    parts["runner (rest)"] = wall - sum(parts.values())
    samples = args.iterations * ppo["num_steps_per_env"] * args.envs
    raw = raw_rate(env, max(5, int(3 * 3000 / args.envs)))
    env.close()

    alg = ppo["algorithm"]
    print(
        f"{args.envs} envs, {args.threads} threads, randomization {'all' if args.randomize else 'noise only'}, PPO "
        f"{alg['num_learning_epochs']} epochs x {alg['num_mini_batches']} mini-batches, {args.iterations} iterations"
    )
    print(f"{'part of an iteration':<18} {'s/iteration':>12} {'share':>7}")
    for name, seconds in parts.items():
        print(f"{name:<18} {seconds / args.iterations:>12.3f} {seconds / wall:>7.1%}")
    print(f"{'total':<18} {wall / args.iterations:>12.3f}")
    rate = samples / wall
    print(f"training samples/s {rate:,.0f}; raw MuJoCo env-steps/s of the same worlds {raw:,.0f}")
    print(f"ratio {rate / raw:.2f}")
    print(f"(raw physics alone would take {samples / raw / args.iterations:.3f} s/iteration)")


if __name__ == "__main__":
    main()
