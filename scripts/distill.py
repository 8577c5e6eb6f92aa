"""Distill the retained cluster experts into one student with parallel DAgger on Isaac Lab.

    ./isaaclab.sh -p scripts/distill.py --task HGPT-Distill --registry experts.json --student gpt-s --num_envs 4096 \\
        --device cuda:0
    python scripts/distill.py --task HGPT-Distill --registry experts.json --num_envs 8 --max_iterations 2  # CPU

The same run on the native MuJoCo backend: ``hgpt distill --backend mujoco --registry experts.json``.
"""

import argparse
from pathlib import Path

import humanoid_gpt_tasks  # noqa: F401  (local assets before Isaac Lab reads its asset root; registers tasks)
from humanoid_gpt.students.distill import DistillRun
from humanoid_gpt_tasks.distill import distill_isaac

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--task", default="HGPT-Distill", choices=("HGPT-Distill",))
parser.add_argument("--registry", type=Path, required=True)
parser.add_argument("--student", default="gpt-s", help="gpt-s, gpt-b, gpt-l, mlp or tcn")
parser.add_argument("--context", type=int, help="H (default: the preset's)")
parser.add_argument("--num_envs", type=int, default=4096)
parser.add_argument("--max_iterations", type=int, default=5000)
parser.add_argument("--save_interval", type=int, default=100)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--resume", type=Path, help="a run folder (its latest checkpoint) or a student checkpoint")
parser.add_argument("--device", default="cpu")
parser.add_argument("--physics", choices=("newton", "physx"), default="newton")
parser.add_argument("--headless", action="store_true", help="accepted for Isaac Lab compatibility (always headless)")
parser.add_argument("--distributed", action="store_true", help="multi-GPU: launch with torchrun")
parser.add_argument("--log_root", type=Path)
parser.add_argument("--run_name")
args = parser.parse_args()
run = DistillRun.from_args(args)
print(f"run: {distill_isaac(run, args.device, args.physics, args.distributed)}")
