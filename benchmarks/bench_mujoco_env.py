"""Native MuJoCo backend throughput: env-steps/s of the full tracking env (physics, MDP, motion queries) at 64,
256 and 1024 envs, against the raw C MuJoCo step rate of the same worlds (same model, threads and decimation)
measured in the same run. Target (issue 3): at least 70% of raw.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_mujoco_env.py
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from humanoid_gpt import settings
from humanoid_gpt.deploy.policies import ReferencePolicy
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import load_g1
from humanoid_gpt_mujoco.env import MujocoTrackingEnv


def measure(env: MujocoTrackingEnv, steps: int, threads: int) -> tuple[float, float]:
    """(env env-steps/s, raw env-steps/s). Each env step is followed by a raw step of copies of the very same worlds
    (same states, same PD targets, ``decimation`` plain ``mj_step`` calls each, same thread count), so the two rates
    compare like for like even as robots fall and reset."""
    w = env.worlds
    scratch = [mujoco.MjData(m) for m in w.models]
    chunks = [c for c in np.array_split(np.arange(env.num_envs), threads) if len(c)]

    def raw(ids):
        for i in ids:
            m, d = w.models[i], scratch[i]
            for _ in range(env.decimation):
                mujoco.mj_step(m, d)

    policy = ReferencePolicy(env)
    obs = env.get_observations()
    t_env = t_raw = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(steps):
            for i in range(env.num_envs):
                mujoco.mj_copyData(scratch[i], w.models[i], w.datas[i])
            start = time.perf_counter()
            obs, *_ = env.step(policy(obs))
            t_env += time.perf_counter() - start
            start = time.perf_counter()
            list(pool.map(raw, chunks))
            t_raw += time.perf_counter() - start
    return steps * env.num_envs / t_env, steps * env.num_envs / t_raw


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="rough wall time per measurement")
    p.add_argument("--randomize", action="store_true", help="training randomization on (per-env models)")
    p.add_argument("--compile", action="store_true", help="torch.compile the MDP maths (30-40 s to compile)")
    args = p.parse_args()
    torch.set_num_threads(1)  # the MDP maths shares the cores with the physics threads

    g1 = load_g1()
    clips = [
        load_clip(settings.g1_motions_dir("lafan1") / f"{n}.csv", g1=g1) for n in ("walk1_subject1", "run1_subject2")
    ]
    cfg = TrackingConfig(randomization=RandomizationConfig() if args.randomize else RandomizationConfig.off())
    lib = MotionLibrary.from_clips(clips, g1, cfg.keypoints)
    print(
        f"G1, decimation {cfg.decimation} ({1 / cfg.physics_dt:.0f} Hz physics, {1 / cfg.control_dt:.0f} Hz control),"
        f" {args.threads} threads, randomization {'on' if args.randomize else 'off'}"
    )
    print(f"{'envs':>6} {'raw env-steps/s':>16} {'env env-steps/s':>16} {'ratio':>7}  (raw physics steps/s)")
    for n in args.envs:
        env = MujocoTrackingEnv(g1, lib, cfg, n, seed=0, num_threads=args.threads, compile=args.compile)
        steps = max(3, int(args.seconds * 3000 / n))
        measure(env, 2, args.threads)  # warm up
        full, raw = measure(env, steps, args.threads)
        print(f"{n:>6} {raw:>16,.0f} {full:>16,.0f} {full / raw:>7.2f}  ({raw * cfg.decimation:,.0f})")
        env.close()


if __name__ == "__main__":
    main()
