"""The native MuJoCo backend: plans become :class:`MujocoTrackingEnv` worlds on CPU threads (registered as the
``mujoco`` entry point of ``humanoid_gpt.backends``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from humanoid_gpt.backends import ClusterIndex, DistillPlan, EnvPlan, ExpertPlan
from humanoid_gpt.catalog.refs import load_clip_refs
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot.g1 import G1, load_g1
from humanoid_gpt_mujoco.env import MujocoTrackingEnv
from humanoid_gpt_mujoco.evaluate import evaluate


class MujocoBackend:
    name = "mujoco"

    def __init__(self, g1: G1 | None = None, threads: int = 2) -> None:
        """``threads``: physics threads of evaluations (training envs take theirs from the plan)."""
        self.g1 = g1 or load_g1()
        self.threads = threads

    def session(self, plan: EnvPlan) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # C MuJoCo needs no runtime beyond the process

    def _env(self, plan: EnvPlan) -> MujocoTrackingEnv:
        clips = load_clip_refs(plan.clips, self.g1, progress=True)  # files, segments, corpus clips (FK cached)
        library = MotionLibrary.from_clips(clips, self.g1, plan.tracking.keypoints, weights=plan.weights)
        return MujocoTrackingEnv(
            self.g1, library, plan.tracking, plan.num_envs, plan.seed, plan.threads, compile=plan.compile
        )

    def expert_env(self, plan: ExpertPlan) -> MujocoTrackingEnv:
        return self._env(plan)

    def distill_env(self, plan: DistillPlan) -> tuple[MujocoTrackingEnv, ClusterIndex]:
        env = self._env(plan)
        cluster_of_clip = torch.tensor(plan.clip_cluster)
        return env, lambda: cluster_of_clip[env.clock.clip_ids]

    def evaluate(
        self,
        clips: Sequence[MotionClip],
        make_policy: Callable[[MujocoTrackingEnv], Callable],
        tracking: TrackingConfig,
        num_envs: int = 16,
        seed: int = 0,
        progress: bool = True,
        record: bool = False,
    ) -> dict:
        return evaluate(self.g1, clips, make_policy, tracking, num_envs, self.threads, seed, progress, record)
