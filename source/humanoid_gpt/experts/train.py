"""Training one cluster expert with rsl_rl PPO on any VecEnv (the native MuJoCo backend here; Isaac Lab's scripts
use the same runner and checkpoints)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import settings
from humanoid_gpt.experts.checkpoint import CheckpointError, config_hash, latest_checkpoint, robot_hash
from humanoid_gpt.experts.ppo import expert_ppo_cfg
from humanoid_gpt.experts.runner import ExpertRunner
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.robot.g1 import G1

RESUMABLE = ("max_iterations", "save_interval", "logger")
"""Settings a resumed run may change; any other difference makes it another experiment."""


@dataclass
class ExpertRun:
    """One expert training run, as the command line describes it."""

    task: str
    num_envs: int = 256
    max_iterations: int = 1000
    seed: int = 42
    save_interval: int = 50
    log_root: Path | None = None
    run_name: str | None = None
    resume: Path | None = None  # a run folder (its latest checkpoint) or a checkpoint file
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    threads: int = 2

    @classmethod
    def from_args(cls, args, **overrides) -> ExpertRun:
        """From parsed command-line options named like the fields (``num_envs``, ``max_iterations``, ...)."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in vars(args).items() if k in names and v is not None}
        return cls(**{**given, **overrides})

    def run_dir(self) -> Path:
        if self.resume is not None:
            return self.resume if self.resume.is_dir() else self.resume.parent
        root = self.log_root or settings.output_root() / "experts"
        return root / self.task / (self.run_name or time.strftime("%Y-%m-%d_%H-%M-%S"))


def run_meta(task: str, env, g1: G1, tracking: TrackingConfig, ppo: dict) -> dict:
    """What every checkpoint of a run records and a resume must match: task, observation sizes, action count,
    robot, and the hash of the experiment's config (settings a resume may change left out)."""
    obs = env.get_observations()
    return {
        "task": task,
        "obs_dims": {k: int(v.shape[-1]) for k, v in obs.items()},
        "num_actions": int(env.num_actions),
        "robot": robot_hash(g1.xml_path),
        "config_hash": config_hash(tracking.to_dict(), {k: v for k, v in ppo.items() if k not in RESUMABLE}),
        "tracking": tracking.to_dict(),
    }


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_expert(run: ExpertRun, g1: G1, make_env: Callable[[ExpertRun], object]) -> Path:
    """Train (or resume) the expert of ``run.task``; returns the run folder with ``config.json`` and checkpoints.

    Resuming checks, before any step, that the checkpoint was made for this task, robot, observation layout and
    config, and restores weights, optimizer, normalizers, iteration and RNG states.
    """
    run_dir = run.run_dir()
    resume_from = None
    if run.resume is not None:
        resume_from = latest_checkpoint(run.resume) if run.resume.is_dir() else run.resume
        if resume_from is None:
            raise CheckpointError(f"{run.resume} holds no checkpoint (model_<iteration>.pt) to resume from")
        saved_file = run_dir / "config.json"
        if saved_file.is_file():
            saved = json.loads(saved_file.read_text())["tracking"]
            asked = json.loads(json.dumps(run.tracking.to_dict(), default=str))
            changed = sorted(k for k in saved.keys() | asked.keys() if saved.get(k) != asked.get(k))
            if changed:
                raise CheckpointError(
                    f"resuming {run_dir} with a different task config ({', '.join(changed)} differ from "
                    f"{saved_file}); pass the same options as the original run, or start a new run"
                )
    seed_everything(run.seed)
    ppo = expert_ppo_cfg(seed=run.seed, max_iterations=run.max_iterations, save_interval=run.save_interval)
    if os.environ.get("WANDB_PROJECT"):  # W&B when configured; TensorBoard always
        ppo["logger"] = {"class_name": "WandbLogWriter", "project_name": os.environ["WANDB_PROJECT"]}
    env = make_env(run)
    meta = run_meta(run.task, env, g1, run.tracking, ppo)
    runner = ExpertRunner(env, ppo, str(run_dir), meta)
    start = runner.resume(resume_from) if resume_from is not None else 0
    write_text_atomic(
        run_dir / "config.json",
        json.dumps(
            {"run": _jsonable(asdict(run)), "tracking": run.tracking.to_dict(), "ppo": ppo, "meta": meta},
            indent=1,
            default=str,
        ),
    )
    remaining = run.max_iterations - start
    if remaining > 0:
        runner.learn(remaining, init_at_random_ep_len=resume_from is None)
    env.close()
    return run_dir


def _jsonable(d: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items() if k != "tracking"}
