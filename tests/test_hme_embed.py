"""HME features and embeddings: the documented feature layout of a real clip, clear errors for NaN features and
clips shorter than a window, embeddings deterministic under a seed, and incremental re-embedding."""

import math

import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.hme.config import HMEConfig, HMEError, PAEConfig
from humanoid_gpt.hme.embed import read_embeddings
from humanoid_gpt.hme.features import FEATURE_DIM, FEATURE_NAMES, check_features, frame_features, segment_clip
from humanoid_gpt.hme.pipeline import embed, fit
from humanoid_gpt.motion import save_clip


def test_features_of_a_real_clip_have_the_documented_size_and_ignore_position_and_heading(walk_clip):
    clip = walk_clip.slice(0, 300)  # 10 s at 30 fps
    feats = frame_features(clip, 50.0)
    assert FEATURE_DIM == len(FEATURE_NAMES) == 74 == 36 + 35 + 3
    assert feats.shape == (int(math.floor(clip.duration * 50 + 1e-9)) + 1, 74) and feats.dtype == np.float32
    assert 0.6 < feats[:, FEATURE_NAMES.index("root_height")].mean() < 0.9
    # The same motion elsewhere on the floor, facing another way, has the same features.
    yaw = torch.tensor([math.cos(0.6), 0.0, 0.0, math.sin(0.6)], dtype=torch.float64).expand(clip.num_frames, 4)
    moved = clip.replace(
        root_pos=R.quat_apply(yaw, torch.from_numpy(clip.root_pos)).numpy() + [4.0, -2.0, 0.0],
        root_quat=R.quat_mul(yaw, torch.from_numpy(clip.root_quat)).numpy(),
    )
    np.testing.assert_allclose(frame_features(moved, 50.0), feats, atol=2e-4)


def test_nan_features_name_the_clip_and_the_fix(walk_clip):
    clip = walk_clip.slice(0, 300).replace(name="broken_walk")
    clip.joint_pos[40, 3] = np.nan
    with pytest.raises(
        HMEError, match=r"clip 'broken_walk': non-finite joint_pos \(left_knee_joint\) at frame 40 .*Fix"
    ):
        frame_features(clip, 50.0)
    feats = frame_features(walk_clip.slice(0, 300), 50.0)
    feats[7, FEATURE_NAMES.index("root_height")] = np.inf
    with pytest.raises(HMEError, match=r"clip 'walk': non-finite HME feature root_height at frame 7 .*Fix"):
        check_features(feats, "walk")


def _corpus(root, walk_clip, clips=((0, 360), (900, 1260), (1800, 2160))):
    """A tiny data root: 12-s pieces of the LAFAN1 walk saved as clip NPZs under g1_motions/tiny."""
    folder = root / "g1_motions" / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(clips):
        save_clip(walk_clip.slice(a, b).replace(name=f"walk{i + 1}_subject1"), folder / f"walk{i + 1}_subject1.npz")
    return folder


def _config(root, out, seed=0, **kw) -> HMEConfig:
    pae = PAEConfig(channels=2, width=8, kernel=3, epochs=1, min_steps=0, batch_size=16, hop=10, threads=1)
    defaults = dict(sources=["g1_motions/tiny"], data_root=str(root), output=str(out), partitions="all")
    return HMEConfig(**{**defaults, "holdout": 0.0, "segment_seconds": 6.0, "k": 2, "seed": seed, "pae": pae, **kw})


def test_clips_shorter_than_a_window_fail_naming_the_clip_and_the_fix(tmp_path, walk_clip):
    with pytest.raises(HMEError, match=r"clip 'x.csv' is 3.00 s long .* needs 4.00 s.*skip_short"):
        segment_clip(91, 30.0, 10.0, PAEConfig(), "x.csv")
    assert [(s.start, s.stop) for s in segment_clip(900, 30.0, 10.0, PAEConfig())] == [(0, 300), (300, 600), (600, 900)]
    tail = segment_clip(1000, 30.0, 10.0, PAEConfig())  # a 3.3-s tail joins the segment before it
    assert [(s.start, s.stop) for s in tail] == [(0, 300), (300, 600), (600, 1000)]

    folder = _corpus(tmp_path, walk_clip)
    save_clip(walk_clip.slice(0, 60).replace(name="walk9_subject1"), folder / "walk9_subject1.npz")  # 2 s
    with pytest.raises(HMEError, match=r"clip 'g1_motions/tiny/walk9_subject1.npz' is 1.9. s long.*Fix: leave it"):
        fit(_config(tmp_path, tmp_path / "out"), progress=False)
    cfg = _config(tmp_path, tmp_path / "out", skip_short=True)
    fit(cfg, progress=False)
    done = embed(cfg, progress=False)
    assert "g1_motions/tiny/walk9_subject1.npz" not in done["embedded"] and len(done["embedded"]) == 3
    assert read_embeddings(done["store"]).meta["skipped"] == ["g1_motions/tiny/walk9_subject1.npz"]


