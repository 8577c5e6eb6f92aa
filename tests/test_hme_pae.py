"""The Periodic Autoencoder: the FFT parameters of a known curve, a tiny PAE recovering the frequency and amplitude
of synthetic sinusoids, and checkpoints that resume exactly or refuse foreign runs."""

import math

import numpy as np
import pytest
import torch

from humanoid_gpt.hme.config import PAEConfig
from humanoid_gpt.hme.features import FEATURE_DIM, gather_windows, window_starts
from humanoid_gpt.hme.pae import fft_params, finished_checkpoint, load_pae, pae_meta, train_pae
from humanoid_gpt.runs import CheckpointError

TINY = dict(channels=1, width=16, kernel=5, batch_size=64, lr=3e-3, hop=5, min_steps=0)
SMALL = {**TINY, "width": 32, "kernel": 9}


def test_fft_params_of_a_pure_sinusoid():
    n, dt = 41, 0.1
    t = torch.arange(n, dtype=torch.float64) * dt
    # On a frequency bin the three are exact; between bins leakage blurs them a little (the offset most: a
    # fraction of a cycle left over moves the window mean).
    for f, a, b, off_tol in ((5 / (n * dt), 0.7, 0.3, 1e-9), (1.37, 1.5, -0.2, 0.1)):
        curve = a * torch.sin(2 * math.pi * f * t + 0.4) + b
        freq, amp, offset = fft_params(curve[None, None], dt)
        assert freq.item() == pytest.approx(f, abs=0.08)
        assert amp.item() == pytest.approx(a, rel=0.06)
        assert offset.item() == pytest.approx(b, abs=off_tol)


def _sinusoid_clips(rng, count: int, seconds: float = 6.0, rate: float = 50.0):
    """``count`` synthetic 74-channel clips, each one sinusoid (its own frequency and amplitude) mixed into every
    channel with fixed weights and phases (the same for every call): a PAE's latent should oscillate at the clip's
    frequency."""
    mixing = np.random.default_rng(1234)
    weights = mixing.uniform(0.5, 1.5, FEATURE_DIM)
    phases = mixing.uniform(0, 2 * np.pi, FEATURE_DIM)
    t = np.arange(int(seconds * rate)) / rate
    freqs = rng.uniform(0.6, 2.2, count)
    amps = rng.uniform(0.3, 2.0, count)
    clips = [
        (a * weights * np.sin(2 * np.pi * f * t[:, None] + phases)).astype(np.float32)
        for f, a in zip(freqs, amps, strict=True)
    ]
    return clips, freqs, amps


def _stack(clips, cfg):
    feats, starts, offset = [], [], 0
    for c in clips:
        starts.append(window_starts(len(c), cfg) + offset)
        feats.append(c)
        offset += len(c)
    return torch.from_numpy(np.concatenate(feats)), torch.from_numpy(np.concatenate(starts))


def test_a_pae_recovers_frequency_and_amplitude_of_sinusoids(tmp_path):
    torch.set_num_threads(1)
    cfg = PAEConfig(epochs=5, **SMALL)
    rng = np.random.default_rng(0)
    clips, _, _ = _sinusoid_clips(rng, 60)
    feats, starts = _stack(clips, cfg)
    path = train_pae(feats, starts, cfg, tmp_path / "pae", pae_meta(cfg, "synthetic", [], 0), seed=0, progress=False)
    model, meta = load_pae(path, cfg)
    assert meta["losses"][-1] < 0.5 * meta["losses"][0]

    test, freqs, amps = _sinusoid_clips(np.random.default_rng(1), 12)  # same mixing (seeded), new clips
    got_f, got_a, errors = [], [], []
    for clip in test:
        x = gather_windows(torch.from_numpy(clip), torch.from_numpy(window_starts(len(clip), cfg)), cfg)
        with torch.inference_mode():
            p = model.params(x)
            target = model.normalize(x)
            errors.append(((model(x)[0] - target).square().mean().item(), target.var(-1, unbiased=False).mean().item()))
        got_f.append(p["freq"][:, 0].mean().item())
        got_a.append(p["amp"][:, 0].mean().item())
    got_f, got_a = np.array(got_f), np.array(got_a)
    pae, window_mean = np.mean(errors, axis=0)
    assert pae < 0.5 * window_mean, (pae, window_mean)  # it reconstructs the motion, not just its level
    assert np.abs(got_f - freqs).mean() < 0.15, (got_f, freqs)  # Hz
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(got_a), rank(amps))[0, 1] > 0.9, (got_a, amps)  # amplitude in latent units, monotone


def _train(tmp_path, folder, epochs, seed=0, min_steps=0):
    cfg = PAEConfig(epochs=epochs, **{**TINY, "min_steps": min_steps})
    clips, _, _ = _sinusoid_clips(np.random.default_rng(3), 12)
    feats, starts = _stack(clips, cfg)
    meta = pae_meta(cfg, "synthetic", ["abc"], seed)
    return train_pae(feats, starts, cfg, tmp_path / folder, meta, seed=seed, progress=False), feats, starts, cfg


def test_checkpoints_resume_exactly_and_refuse_other_runs(tmp_path):
    torch.set_num_threads(1)
    straight, *_ = _train(tmp_path, "straight", epochs=2)
    assert straight.name == "pae_2.pt"
    first, *_ = _train(tmp_path, "resumed", epochs=1)  # an interrupted run, continued with all its epochs
    resumed, *_ = _train(tmp_path, "resumed", epochs=2)
    assert first.name == "pae_1.pt" and resumed.name == "pae_2.pt"
    a, b = torch.load(straight, weights_only=False), torch.load(resumed, weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["losses"] == b["losses"]
    assert not [p for p in (tmp_path / "resumed").iterdir() if p.name.endswith(".part")]
    again, *_ = _train(tmp_path, "resumed", epochs=2)  # complete: reused, not retrained
    assert again == resumed and torch.load(again, weights_only=False)["epoch"] == 2

    with pytest.raises(CheckpointError, match="other data or settings"):
        _train(tmp_path, "resumed", epochs=3, seed=7)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "pae_1.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_pae(tmp_path / "junk" / "pae_1.pt")


def test_a_small_partition_trains_until_min_steps(tmp_path):
    torch.set_num_threads(1)
    path, _, starts, cfg = _train(tmp_path, "small", epochs=1)
    per_epoch = len(starts) // cfg.batch_size
    assert torch.load(path, weights_only=False)["steps"] == per_epoch
    # A larger step budget continues the finished run (the budget is not part of its identity) to whole epochs.
    path, _, _, cfg = _train(tmp_path, "small", epochs=1, min_steps=2 * per_epoch + 1)
    saved = torch.load(path, weights_only=False)
    assert path.name == "pae_3.pt" and saved["epoch"] == 3 and saved["steps"] == 3 * per_epoch
    assert finished_checkpoint(tmp_path / "small", saved["hgpt.hme.pae"], cfg) == path
    more = PAEConfig(**{**TINY, "epochs": 1, "min_steps": 4 * per_epoch})
    assert finished_checkpoint(tmp_path / "small", saved["hgpt.hme.pae"], more) is None
