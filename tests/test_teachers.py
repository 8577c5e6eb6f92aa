"""Teachers: each env labelled by its cluster's expert, a bounded number resident, experts that cannot teach
refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from students_support import TRACKING

from humanoid_gpt.experts.registry import RegistryError
from humanoid_gpt.runs import CheckpointError
from humanoid_gpt.students.teachers import TeacherPool


def test_teachers_are_routed_by_cluster_and_bounded_in_memory(g1, experts, registry_of):
    from humanoid_gpt.experts.evaluation import load_expert_policy
    from humanoid_gpt.mdp.observations import privileged_dim

    dim = privileged_dim(len(TRACKING.keypoints))
    pool = TeacherPool(registry_of(experts), ["a", "b"], TRACKING, dim, 29, g1, max_resident=1)
    obs = torch.randn(6, dim)
    route = torch.tensor([0, 1, 1, 0, 1, 0])
    actions = pool.act(obs, route)
    spec = pool.spec
    for index, path in enumerate(experts):
        policy = load_expert_policy(path, spec, g1)
        envs = (route == index).nonzero().flatten()
        td = spec.get_observations().expand(len(envs)).clone()
        td["policy"], td["critic"] = obs[envs], obs[envs]
        with torch.no_grad():
            assert torch.allclose(actions[envs], policy(td), atol=1e-6)
    assert not torch.allclose(actions[0], actions[1])  # two experts, two answers
    assert len(pool._resident) == 1 and pool.loads == 2
    pool.act(obs, torch.zeros(6, dtype=torch.long))
    assert pool.loads == 3  # expert 0 had been evicted; only one is ever resident


def test_registries_and_teachers_that_cannot_teach_are_refused(g1, experts, registry_of, tmp_path):
    registry = registry_of(experts)
    registry.experts["b"] = dataclasses.replace(registry.experts["b"], checkpoint=str(tmp_path / "gone.pt"))
    with pytest.raises(CheckpointError, match="gone.pt.*does not exist"):
        TeacherPool(registry, ["a", "b"], TRACKING, 520, 29, g1)
    with pytest.raises(RegistryError, match="no retained expert"):
        TeacherPool(registry, ["a", "z"], TRACKING, 520, 29, g1)
    absolute = dataclasses.replace(TRACKING, action_relative_to_reference=False)
    with pytest.raises(CheckpointError, match="action_relative_to_reference"):
        TeacherPool(registry_of(experts), ["a"], absolute, 520, 29, g1)
    with pytest.raises(CheckpointError, match="observation layout differs"):
        TeacherPool(registry_of(experts), ["a"], TRACKING, 136, 29, g1)
