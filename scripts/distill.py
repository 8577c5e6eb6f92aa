"""Distill the retained cluster experts into one student with parallel DAgger on Isaac Lab.

    ./isaaclab.sh -p scripts/distill.py --registry experts.json --student gpt-s --num_envs 4096 --device cuda:0
    python scripts/distill.py --registry experts.json --num_envs 8 --max_iterations 2  # kit-less, CPU

The options are ``hgpt distill``'s (one definition, ``humanoid_gpt.students.distill.DistillRun``) in Isaac Lab's
spelling; ``--backend mujoco`` runs the same on the native MuJoCo backend.
"""

import argparse

import humanoid_gpt_tasks  # noqa: F401  (local assets before Isaac Lab reads its asset root; registers tasks)
from humanoid_gpt import configure_process
from humanoid_gpt.flags import add_flags, from_args
from humanoid_gpt.jobs.distill import run_distill
from humanoid_gpt.robot import load_g1
from humanoid_gpt.students.distill import DistillRun

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
add_flags(parser, DistillRun, style="isaaclab")
parser.add_argument("--task", default="HGPT-Distill", choices=("HGPT-Distill",), help="the distillation task")
parser.add_argument("--headless", action="store_true", help="accepted for Isaac Lab compatibility (always headless)")
args = parser.parse_args()
configure_process()
print(f"run: {run_distill(from_args(DistillRun, args, backend=args.backend or 'isaaclab'), load_g1())}")
