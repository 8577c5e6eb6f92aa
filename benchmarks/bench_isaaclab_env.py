"""Isaac Lab kit-less throughput, for the record: env-steps/s of the tracking task on Newton + MuJoCo-Warp with
Warp's CPU device, against the native MuJoCo backend on the same clip and env count in the same run.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python benchmarks/bench_isaaclab_env.py
"""

from __future__ import annotations

import argparse
import time

import torch

import humanoid_gpt_tasks  # noqa: F401  (local assets before Isaac Lab reads its asset root)
from humanoid_gpt import settings
from humanoid_gpt.deploy.policies import ReferencePolicy
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import load_g1
from humanoid_gpt_mujoco.env import MujocoTrackingEnv
from humanoid_gpt_tasks.tracking_env_cfg import make_tracking_env_cfg


def isaac_rate(n: int, path: str, tracking: TrackingConfig, steps: int) -> tuple[float, float]:
    from isaaclab.envs import ManagerBasedRLEnv

    start = time.perf_counter()
    env = ManagerBasedRLEnv(cfg=make_tracking_env_cfg([path], tracking, num_envs=n))
    build = time.perf_counter() - start
    env.reset()
    cmd = env.command_manager.get_term("motion")
    act = lambda: (cmd.ref_next().joint_pos - cmd.consts.default_joint_pos) / cmd.consts.action_scale  # noqa: E731
    for _ in range(5):
        env.step(act())
    start = time.perf_counter()
    for _ in range(steps):
        env.step(act())
    rate = steps * n / (time.perf_counter() - start)
    env.close()
    return rate, build


def mujoco_rate(n: int, path: str, tracking: TrackingConfig, steps: int) -> float:
    g1 = load_g1()
    env = MujocoTrackingEnv(g1, MotionLibrary.from_clips([load_clip(path, g1=g1)], g1), tracking, n)
    policy, obs = ReferencePolicy(env), env.get_observations()
    start = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(policy(obs))
    rate = steps * n / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", type=int, nargs="+", default=[16, 64])
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(2)
    from isaaclab.app import launch_simulation

    path = str(settings.g1_motions_dir("lafan1") / "walk1_subject1.csv")
    tracking = TrackingConfig(randomization=RandomizationConfig.off())
    print(f"{'envs':>6} {'Isaac Lab kit-less':>19} {'native MuJoCo':>14} {'ratio':>7}  (Isaac build s)")
    with launch_simulation(make_tracking_env_cfg([path], tracking, num_envs=1), {"headless": True, "device": "cpu"}):
        for n in args.envs:
            isaac, build = isaac_rate(n, path, tracking, args.steps)
            native = mujoco_rate(n, path, tracking, args.steps)
            print(f"{n:>6} {isaac:>19,.0f} {native:>14,.0f} {isaac / native:>7.2f}  ({build:.1f})")


if __name__ == "__main__":
    main()
