"""Shared fixtures. Real data comes from the settings (HGPT_DATA_ROOT, MENAGERIE_ROOT), which the test command points
at ../shared; tests that need a dataset skip with the reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from humanoid_gpt import configure_process, settings

configure_process()  # before anything imports mujoco (headless rendering, MuJoCo warnings to logging)

from humanoid_gpt.robot import load_g1  # noqa: E402


@pytest.fixture(scope="session")
def g1():
    return load_g1()


def _data_dir(relative: str) -> Path:
    path = settings.data_root() / relative
    if not path.is_dir():
        pytest.skip(f"{path} missing: set HGPT_DATA_ROOT to a folder holding {relative}")
    return path


def _dataset(name: str) -> Path:
    return _data_dir(f"g1_motions/{name}")


@pytest.fixture(scope="session")
def lafan1_bvh_dir() -> Path:
    """Raw LAFAN1 BVH clips that pair frame for frame with Unitree's G1 retargeting."""
    return _data_dir("mocap/lafan1_bvh")


@pytest.fixture(scope="session")
def cmu_dir() -> Path:
    """CMU mocap subjects 02 and 03 (ASF skeletons, AMC motions)."""
    return _data_dir("mocap/cmu_asf_amc")


@pytest.fixture(scope="session")
def lafan1_dir() -> Path:
    return _dataset("lafan1")


@pytest.fixture(scope="session")
def g1_moves_dir() -> Path:
    return _dataset("g1_moves")


@pytest.fixture(scope="session")
def g1_moves_npz_dir() -> Path:
    return _dataset("g1_moves_npz")


def _policy_file(lab: str, name: str) -> Path:
    """A released policy of another lab in shared/data/policies/<lab>; the test skips where it is absent."""
    path = settings.data_root() / "policies" / lab / name
    if not path.is_file():
        pytest.skip(f"{path} missing: set HGPT_DATA_ROOT to a folder holding policies/{lab} (shared/data)")
    return path


@pytest.fixture(scope="session")
def twist2_file() -> Path:
    """TWIST2's released student, a real tracker of another lab."""
    return _policy_file("twist2", "twist2_1017_25k.onnx")


@pytest.fixture(scope="session")
def holosoma_file() -> Path:
    """holosoma's whole-body-tracking dance policy, with its reference motion inside."""
    return _policy_file("holosoma", "fastsac_g1_29dof_dancing.onnx")


@pytest.fixture(scope="session")
def walk_clip(lafan1_dir, g1):
    from humanoid_gpt.motion import load_clip

    return load_clip(lafan1_dir / "walk1_subject1.csv", g1=g1)


@pytest.fixture
def walk_manifest(tmp_path, monkeypatch, lafan1_dir):
    """A cluster manifest with one cluster (900) of one LAFAN1 walk clip, made active through the setting."""
    import json

    path = tmp_path / "clusters.json"
    path.write_text(json.dumps({"schema_version": 1, "clusters": {"900": ["g1_motions/lafan1/walk1_subject1.csv"]}}))
    monkeypatch.setenv("HGPT_CLUSTER_MANIFEST", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, lafan1_dir):
    """A built corpus (float32, 50 Hz, no warps, one split) of two short LAFAN1-G1 takes, one with a one-frame pop
    the filters trim around (two clips with ids ``lafan1/pop_subject1@<start>:<stop>``), and its clips exported as
    files (``store.export_clips``): ``(corpus folder, export folder)``. About 2 s."""
    import numpy as np

    from humanoid_gpt.catalog.store import export_clips
    from humanoid_gpt.governance.corpus import build_corpus
    from humanoid_gpt.governance.corpus_config import load_corpus_config
    from humanoid_gpt.robot import G1_JOINT_NAMES

    root = tmp_path_factory.mktemp("tiny_corpus")
    src = root / "src"
    src.mkdir()
    walk = np.loadtxt(lafan1_dir / "walk1_subject2.csv", delimiter=",", max_rows=150)
    np.savetxt(src / "walk1_subject2.csv", walk, delimiter=",", fmt="%.10g")
    pop = np.loadtxt(lafan1_dir / "walk1_subject1.csv", delimiter=",", max_rows=300)
    pop[150, 7 + G1_JOINT_NAMES.index("right_shoulder_pitch_joint")] += 1.5  # a mocap glitch: trimmed around
    np.savetxt(src / "pop_subject1.csv", pop, delimiter=",", fmt="%.10g")
    source = {"name": "lafan1", "path": str(src / "*.csv"), "format": "g1", "fps": 30, "licence": "CC BY-NC-ND 4.0"}
    config = {
        "name": "tiny",
        "output": str(root / "corpus"),
        "sources": [{**source, "performer": {"regex": r"(subject\d+)", "namespace": "lafan1"}}],
        "warps": {"factors": []},
        "splits": {"train": 1.0, "val": 0.0, "test": 0.0},
    }
    build_corpus(load_corpus_config(config), progress=False)
    export_clips(root / "corpus", root / "clips")
    return root / "corpus", root / "clips"


