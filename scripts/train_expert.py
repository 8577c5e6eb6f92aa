"""Train one cluster expert with rsl_rl PPO on Isaac Lab.

    ./isaaclab.sh -p scripts/train_expert.py --task HGPT-Cluster-042 --num_envs 4096 --device cuda:0
    python scripts/train_expert.py --task HGPT-Cluster-042 --num_envs 16 --max_iterations 10   # kit-less, CPU

The same run on the native MuJoCo backend (CPU-only machines): ``hgpt train expert --task ... --backend mujoco``.
"""

import argparse
from pathlib import Path

import humanoid_gpt_tasks  # noqa: F401  (local assets before Isaac Lab reads its asset root; registers tasks)
from humanoid_gpt.experts.train import ExpertRun
from humanoid_gpt_tasks.train import train_isaac_expert

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--task", required=True)
parser.add_argument("--num_envs", type=int, default=4096)
parser.add_argument("--max_iterations", type=int, default=10000)
parser.add_argument("--save_interval", type=int, default=500)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--resume", type=Path, help="a run folder (its latest checkpoint) or a checkpoint file")
parser.add_argument("--device", default="cpu")
parser.add_argument("--physics", choices=("newton", "physx"), default="newton")
parser.add_argument("--headless", action="store_true", help="accepted for Isaac Lab compatibility (always headless)")
parser.add_argument("--distributed", action="store_true", help="multi-GPU: launch with torchrun")
parser.add_argument("--video", action="store_true", help="needs Isaac Sim rendering")
parser.add_argument("--log_root", type=Path)
parser.add_argument("--run_name")
args = parser.parse_args()
if args.video:
    raise SystemExit("--video needs Isaac Sim's renderer; kit-less runs can render clips with `hgpt render`")
run = ExpertRun.from_args(args)
print(f"run: {train_isaac_expert(run, args.device, args.physics, args.distributed)}")
