"""The banded key/value-cache GPT (``gpt-kv``): its cached step equals the training computation at every step of an
episode, DAgger supervises exactly the positions that equal it, and its ring-buffer ONNX export streams the same
actions in ONNX Runtime and in the harness, quantized or not."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from students_support import TRACKING, dagger_runner, export_tiny_kv, tiny, tiny_kv

from humanoid_gpt.students import build_student, preset
from humanoid_gpt.students.dagger import distillation_loss
from humanoid_gpt.students.storage import with_history

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fitted(model, real_tokens):
    model.normalizer.train()
    model.normalizer.update(real_tokens.flatten(0, 1))
    return model.eval()


def _streams(real_tokens, steps: int = 150, restarts=((1, 23), (1, 90), (2, 57))):
    """3 envs of ``steps`` real observations (the fixture's, repeated with a little noise) and their episode starts:
    every env starts at 0; env 1 restarts at 23 and 90 (mid-ring), env 2 at 57."""
    g = torch.Generator().manual_seed(3)
    base = real_tokens.repeat(2, (steps + 39) // 40, 1)[:3, :steps]
    tokens = base + 0.05 * torch.randn(base.shape, generator=g) * base.std(dim=(0, 1))
    first = torch.zeros(3, steps, dtype=torch.bool)
    first[:, 0] = True
    for env, t in restarts:
        if t < steps:
            first[env, t] = True
    return tokens, first


def _stream(model, tokens, first) -> torch.Tensor:
    """The streaming step over a batch of streams, resetting envs at their episode starts: actions (B, T, A)."""
    cache, count = model.initial_state(tokens.shape[0])
    actions = []
    with torch.no_grad():
        for t in range(tokens.shape[1]):
            if t > 0:
                model.reset_state(cache, count, first[:, t])
            action, cache, count = model.step(tokens[:, t], cache, count)
            actions.append(action)
    return torch.stack(actions, 1)


def _episode_start(first: torch.Tensor, env: int, t: int) -> int:
    return int(first[env, : t + 1].nonzero().max())


def test_the_cached_step_equals_the_training_computation_at_every_step(real_tokens):
    """From each episode's first token, past the ring's first lap and the receptive field, and across mid-episode
    resets of some envs: the step equals forward over the whole stream (with its episode starts, as DAgger trains)
    and forward over the episode's last R tokens (the windowed export)."""
    model = _fitted(tiny_kv(), real_tokens)
    tokens, first = _streams(real_tokens)
    streamed = _stream(model, tokens, first)
    reach = model.cfg.kv_receptive_field
    with torch.no_grad():
        trained = model(tokens, first)
        assert (streamed - trained).abs().max() < 1e-5
        worst = 0.0
        for env in range(3):
            for t in range(0, tokens.shape[1], 7):
                start = max(_episode_start(first, env, t), t - reach + 1)
                windowed = model(tokens[env : env + 1, start : t + 1])[0, -1]
                worst = max(worst, float((windowed - streamed[env, t]).abs().max()))
    assert worst < 1e-5
    assert streamed.abs().max() > 0.1  # not trivially zero


def test_gpt_s_kv_streams_exactly_at_full_size(real_tokens):
    model = _fitted(build_student(preset("gpt-s-kv")), real_tokens)
    tokens, first = _streams(real_tokens, steps=130, restarts=((1, 70),))
    tokens, first = tokens[:2], first[:2]
    assert model.cfg.kv_receptive_field == 106 and model.cache_shape() == (7, 2, 8, 16, 32)
    with torch.no_grad():
        assert (_stream(model, tokens, first) - model(tokens, first)).abs().max() < 1e-5


def test_an_action_depends_on_exactly_its_receptive_field_and_no_future_token():
    model = tiny_kv().eval()
    reach, t = model.cfg.kv_receptive_field, 20
    tokens = torch.randn(1, 24, model.cfg.obs_dim)
    with torch.no_grad():
        before = model(tokens)
        for offset, changes in ((reach, False), (reach - 1, True)):
            changed = tokens.clone()
            changed[:, t - offset] += 10.0
            moved = float((model(changed)[0, t] - before[0, t]).abs().max())
            # Masked keys get an attention weight of exactly 0: a token out of reach changes nothing, bit for bit.
            assert (moved > 0.0) == changes, f"token t-{offset} moved action t by {moved}"
        changed = tokens.clone()
        changed[:, t + 1] += 10.0
        assert torch.equal(model(changed)[0, : t + 1], before[0, : t + 1])


def test_dagger_windows_supervise_every_token_once_with_its_streaming_action(real_tokens):
    """Rollouts cut as DAgger cuts them (each window carries the R - 1 tokens before it, continued across
    rollouts): every supervised position computes the streamed action exactly, and every token of the stream is
    supervised exactly once."""
    model = _fitted(tiny_kv(context=8), real_tokens)
    tokens, first = _streams(real_tokens, steps=48)
    streamed = _stream(model, tokens, first)
    overlap, per_rollout = model.training_overlap(), 16
    assert overlap == model.cfg.kv_receptive_field - 1 == 6
    times_supervised = torch.zeros(3, 48, dtype=torch.long)
    history = None
    from humanoid_gpt.students.storage import Rollout

    for k in range(3):
        part = slice(k * per_rollout, (k + 1) * per_rollout)
        rollout = Rollout(tokens[:, part], torch.zeros(3, per_rollout, 29), first[:, part])
        joined = with_history(rollout, history, overlap)
        history = joined.last(overlap)
        windows = joined.windows(8, overlap)
        assert windows.tokens.shape == (3 * per_rollout // 8, 8 + overlap, 136)
        mask = model.loss_mask(windows.first)
        with torch.no_grad():
            actions = model(windows.tokens, windows.first)
        per_env = per_rollout // 8
        for w in range(windows.tokens.shape[0]):
            env, j = divmod(w, per_env)
            for p in mask[w].nonzero().flatten().tolist():
                time = k * per_rollout - overlap + 8 * j + p
                times_supervised[env, time] += 1
                assert (actions[w, p] - streamed[env, time]).abs().max() < 1e-5
    assert torch.equal(times_supervised, torch.ones_like(times_supervised))


def test_the_loss_mask_counts_exact_positions_only():
    model = tiny_kv(context=8)  # R = 7, windows of 6 + 8 tokens
    first = torch.zeros(3, 14, dtype=torch.bool)
    first[1, 0] = True  # an episode starts at the window's first token
    first[2, 9] = True  # one starts inside the supervised part
    mask = model.loss_mask(first)
    assert mask[:, :6].sum() == 0 and mask[:, 6:].all()
    short = model.loss_mask(torch.zeros(2, 8, dtype=torch.bool))  # a window without burn-in: exact from R - 1 on
    assert torch.equal(short[0], torch.arange(8) >= 6)
    # Window students keep their own rule (positions after a later episode start are dropped).
    assert tiny("gpt", context=4).loss_mask(torch.tensor([[False, False, True, False]])).tolist() == [
        [True, True, False, False]
    ]


def test_other_kinds_keep_their_checkpoint_config():
    assert "attn_window" not in preset("gpt-s").to_dict()
    assert preset("gpt-s-kv").to_dict()["attn_window"] == 16
    with pytest.raises(ValueError, match="attn_window"):
        preset("gpt-s-kv", attn_window=0)


# DAgger ---------------------------------------------------------------------------------------------------------------


def _kv_runner(g1, walk_library, experts, registry, folder, **cfg):
    return dagger_runner(g1, walk_library, experts, registry, folder, tiny_kv(context=8), **cfg)


def test_dagger_trains_the_kv_student_and_resumes_it_exactly(g1, walk_library, experts, registry_of, tmp_path):
    make = lambda folder: _kv_runner(g1, walk_library, experts, registry_of(experts), folder, max_iterations=3)  # noqa: E731
    whole = make(tmp_path / "whole")
    rollout, _ = whole.collect()
    batch = whole.alg.training_windows(rollout)
    assert batch.tokens.shape == (8, 6 + 8, 136) and whole.alg.history.tokens.shape == (4, 6, 136)
    whole.alg.history = None  # undo: the run below starts from scratch
    whole._reset_streams()
    with torch.no_grad():
        before, counted = distillation_loss(whole.alg.model, batch)
    assert counted == 8 * 8  # every supervised token of the first rollout counts
    for _ in range(4):
        whole.alg.gradient_step(batch)
    with torch.no_grad():
        assert distillation_loss(whole.alg.model, batch)[0] < 0.8 * before
    whole = make(tmp_path / "whole")
    whole.learn()
    part = make(tmp_path / "part")
    part.learn(1)
    resumed = make(tmp_path / "part")
    assert resumed.resume(tmp_path / "part" / "run" / "student_1.pt") == 1
    assert resumed.alg.history is not None and torch.equal(resumed.alg.history.tokens, part.alg.history.tokens)
    resumed.learn()
    for a, b in zip(whole.alg.student.state_dict().values(), resumed.alg.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# Export ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kv_export(g1, real_tokens, tmp_path_factory):
    return export_tiny_kv(g1, real_tokens, tmp_path_factory.mktemp("kv_export"))


def test_the_ring_onnx_streams_the_pytorch_actions_over_an_episode(kv_export, real_tokens):
    from humanoid_gpt.deploy.onnx import read_onnx_metadata
    from humanoid_gpt.deploy.runtime import OnnxStream, ort_session

    model, paths = kv_export
    meta = read_onnx_metadata(paths["streaming"])
    assert meta["cache_update"] == "ring" and meta["format_version"] == 2 and meta["model"] == "gpt-kv"
    assert meta["attn_window"] == 4 and meta["receptive_field"] == 7 and meta["cache_shape"] == [2, 2, 2, 4, 16]
    assert read_onnx_metadata(paths["windowed"])["format_version"] == 1
    tokens, first = _streams(real_tokens, steps=60)
    expected = _stream(model, tokens, first)
    stream = OnnxStream(paths["streaming"], batch=3)
    window = ort_session(paths["windowed"])
    worst = 0.0
    for t in range(tokens.shape[1]):
        if t > 0:
            stream.reset(first[:, t].numpy())
        action = stream.step(tokens[:, t].numpy())
        worst = max(worst, float(np.abs(action - expected[:, t].numpy()).max()))
        for env in range(3):
            start = max(_episode_start(first, env, t), t - meta["receptive_field"] + 1)
            (windowed,) = window.run(None, {"tokens": tokens[env : env + 1, start : t + 1].numpy()})
            worst = max(worst, float(np.abs(windowed[0] - expected[env, t].numpy()).max()))
    assert worst < 1e-5


def test_the_harness_runs_the_kv_student_in_torch_onnx_and_int8(g1, walk_clip, kv_export, real_tokens):
    from humanoid_gpt.deploy.policies import make_policy
    from humanoid_gpt.deploy.quantize import action_error, quantize_onnx
    from humanoid_gpt_mujoco.evaluate import evaluate

    model, paths = kv_export
    int8 = quantize_onnx(paths["streaming"], "int8-dynamic")
    tokens = real_tokens.numpy()
    worst, mean = action_error(paths["streaming"], int8, tokens)
    scale = float(np.abs(model(real_tokens).detach().numpy()).mean())
    assert mean < 0.05 * scale and worst < 0.5 * scale, (worst, mean, scale)
    # Unsigned weights (u8u8): exact integer products whatever the CPU, so the bound above holds on AVX2-only x86
    # too, where ONNX Runtime's signed-weight (u8s8) kernels saturate (mean 0.077 x scale, worst 1.07 x scale).
    assert not any(t.data_type == onnx.TensorProto.INT8 for t in onnx.load(str(int8)).graph.initializer)
    clips = [walk_clip.slice(0, 120), walk_clip.slice(300, 420)]
    checkpoint = paths["streaming"].parent / "s.pt"
    runs = {
        str(spec): evaluate(g1, clips, lambda env, spec=spec: make_policy(str(spec), env), TRACKING, progress=False)
        for spec in (checkpoint, paths["streaming"], int8)
    }
    torch_run, onnx_run, int8_run = runs.values()
    assert torch_run["aggregate"]["episodes"] == 2 == int8_run["aggregate"]["episodes"]
    for key in ("sr_percent", "mean_episode_steps", "mpjpe", "mpkpe_mm"):
        assert torch_run["aggregate"][key] == pytest.approx(onnx_run["aggregate"][key], rel=1e-4, abs=1e-6), key
    assert np.isfinite(int8_run["aggregate"]["mpjpe"])