EXPERT_TRACKING_KW = dict(action_relative_to_reference=True)


@pytest.fixture(scope="session")
def untrained_experts(g1, walk_clip, tmp_path_factory):
    """Two expert checkpoints (untrained, initialized from different seeds) of the walk clip's task, with
    reference-relative actions and no randomization: stand-ins for the retained experts of two clusters."""
    import torch

    from humanoid_gpt.experts.ppo import expert_ppo_cfg
    from humanoid_gpt.experts.runner import ExpertRunner
    from humanoid_gpt.experts.train import run_meta
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
    from humanoid_gpt.motion.library import MotionLibrary
    from humanoid_gpt_mujoco.env import MujocoTrackingEnv

    tracking = TrackingConfig(randomization=RandomizationConfig.off(), **EXPERT_TRACKING_KW)
    folder = tmp_path_factory.mktemp("experts")
    library = MotionLibrary.from_clips([walk_clip.slice(0, 400)], g1, tracking.keypoints)
    env = MujocoTrackingEnv(g1, library, tracking, 4, 0, num_threads=1)
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        ppo = expert_ppo_cfg(seed=seed)
        runner = ExpertRunner(env, ppo, None, run_meta(f"HGPT-Cluster-90{seed}", env, g1, tracking, ppo))
        paths.append(folder / f"expert_{seed}.pt")
        runner.save(str(paths[-1]))
    env.close()
    return paths


@pytest.fixture(scope="session")
def registry_of():
    """``registry_of(experts, clusters)``: a registry retaining ``experts`` as the experts of ``clusters``."""
    from humanoid_gpt.experts.registry import ExpertRegistry, RetentionRule

    def make(experts, clusters=("a", "b")):
        registry = ExpertRegistry(rule=RetentionRule(min_sr_percent=0, min_mean_episode_s=0))
        good = {"sr_percent": 90.0, "mpkpe_mm": 40.0, "mpjpe": 0.05, "mean_episode_s": 9.0}
        for cluster, path in zip(clusters, experts, strict=False):
            registry.add(cluster, f"HGPT-Cluster-{cluster}", path, "hash", good)
        return registry

    return make


# Students, DAgger and export (tests/students_support.py has the plain helpers) ------------------------------------


@pytest.fixture(scope="session")
def walk_library(g1, walk_clip):
    from students_support import TRACKING

    from humanoid_gpt.motion.library import MotionLibrary

    return MotionLibrary.from_clips([walk_clip.slice(0, 400)], g1, TRACKING.keypoints)


@pytest.fixture(scope="session")
def real_tokens(g1, walk_library):
    """Student observations of 2 G1s falling about under zero actions for 40 steps, with an episode restart."""
    import torch
    from students_support import make_env

    env = make_env(g1, walk_library, num_envs=2)
    obs, tokens = env.get_observations(), []
    for _ in range(40):
        tokens.append(obs["student"])
        obs, *_ = env.step(torch.zeros(2, 29))
    env.close()
    return torch.stack(tokens, 1)


@pytest.fixture(scope="session")
def experts(untrained_experts):
    return untrained_experts


@pytest.fixture(scope="session")
def exported(g1, real_tokens, tmp_path_factory):
    """A GPT student's two ONNX graphs."""
    from students_support import export_tiny

    return export_tiny("gpt", g1, real_tokens, tmp_path_factory.mktemp("export"))[1]


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine a second OpenMP thread waiting for a busy core makes every
    small op of a small model ~100x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
