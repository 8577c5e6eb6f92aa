"""Students: model sizes, causality, streaming = windowed, teacher routing, DAgger learning, boundary masking, resume,
ONNX parity on real observations, and clear errors for wrong inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from humanoid_gpt.runs import CheckpointError
from humanoid_gpt.experts.registry import RegistryError
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.students import build_student, preset
from humanoid_gpt.students.checkpoint import load_student, student_meta
from humanoid_gpt.students.dagger import DaggerConfig, Rollout, distillation_loss, window_mask
from humanoid_gpt.students.teachers import TeacherPool
from humanoid_gpt.students.trainer import DaggerTrainer
from humanoid_gpt_sim2sim.env import MujocoTrackingEnv

TRACKING = TrackingConfig(action_relative_to_reference=True, randomization=RandomizationConfig.off())
TINY = {
    "gpt": dict(n_layer=2, n_head=2, n_embd=32),
    "mlp": dict(mlp_hidden=(32, 32)),
    "tcn": dict(tcn_channels=16, tcn_dilations=(1, 2, 4)),
}


def tiny(kind: str, context: int = 8):
    torch.manual_seed(0)
    return build_student(preset({"gpt": "gpt-s", "mlp": "mlp", "tcn": "tcn"}[kind], context=context, **TINY[kind]))


@pytest.fixture(scope="module")
def walk_library(g1, walk_clip):
    return MotionLibrary.from_clips([walk_clip.slice(0, 400)], g1, TRACKING.keypoints)


def make_env(g1, library, num_envs=4, seed=0):
    return MujocoTrackingEnv(g1, library, TRACKING, num_envs, seed, num_threads=1)


@pytest.fixture(scope="module")
def real_tokens(g1, walk_library):
    """Student observations of 2 G1s falling about under zero actions for 40 steps, with an episode restart."""
    env = make_env(g1, walk_library, num_envs=2)
    obs, tokens = env.get_observations(), []
    for _ in range(40):
        tokens.append(obs["student"])
        obs, *_ = env.step(torch.zeros(2, 29))
    env.close()
    return torch.stack(tokens, 1)


@pytest.fixture(scope="module")
def experts(untrained_experts):
    return untrained_experts


# Models ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "millions"), [("gpt-s", 5.7), ("gpt-b", 22.1), ("gpt-l", 80.4), ("mlp", 0.25), ("tcn", 0.65)]
)
def test_presets_have_the_papers_parameter_counts(name, millions):
    count = build_student(preset(name)).num_parameters() / 1e6
    assert abs(count - millions) / millions < 0.10, f"{name}: {count:.2f}M parameters, the paper's is {millions}M"


@pytest.mark.parametrize("kind", ["gpt", "mlp", "tcn"])
def test_a_future_token_never_changes_a_past_action(kind):
    model = tiny(kind).eval()
    tokens = torch.randn(2, 8, model.cfg.obs_dim)
    changed = tokens.clone()
    changed[:, 5] += 10.0
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :5], after[:, :5])
    assert (before[:, 5] - after[:, 5]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["gpt", "mlp", "tcn"])
def test_streaming_equals_the_window_recomputed_at_every_step(kind, real_tokens):
    """From the first step of an episode (fewer than H tokens) to well past H, and again after one env restarts."""
    model = tiny(kind)
    model.normalizer.train()
    model.normalizer.update(real_tokens.flatten(0, 1))
    model.eval()
    h, steps = model.cfg.context, real_tokens.shape[1]
    restart = 23  # env 1 starts a new episode here
    cache, count = model.initial_state(2)
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            if t == restart:
                model.reset_state(cache, count, torch.tensor([False, True]))
            action, cache, count = model.step(real_tokens[:, t], cache, count)
            for env, start in ((0, 0), (1, restart if t >= restart else 0)):
                window = real_tokens[env : env + 1, max(start, t - h + 1) : t + 1]
                worst = max(worst, float((model(window)[0, -1] - action[env]).abs().max()))
    assert worst < 1e-5


def test_gpt_s_streams_exactly_at_full_size(real_tokens):
    model = build_student(preset("gpt-s", context=16)).eval()
    cache, count = model.initial_state(2)
    with torch.no_grad():
        for t in range(24):
            action, cache, count = model.step(real_tokens[:, t], cache, count)
        windowed = model(real_tokens[:, 24 - 16 : 24])[:, -1]
    assert (action - windowed).abs().max() < 1e-5


def test_impossible_student_configs_are_refused():
    with pytest.raises(ValueError, match="receptive field"):
        preset("tcn", context=8)
    with pytest.raises(ValueError, match="heads"):
        preset("gpt-s", n_head=3)
    with pytest.raises(ValueError, match="unknown student preset"):
        preset("gpt-xl")
    with pytest.raises(ValueError, match="exceed the context"):
        tiny("gpt")(torch.zeros(1, 9, 136))


# DAgger ---------------------------------------------------------------------------------------------------------------


def test_windows_that_cross_an_episode_boundary_are_masked_not_mixed():
    first = torch.tensor([[True, False, False, False], [False, False, True, False], [False, True, False, True]])
    expected = torch.tensor([[True] * 4, [True, True, False, False], [True, False, False, False]])
    assert torch.equal(window_mask(first), expected)
    # Masked positions (the new episode's) do not count: changing their labels changes nothing.
    model = tiny("gpt", context=4)
    tokens, labels = torch.randn(3, 4, 136), torch.randn(3, 4, 29)
    noisy = labels.clone()
    noisy[~expected] += 100.0
    with torch.no_grad():
        a, counted = distillation_loss(model, Rollout(tokens, labels, first))
        b, _ = distillation_loss(model, Rollout(tokens, noisy, first))
    assert counted == int(expected.sum()) and torch.allclose(a, b)


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


@pytest.fixture(scope="module")
def make_trainer(g1, walk_library, experts, registry_of):
    """``make_trainer(run_dir, **dagger_settings)``: a DAgger trainer on 4 walk envs taught by two experts."""
    return lambda run_dir, **cfg: _trainer(g1, walk_library, experts, registry_of(experts), run_dir, **cfg)


def _trainer(g1, walk_library, experts, registry, tmp_path, **cfg):
    env = make_env(g1, walk_library, num_envs=4)
    obs = env.get_observations()
    teachers = TeacherPool(registry, ["a", "b"], TRACKING, int(obs["teacher"].shape[-1]), 29, g1)
    student = tiny("gpt", context=8)
    settings = dict(
        num_envs=4,
        steps_per_iteration=16,
        batch_windows=8,
        updates_per_iteration=4,
        warmup_updates=1,
        lr=1e-3,
        beta_iterations=1,
        save_interval=1,
    )
    dagger = DaggerConfig(**{**settings, **cfg})
    meta = {
        **student_meta(student.cfg, g1, TRACKING.to_dict()),
        "teachers": {"a": str(experts[0]), "b": str(experts[1])},
    }
    route = lambda: torch.arange(4) % 2  # noqa: E731
    return DaggerTrainer(env, student, teachers, route, dagger, meta, tmp_path / "run")


def test_a_dagger_iteration_reduces_the_loss_on_a_fixed_batch(make_trainer, g1, tmp_path):
    trainer = make_trainer(tmp_path)
    rollout, stats = trainer.collect()
    assert stats["teacher_action_share"] == 1.0  # beta starts at 1: the teacher drives
    batch = rollout.windows(8)
    with torch.no_grad():
        before, _ = distillation_loss(trainer.model, batch)
    trainer.buffer.add(batch)
    for _ in range(4):
        trainer.update(batch)
    with torch.no_grad():
        after, _ = distillation_loss(trainer.model, batch)
    assert after < 0.8 * before
    trainer.learn(1)  # a whole iteration: collects with beta < 1 and checkpoints
    assert (tmp_path / "run" / "student_1.pt").is_file()


def test_resume_restores_the_exact_training_state(make_trainer, g1, tmp_path):
    first = make_trainer(tmp_path)
    first.learn(2)
    ckpt = tmp_path / "run" / "student_2.pt"
    torch.manual_seed(99)
    second = make_trainer(tmp_path)
    assert second.resume(ckpt) == 2
    for a, b in zip(first.student.state_dict().values(), second.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(first.buffer.all().tokens, second.buffer.all().tokens)
    batch_a = first.buffer.sample(8, first.generator)
    batch_b = second.buffer.sample(8, second.generator)
    assert torch.equal(batch_a.tokens, batch_b.tokens)
    assert first.update(batch_a) == second.update(batch_b)
    assert torch.equal(next(first.student.parameters()), next(second.student.parameters()))
    # A resume into other settings is refused before any step.
    other = make_trainer(tmp_path, lr=5e-4)
    with pytest.raises(CheckpointError, match="lr"):
        other.resume(ckpt)


# Bad input ------------------------------------------------------------------------------------------------------------


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


def test_student_checkpoints_with_the_wrong_h_or_content_are_refused(make_trainer, g1, tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.save(tmp_path / "s.pt")
    model, meta = load_student(tmp_path / "s.pt", g1, context=8)
    assert meta["student"]["context"] == 8 and meta["joint_names"] == list(g1.joint_names)
    with pytest.raises(CheckpointError, match="H=8, not H=32"):
        load_student(tmp_path / "s.pt", g1, context=32)
    (tmp_path / "bad.pt").write_bytes((tmp_path / "s.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_student(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a humanoid_gpt student"):
        load_student(tmp_path / "foreign.pt")


# Export ---------------------------------------------------------------------------------------------------------------


def export_tiny(kind: str, g1, real_tokens, folder):
    """A tiny student (normalizer fitted on real observations), saved as a checkpoint and exported to ONNX."""
    from humanoid_gpt.deploy.onnx import export_onnx
    from humanoid_gpt.runs import save_checkpoint

    model = tiny(kind, context=16 if kind == "tcn" else 8)
    model.normalizer.train()
    model.normalizer.update(real_tokens.flatten(0, 1))
    payload = {"meta": student_meta(model.cfg, g1, TRACKING.to_dict()), "model": model.eval().state_dict()}
    save_checkpoint(folder / "s.pt", payload)
    return model, export_onnx(folder / "s.pt", folder, g1)


@pytest.mark.parametrize("kind", ["gpt", "tcn", "mlp"])
def test_onnx_exports_match_pytorch_on_real_observations(kind, g1, real_tokens, tmp_path):
    import onnxruntime as ort

    from humanoid_gpt.deploy.onnx import read_onnx_metadata

    model, paths = export_tiny(kind, g1, real_tokens, tmp_path)
    meta = read_onnx_metadata(paths["streaming"])
    assert meta["joint_names"] == list(g1.joint_names) and meta["context"] == model.cfg.context
    assert np.allclose(meta["kp"], g1.kp) and np.allclose(meta["default_joint_pos"], g1.default_joint_pos)
    assert meta["control_dt"] == 0.02 and meta["action_relative_to_reference"] is True
    assert [tuple(p) for p in meta["obs_layout"]][0] == ("base_ang_vel", 3)
    stream = ort.InferenceSession(str(paths["streaming"]), providers=["CPUExecutionProvider"])
    window = ort.InferenceSession(str(paths["windowed"]), providers=["CPUExecutionProvider"])
    cache, count = model.initial_state(2)
    ort_cache, ort_count = cache.numpy(), count.numpy()
    worst = 0.0
    with torch.no_grad():
        for t in range(real_tokens.shape[1]):
            action, cache, count = model.step(real_tokens[:, t], cache, count)
            feeds = {"obs": real_tokens[:, t].numpy(), "cache": ort_cache, "count": ort_count}
            ort_action, ort_cache, ort_count = stream.run(None, feeds)
            tokens = real_tokens[:, max(0, t - model.cfg.context + 1) : t + 1].numpy()
            (windowed,) = window.run(None, {"tokens": tokens})
            worst = max(worst, np.abs(ort_action - action.numpy()).max(), np.abs(windowed - action.numpy()).max())
    assert worst < 1e-5


@pytest.fixture(scope="module")
def exported(g1, real_tokens, tmp_path_factory):
    """A GPT student's two ONNX graphs."""
    return export_tiny("gpt", g1, real_tokens, tmp_path_factory.mktemp("export"))[1]


