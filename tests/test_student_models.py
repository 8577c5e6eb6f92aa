"""Student models: the paper's sizes, causality, exact streaming, impossible configs refused."""

from __future__ import annotations

import pytest
import torch
from students_support import tiny

from humanoid_gpt.students import build_student, preset


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
