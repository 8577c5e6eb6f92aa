"""Sim2sim evaluation: run a policy over a set of clips in the MuJoCo harness and report the paper's metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from humanoid_gpt.deploy.policies import Policy
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp.config import TrackingConfig, evaluation_task
from humanoid_gpt.metrics import seconds, summarize
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt_mujoco.env import EvalSchedule, MujocoTrackingEnv

EVAL_SCHEMA_VERSION = 2  # 2: falls judged as the metrics define them (evaluation_task)
MIN_EVAL_SECONDS = 0.5
"""Shorter clips end before a falling robot crosses the failure thresholds: their SR would mean nothing."""


def evaluate(
    g1: G1,
    clips: Sequence[MotionClip],
    make_policy: Callable[[MujocoTrackingEnv], Policy],
    cfg: TrackingConfig | None = None,
    num_envs: int = 16,
    num_threads: int = 2,
    seed: int = 0,
    progress: bool = True,
    record: bool = False,
) -> dict:
    """Play every clip once from its start, without randomization; return aggregate and per-clip metrics. With
    ``record``, the result's ``recording`` holds the first clip's episode (env 0): robot and reference poses per
    control step, (T, 36) each, for a video (``humanoid_gpt.render.render_qpos``)."""
    short = [f"{c.name} ({c.duration:.2f} s)" for c in clips if c.duration < MIN_EVAL_SECONDS]
    if short:
        raise ConfigError(
            f"clips {', '.join(short[:5])} are shorter than {MIN_EVAL_SECONDS} s: too short to tell tracking from "
            "falling; evaluate longer clips (or a larger --max-seconds)"
        )
    if not clips:
        raise ConfigError("no clips to evaluate")
    cfg = evaluation_task(cfg or TrackingConfig())
    library = MotionLibrary.from_clips(clips, g1, cfg.keypoints)
    env = MujocoTrackingEnv(
        g1, library, cfg, min(num_envs, len(clips)), seed, num_threads, EvalSchedule(range(len(clips)))
    )
    policy = make_policy(env)
    obs = env.get_observations()
    total_steps = int(sum(library.duration.tolist()) / cfg.control_dt)
    bar = _progress(progress, total_steps)
    recording = {"clip": library.names[0], "robot": [], "reference": []} if record else None
    with torch.no_grad():
        while env.active.any():
            obs, _, done, _ = env.step(policy(obs))
            bar(int(env.active.sum()))
            if recording is not None:
                recording = _record(env, recording, bool(done[0]))
    env.close()
    records = env.metrics.records
    per_clip = {}
    for clip_id, name in enumerate(library.names):
        mine = [r for r in records if r.clip == clip_id]
        per_clip[name] = {**seconds(summarize(mine), cfg.control_dt), "duration_s": float(library.duration[clip_id])}
    aggregate = seconds(summarize(records), cfg.control_dt)
    result = {
        "schema_version": EVAL_SCHEMA_VERSION,
        "aggregate": aggregate,
        "clips": per_clip,
        "config": cfg.to_dict(),
    }
    if recording is not None:
        result["recording"] = {
            "clip": recording["clip"],
            "fps": 1.0 / cfg.control_dt,
            "robot": np.array(recording["robot"]).reshape(-1, 7 + g1.num_joints),
            "reference": np.array(recording["reference"]).reshape(-1, 7 + g1.num_joints),
        }
    return result


def _record(env: MujocoTrackingEnv, recording: dict, done: bool) -> dict:
    """Append env 0's robot and reference poses after a step, until its first episode ends (after ``done`` the env
    already shows the next episode's start)."""
    if recording.get("ended"):
        return recording
    if done:
        return {**recording, "ended": True}
    ref = env.clock.reference()
    recording["robot"].append(env.worlds.qpos[0].copy())
    recording["reference"].append(torch.cat([ref.root_pos[0], ref.root_quat[0], ref.joint_pos[0]]).double().numpy())
    return recording


def _progress(enabled: bool, total: int):
    if not enabled:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="sim2sim eval", unit="step", disable=None)  # None: no bar when not a terminal
    return lambda n: bar.update(n)
