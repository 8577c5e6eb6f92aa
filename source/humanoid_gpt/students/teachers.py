"""The teachers of distillation: each env is taught by the retained expert of its motion's cluster
(:class:`TeacherPool`), or by a released tracker of another lab (:class:`ForeignTeacher`: one for every cluster, or
one per cluster).

Envs are grouped by cluster and each group goes through its expert in one batch (a loop over the clusters present,
never over envs). Experts are loaded on first use and at most ``max_resident`` stay in memory (least recently used
dropped first), so a registry of hundreds of experts fits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tensordict import TensorDict

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.experts.checkpoint import load_checkpoint
from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
from humanoid_gpt.experts.registry import ExpertRegistry, RegistryError
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.robot.g1 import G1
from humanoid_gpt.runs import CheckpointError

MUST_MATCH = ("action_relative_to_reference", "control_dt", "keypoints", "root_body", "anchor_body")
"""Task settings a teacher must share with the distillation task: they define its action and observation."""


class _ObservationSpec:
    """Stands in for an env when rebuilding an expert's actor: rsl_rl reads sizes from one observation."""

    def __init__(self, obs_dim: int, num_actions: int) -> None:
        self.num_envs, self.num_actions, self.device = 1, num_actions, torch.device("cpu")
        self.obs_dim = obs_dim

    def get_observations(self) -> TensorDict:
        zeros = torch.zeros(1, self.obs_dim)
        return TensorDict({"policy": zeros, "critic": zeros}, batch_size=[1])


def _check_teacher(cluster: str, path: Path, tracking: TrackingConfig, obs_dim: int, num_actions: int) -> None:
    """Refuse, before any step, an expert that cannot teach this task: missing, or trained on another action
    convention, rate, keypoint set or observation size."""
    if not path.is_file():
        raise CheckpointError(
            f"the expert registry names {path} for cluster {cluster}, and it does not exist; "
            "retrain or re-evaluate that expert (hgpt experts eval), or drop it from the registry"
        )
    meta = load_checkpoint(path, {"num_actions": num_actions})["infos"]["hgpt"]
    theirs, ours = expert_tracking_config(path, meta).to_dict(), tracking.to_dict()
    differ = [k for k in MUST_MATCH if theirs[k] != ours[k]]
    if differ:
        raise CheckpointError(
            f"{path} (expert of cluster {cluster}) was trained with {', '.join(differ)} = "
            f"{[theirs[k] for k in differ]}, the distillation task uses {[ours[k] for k in differ]}"
        )
    sizes = {g: meta["obs_dims"].get(g) for g in meta["train_cfg"]["obs_groups"]["actor"]}
    if any(n != obs_dim for n in sizes.values()):
        raise CheckpointError(
            f"{path} (expert of cluster {cluster}) observes {sizes}, the task's teacher observation has {obs_dim} "
            "values: its observation layout differs from this task's"
        )


class TeacherPool:
    """Retained experts of ``registry`` for clusters ``clusters`` (their order defines the cluster index)."""

    def __init__(
        self,
        registry: ExpertRegistry,
        clusters: Sequence[str],
        tracking: TrackingConfig,
        obs_dim: int,
        num_actions: int,
        g1: G1 | None = None,
        max_resident: int = 8,
    ) -> None:
        retained = registry.retained()
        missing = [c for c in clusters if c not in retained]
        if missing:
            raise RegistryError(f"clusters {missing[:5]} have no retained expert in the registry")
        self.clusters = list(clusters)
        self.checkpoints = [Path(retained[c].checkpoint) for c in self.clusters]
        for cluster, path in zip(self.clusters, self.checkpoints, strict=True):
            _check_teacher(cluster, path, tracking, obs_dim, num_actions)
        self.spec = _ObservationSpec(obs_dim, num_actions)
        self.g1, self.max_resident = g1, max(1, max_resident)
        self._resident: OrderedDict[int, object] = OrderedDict()
        self.loads = 0  # how many times an expert was read from disk (memory-bound behaviour is tested on it)

    def policy(self, index: int):
        if index in self._resident:
            self._resident.move_to_end(index)
            return self._resident[index]
        policy = load_expert_policy(self.checkpoints[index], self.spec, self.g1)
        self.loads += 1
        self._resident[index] = policy
        while len(self._resident) > self.max_resident:
            self._resident.popitem(last=False)
        return policy

    @torch.no_grad()
    def act(self, privileged: torch.Tensor, cluster_index: torch.Tensor) -> torch.Tensor:
        """Teacher actions (N, A) for privileged observations (N, P), env i taught by expert ``cluster_index[i]``."""
        actions = torch.empty(privileged.shape[0], self.spec.num_actions, device=privileged.device)
        for index in torch.unique(cluster_index).tolist():
            envs = (cluster_index == index).nonzero().flatten()
            obs = privileged[envs]
            actions[envs] = self.policy(index)(TensorDict({"policy": obs, "critic": obs}, batch_size=[len(envs)]))
        return actions