def test_embeddings_are_deterministic_under_a_seed(tmp_path, walk_clip):
    _corpus(tmp_path, walk_clip)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = _config(tmp_path, tmp_path / name, seed=seed)
        fit(cfg, progress=False)
        runs[name] = read_embeddings(embed(cfg, progress=False)["store"])
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert len(a) == 6 and a.hme.shape == (6, 4 * 2) and a.baseline.shape == (6, 116)  # 2 segments per 12-s clip
    assert a.refs()[0] == "g1_motions/tiny/walk1_subject1.npz@0:180"
    np.testing.assert_array_equal(a.hme, b.hme)
    assert not np.allclose(a.hme, c.hme)
    assert set(a.label.tolist()) == {"walk"} and set(a.source.tolist()) == {"tiny"}


def test_reembedding_is_incremental(tmp_path, walk_clip):
    folder = _corpus(tmp_path, walk_clip)
    cfg = _config(tmp_path, tmp_path / "out")
    fit(cfg, progress=False)
    first = embed(cfg, progress=False)
    assert len(first["embedded"]) == 3 and first["reused"] == 0
    before = read_embeddings(first["store"])

    second = embed(cfg, progress=False)
    assert second["embedded"] == [] and second["reused"] == 3  # nothing new: nothing embedded
    np.testing.assert_array_equal(read_embeddings(second["store"]).hme, before.hme)

    save_clip(walk_clip.slice(2400, 2760).replace(name="walk4_subject1"), folder / "walk4_subject1.npz")
    save_clip(walk_clip.slice(100, 460).replace(name="walk2_subject1"), folder / "walk2_subject1.npz")  # changed
    pae = fit(cfg, progress=False)["all"]  # new clips: the trained PAE is kept, so old rows stay valid
    assert pae.stat().st_mtime_ns == (tmp_path / "out" / "pae" / "all" / "pae_1.pt").stat().st_mtime_ns
    third = embed(cfg, progress=False)
    assert sorted(third["embedded"]) == ["g1_motions/tiny/walk2_subject1.npz", "g1_motions/tiny/walk4_subject1.npz"]
    assert third["reused"] == 2 and third["segments"] == 8


def test_configs_read_from_yaml_with_defaults_and_refuse_unknown_keys(tmp_path):
    from humanoid_gpt.errors import ConfigError
    from humanoid_gpt.hme.config import default_yaml, load_config

    (tmp_path / "hme.yaml").write_text(default_yaml())
    assert load_config(tmp_path / "hme.yaml") == HMEConfig()
    (tmp_path / "small.yaml").write_text("k: 12\nsources: [g1_motions/lafan1]\npae: {epochs: 2}\n")
    cfg = load_config(tmp_path / "small.yaml", seed=3)
    assert cfg.k == 12 and cfg.seed == 3 and cfg.pae.epochs == 2 and cfg.pae.window_frames == 41
    assert cfg.pae.span == 201 and cfg.segment_seconds == 10.0
    (tmp_path / "bad.yaml").write_text("clusters: 12\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['clusters'\]"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="partitions='thirds'"):
        load_config(partitions="thirds")
    (tmp_path / "typo.yaml").write_text("pae: {min_steps: lots}\n")  # a wrong type is named, not a TypeError later
    with pytest.raises(ConfigError, match=r"HME config: pae: min_steps='lots' is not a int"):
        load_config(tmp_path / "typo.yaml")
    with pytest.raises(ConfigError, match=r"holdout='0.1' is not a float"):
        load_config(holdout="0.1")
