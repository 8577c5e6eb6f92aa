"""Train one cluster expert with rsl_rl PPO on Isaac Lab.

    ./isaaclab.sh -p scripts/train_expert.py --task HGPT-Cluster-042 --num_envs 4096 --device cuda:0
    python scripts/train_expert.py --task HGPT-Cluster-042 --num_envs 16 --max_iterations 10   # kit-less, CPU

The options are ``hgpt train expert``'s (one definition, ``humanoid_gpt.experts.train.ExpertRun``) in Isaac Lab's
spelling; ``--backend mujoco`` runs the same on the native MuJoCo backend.
"""

import argparse

import humanoid_gpt_tasks  # noqa: F401  (local assets before Isaac Lab reads its asset root; registers tasks)
from humanoid_gpt import configure_process
from humanoid_gpt.experts.train import ExpertRun, train_expert
from humanoid_gpt.flags import add_flags, from_args
from humanoid_gpt.robot import load_g1

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
add_flags(parser, ExpertRun, style="isaaclab", required=("task",))
parser.add_argument("--headless", action="store_true", help="accepted for Isaac Lab compatibility (always headless)")
args = parser.parse_args()
configure_process()
print(f"run: {train_expert(from_args(ExpertRun, args, backend=args.backend or 'isaaclab'), load_g1())}")