class ForeignSetup(Protocol):
    """Another lab's tracker file as its caller read it (``hgpt distill``, the main job: through the deploy stage,
    whose ``PolicySetup`` is one). Students take it ready-made because deploy imports students, never the reverse."""

    @property
    def g1(self) -> G1:
        """The robot under the tracker's own actuation: the rollouts run with it, the student records it."""

    @property
    def task_settings(self) -> dict:
        """The TrackingConfig fields the tracker was made for (its action convention, physics rate)."""

    @property
    def make(self) -> Callable[[Any], Callable[[Any], torch.Tensor]]:
        """Builds the tracker's policy for an env; the policy reads the env's state itself (called with None)."""


@dataclass(frozen=True)
class ForeignTeachers:
    """Other labs' trackers as the caller read them: the file teaching each cluster (one tracker for every cluster, or
    one per cluster, e.g. BeyondMimic's per-clip policies) and how each file runs. The rollouts run under one
    actuation and one task, so every file must share them."""

    files: Mapping[str, Path]
    """Cluster id -> the tracker file teaching it."""
    setups: Mapping[Path, ForeignSetup]
    """Tracker file -> how it runs."""

    def __post_init__(self) -> None:
        if not self.files:
            raise ConfigError("no cluster has a tracker to teach it")
        first, *others = self.setups
        for other in others:
            for what, key in (("actuation", lambda s: s.g1.actuation), ("task", lambda s: s.task_settings)):
                if key(self.setups[other]) != key(self.setups[first]):
                    raise ConfigError(
                        f"{other} and {first} run under different {what}s; the rollouts and the student run under "
                        "one (a tracker's targets under another's gains do not do what it did: "
                        "docs/howto-compare-trackers.md). Distil trackers of one lab and robot setup together, others "
                        "in another run"
                    )

    @property
    def setup(self) -> ForeignSetup:
        """The actuation and task every file shares."""
        return next(iter(self.setups.values()))


class ForeignTeacher:
    """Other labs' trackers (layouts the deploy stage reads, e.g. TWIST2's student; see :class:`ForeignTeachers`)
    teaching the envs of their clusters. Each builds its own observation from the env's state and keeps its own
    history, so every tracker runs once per control step on all envs (DAgger labels every step) and each env takes the
    action of its cluster's tracker. Labels are actions in the env's action space: the rollout env runs with the
    trackers' actuation, and the student records it (``meta["actuation"]``) so it is later simulated and deployed as
    its teachers were."""

    def __init__(self, files: Sequence[Path], policies: Mapping[Path, Callable[[Any], torch.Tensor]]) -> None:
        self.checkpoints = [Path(f) for f in files]  # per cluster, in the plan's cluster order (the run's metadata)
        self._policies = {Path(f): policy for f, policy in policies.items()}
        order = list(self._policies)
        self._owner = torch.tensor([order.index(f) for f in self.checkpoints])  # cluster index -> policy index

    @torch.no_grad()
    def act(self, privileged: torch.Tensor, cluster_index: torch.Tensor) -> torch.Tensor:
        actions = [policy(None) for policy in self._policies.values()]
        if len(actions) == 1:
            return actions[0]
        owner = self._owner.to(cluster_index.device)[cluster_index]
        return torch.stack(actions)[owner, torch.arange(len(owner), device=owner.device)]