def test_the_harness_runs_a_student_in_torch_and_onnx_runtime_alike(g1, walk_clip, exported):
    from humanoid_gpt.deploy.onnx import OnnxMetadataError
    from humanoid_gpt.deploy.policies import make_policy
    from humanoid_gpt_sim2sim.evaluate import evaluate

    clips = [walk_clip.slice(0, 120), walk_clip.slice(300, 420)]
    checkpoint = exported["streaming"].parent / "s.pt"
    runs = {
        str(spec): evaluate(g1, clips, lambda env, spec=spec: make_policy(str(spec), env), TRACKING, progress=False)
        for spec in (checkpoint, exported["streaming"])
    }
    torch_run, onnx_run = runs.values()
    assert torch_run["aggregate"]["episodes"] == 2
    for key in ("sr_percent", "mean_episode_steps", "mpjpe", "mpkpe_mm"):
        assert torch_run["aggregate"][key] == pytest.approx(onnx_run["aggregate"][key], rel=1e-4, abs=1e-6), key
    with pytest.raises(OnnxMetadataError, match="windowed graph"):
        evaluate(g1, clips, lambda env: make_policy(str(exported["windowed"]), env), TRACKING, progress=False)


def test_tensorrt_engines_build_from_the_streaming_onnx(exported, tmp_path):
    import json

    from humanoid_gpt.deploy.tensorrt import build_engine
    from humanoid_gpt.errors import HGPTError

    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(HGPTError, match="needs the `tensorrt` Python package and an NVIDIA GPU"):
            build_engine(exported["streaming"], tmp_path / "s.engine")
        pytest.skip("tensorrt is not installed (it needs an NVIDIA GPU): checked the error, skipped the build")
    engine = build_engine(exported["streaming"], tmp_path / "s.engine", max_batch=16)
    assert engine.stat().st_size > 0
    assert json.loads((tmp_path / "s.engine.json").read_text())["joint_names"][0] == "left_hip_pitch_joint"


