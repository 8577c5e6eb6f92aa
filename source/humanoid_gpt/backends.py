"""The seam between the pipeline and its physics backends.

The core computes *plans* (what to simulate: clips and their weights, the task config, how many envs, the seed) and
hands them to a :class:`Backend`, which builds the env. Backends live outside the core (``humanoid_gpt_mujoco``:
C MuJoCo on CPU threads; ``humanoid_gpt_tasks``: Isaac Lab) and register themselves as entry points of the group
``humanoid_gpt.backends`` (see ``setup.py``), so the core never imports them and another backend (an mjlab port, say)
plugs in the same way. docs/architecture.md draws the layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.mdp.config import TrackingConfig

if TYPE_CHECKING:
    from humanoid_gpt.catalog.refs import ClipRef

ENTRY_POINT_GROUP = "humanoid_gpt.backends"


@dataclass(frozen=True, kw_only=True)
class EnvPlan:
    """What every tracking env is built from. ``threads`` and ``compile`` concern the MuJoCo backend, ``physics``
    the Isaac Lab one; a backend ignores what it has no use for."""

    clips: tuple[Path | ClipRef, ...]  # files, segments, corpus clips of a manifest (load_clip_refs loads all)
    tracking: TrackingConfig
    num_envs: int
    seed: int
    weights: tuple[float, ...] | None = None  # sampling weight per clip; None: the library's default
    device: str = "cpu"
    threads: int = 2
    compile: bool = False
    physics: str = "newton"


@dataclass(frozen=True, kw_only=True)
class ExpertPlan(EnvPlan):
    """One cluster expert's env: the task id (``HGPT-Cluster-042``) and the cluster's clips."""

    task: str


@dataclass(frozen=True, kw_only=True)
class DistillPlan(EnvPlan):
    """The distillation env over the retained clusters' clips. ``clip_cluster[i]`` is the index (into ``clusters``,
    the teacher order) of clip ``i``'s cluster."""

    clusters: tuple[str, ...]
    clip_cluster: tuple[int, ...] = field(default=())


ClusterIndex = Callable[[], torch.Tensor]
"""Returns, for every env, the index of its current motion's cluster (which teacher labels it)."""


class Backend(Protocol):
    name: str

    def session(self, plan: EnvPlan) -> contextlib.AbstractContextManager:
        """The simulation runtime the plan's envs need, entered around building and running them."""

    def expert_env(self, plan: ExpertPlan) -> Any:
        """An rsl_rl ``VecEnv`` with observation groups ``policy`` and ``critic``."""

    def distill_env(self, plan: DistillPlan) -> tuple[Any, ClusterIndex]:
        """An rsl_rl ``VecEnv`` with groups ``student`` and ``teacher``, and each env's cluster index."""

    def evaluate(
        self,
        clips: Sequence[Any],
        make_policy: Callable[[Any], Callable],
        tracking: TrackingConfig,
        num_envs: int = 16,
        seed: int = 0,
        progress: bool = True,
        record: bool = False,
    ) -> dict:
        """Play every clip once from its start with ``make_policy(env)``; the paper's metrics, aggregate and per
        clip (``humanoid_gpt.metrics``); with ``record``, the first clip's robot and reference poses too."""


def available_backends() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_backend(name: str, **options) -> Backend:
    """The backend registered as ``name`` (``mujoco``, ``isaaclab``), built with ``options``."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise HGPTError(
            f"no backend {name!r}; installed: {', '.join(available_backends()) or 'none'}. Backends register under "
            f"the entry-point group '{ENTRY_POINT_GROUP}'; reinstall the project (pip install -e .) if it is missing"
        )
    return found[0].load()(**options)
