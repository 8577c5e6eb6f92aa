"""Parallel DAgger: boundary masking, learning, exact resume, checkpoint checks, torch.distributed."""

from __future__ import annotations

import pytest
import torch
from students_support import dagger_runner, tiny

from humanoid_gpt.runs import CheckpointError
from humanoid_gpt.students.base import window_mask
from humanoid_gpt.students.checkpoint import load_student
from humanoid_gpt.students.dagger import Dagger, DaggerConfig, distillation_loss
from humanoid_gpt.students.storage import Rollout


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


@pytest.fixture(scope="module")
def make_runner(g1, walk_library, experts, registry_of):
    """``make_runner(run_dir, **dagger_settings)``: a DAgger runner on 4 walk envs taught by two experts."""
    return lambda run_dir, **cfg: dagger_runner(
        g1, walk_library, experts, registry_of(experts), run_dir, tiny("gpt", context=8), **cfg
    )


def test_a_dagger_iteration_reduces_the_loss_on_a_fixed_batch(make_runner, g1, tmp_path):
    runner = make_runner(tmp_path)
    rollout, stats = runner.collect()
    assert stats["teacher_action_share"] == 1.0  # beta starts at 1: the teacher drives
    batch = rollout.windows(8)
    with torch.no_grad():
        before, _ = distillation_loss(runner.alg.model, batch)
    runner.alg.buffer.add(batch)
    for _ in range(4):
        runner.alg.gradient_step(batch)
    with torch.no_grad():
        after, _ = distillation_loss(runner.alg.model, batch)
    assert after < 0.8 * before
    runner.learn(1)  # a whole iteration: collects with beta < 1 and checkpoints
    assert (tmp_path / "run" / "student_1.pt").is_file()


def test_resume_restores_the_exact_training_state(make_runner, g1, tmp_path):
    first = make_runner(tmp_path)
    first.learn(2)
    ckpt = tmp_path / "run" / "student_2.pt"
    torch.manual_seed(99)
    second = make_runner(tmp_path)
    assert second.resume(ckpt) == 2
    for a, b in zip(first.alg.student.state_dict().values(), second.alg.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(first.alg.buffer.all().tokens, second.alg.buffer.all().tokens)
    batch_a = first.alg.buffer.sample(8, first.alg.generator)
    batch_b = second.alg.buffer.sample(8, second.alg.generator)
    assert torch.equal(batch_a.tokens, batch_b.tokens)
    assert first.alg.gradient_step(batch_a) == second.alg.gradient_step(batch_b)
    assert torch.equal(next(first.alg.student.parameters()), next(second.alg.student.parameters()))
    # A resume into other settings is refused before any step.
    other = make_runner(tmp_path, lr=5e-4)
    with pytest.raises(CheckpointError, match="lr"):
        other.resume(ckpt)


def test_an_interrupted_distillation_resumed_equals_the_uninterrupted_one(make_runner, tmp_path):
    """Student, optimizer, dataset, RNG and the episodes in flight (envs and the student's streaming caches) are in
    the checkpoint: stopping after iteration 2 and resuming changes nothing."""
    whole = make_runner(tmp_path / "whole", max_iterations=4)
    whole.learn()
    part = make_runner(tmp_path / "part", max_iterations=4)
    part.learn(2)  # killed after iteration 2
    resumed = make_runner(tmp_path / "part", max_iterations=4)
    assert resumed.resume(tmp_path / "part" / "run" / "student_2.pt") == 2
    resumed.learn()
    for a, b in zip(whole.alg.student.state_dict().values(), resumed.alg.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# Bad input ------------------------------------------------------------------------------------------------------------


def test_student_checkpoints_with_the_wrong_h_or_content_are_refused(make_runner, g1, tmp_path):
    runner = make_runner(tmp_path)
    runner.save(tmp_path / "s.pt")
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


# Multi-process training -----------------------------------------------------------------------------------------------


def _global_batch() -> tuple[Rollout, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    tokens, labels = torch.randn(8, 8, 136, generator=g), torch.randn(8, 8, 29, generator=g)
    return Rollout(tokens, labels, torch.zeros(8, 8, dtype=torch.bool)), tokens.flatten(0, 1)


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    cfg = DaggerConfig(num_envs=1, steps_per_iteration=8, warmup_updates=1)
    alg = Dagger(tiny("gpt"), None, cfg)  # the algorithm alone: DDP is tested on fixed batches, without an env
    batch, tokens = _global_batch()
    half = slice(4 * rank, 4 * rank + 4)
    alg.student.normalizer.train()
    alg.student.normalizer.update(tokens.view(8, 8, 136)[half].flatten(0, 1))  # statistics all-reduced
    alg.gradient_step(Rollout(batch.tokens[half], batch.labels[half], batch.first[half]))
    torch.save(alg.student.state_dict(), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_distributed_training_with_gloo_matches_one_process_on_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    cfg = DaggerConfig(num_envs=1, steps_per_iteration=8, warmup_updates=1)
    single = Dagger(tiny("gpt"), None, cfg)
    batch, tokens = _global_batch()
    single.student.normalizer.train()
    single.student.normalizer.update(tokens)
    single.gradient_step(batch)
    for name, value in single.student.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), f"ranks disagree on {name}"
        assert torch.allclose(ranks[0][name], value, atol=1e-5), f"{name} differs from one process on the whole batch"


def test_a_balance_temperature_outside_0_1_is_refused():
    from humanoid_gpt.errors import ConfigError
    from humanoid_gpt.students.dagger import DaggerConfig

    DaggerConfig(balance_temperature=0.5).validate(16)
    with pytest.raises(ConfigError, match="--balance-temperature 1.5 must be within"):
        DaggerConfig(balance_temperature=1.5).validate(16)