def test_onnx_files_without_our_metadata_are_refused(tmp_path):
    from humanoid_gpt.deploy.onnx import OnnxMetadataError, read_onnx_metadata

    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(path), dynamo=False)
    with pytest.raises(OnnxMetadataError, match="no humanoid_gpt metadata"):
        read_onnx_metadata(path)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(OnnxMetadataError, match="not a readable ONNX"):
        read_onnx_metadata(tmp_path / "junk.onnx")


# Multi-process training -----------------------------------------------------------------------------------------------


class _NoEnv:
    """The update step never touches the env; DDP is tested on fixed batches."""

    num_envs = 1

    def get_observations(self):
        return {}


def _global_batch() -> tuple[Rollout, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    tokens, labels = torch.randn(8, 8, 136, generator=g), torch.randn(8, 8, 29, generator=g)
    return Rollout(tokens, labels, torch.zeros(8, 8, dtype=torch.bool)), tokens.flatten(0, 1)


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    cfg = DaggerConfig(num_envs=1, steps_per_iteration=8, warmup_updates=1)
    trainer = DaggerTrainer(_NoEnv(), tiny("gpt"), None, None, cfg, {})
    batch, tokens = _global_batch()
    half = slice(4 * rank, 4 * rank + 4)
    trainer.student.normalizer.train()
    trainer.student.normalizer.update(tokens.view(8, 8, 136)[half].flatten(0, 1))  # statistics all-reduced
    trainer.update(Rollout(batch.tokens[half], batch.labels[half], batch.first[half]))
    torch.save(trainer.student.state_dict(), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_distributed_training_with_gloo_matches_one_process_on_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    cfg = DaggerConfig(num_envs=1, steps_per_iteration=8, warmup_updates=1)
    single = DaggerTrainer(_NoEnv(), tiny("gpt"), None, None, cfg, {})
    batch, tokens = _global_batch()
    single.student.normalizer.train()
    single.student.normalizer.update(tokens)
    single.update(batch)
    for name, value in single.student.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), f"ranks disagree on {name}"
        assert torch.allclose(ranks[0][name], value, atol=1e-5), f"{name} differs from one process on the whole batch"
