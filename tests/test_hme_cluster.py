"""HME clusters: K-Means, diversity figures, balanced weights, the segment manifest (round trip, tasks, loading,
plans and the MuJoCo backend), and clear errors for missing clips and foreign PAE checkpoints."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from humanoid_gpt.catalog.manifests import ClusterManifest, load_manifest
from humanoid_gpt.catalog.refs import ClipRef, ManifestError, load_clip_refs
from humanoid_gpt.hme.balance import cluster_clip_table
from humanoid_gpt.hme.config import HMEConfig, HMEError, PAEConfig
from humanoid_gpt.hme.diversity import balanced_weights, farthest_point_subset, gstd, log_volume, segment_weights
from humanoid_gpt.hme.kmeans import kmeans
from humanoid_gpt.hme.pae import load_pae, pae_meta, train_pae
from humanoid_gpt.hme.scores import adjusted_rand_index, nmi, purity
from humanoid_gpt.runs import CheckpointError

WALK = "g1_motions/lafan1/walk1_subject1.csv"
RUN = "g1_motions/lafan1/run1_subject2.csv"


def _blobs(n_per: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 5)) * 20
    x = np.concatenate([c + rng.normal(size=(n_per, 5)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(4), n_per)


def test_kmeans_recovers_well_separated_blobs_deterministically():
    x, truth = _blobs()
    a = kmeans(x, 4, seed=3, restarts=2)
    assert adjusted_rand_index(a.labels, truth) == pytest.approx(1.0)
    assert purity(a.labels, truth) == 1.0 and nmi(a.labels, truth) == pytest.approx(1.0)
    b = kmeans(x, 4, seed=3, restarts=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    mini = kmeans(x, 4, seed=1, minibatch_above=100, batch_size=64)  # the mini-batch path for large N
    assert adjusted_rand_index(mini.labels, truth) == pytest.approx(1.0)
    assert adjusted_rand_index(np.arange(8) % 2, np.arange(8) // 4) == pytest.approx(-0.2, abs=0.15)


def test_fewer_segments_than_clusters_is_a_clear_error(tmp_path):
    with pytest.raises(HMEError, match="3 points .* for 5 clusters.*Fix: lower k"):
        kmeans(np.zeros((3, 2)), 5)
    from humanoid_gpt.hme.embed import Embeddings
    from humanoid_gpt.hme.pipeline import cluster

    rows = [
        {"key": f"h@{i}:{i + 1}", "clip_hash": "h", "path": WALK, "source": "lafan1", "label": "walk", "start": i,
         "stop": i + 1, "fps": 30.0, "seconds": 0.03, "heldout": False, "windows": 1, "complexity": 1.0,
         "hme": np.ones(4), "baseline": np.ones(116)}
        for i in range(3)
    ]  # fmt: skip
    Embeddings.from_rows(rows, 4, {"format": "hgpt.hme.embeddings", "schema_version": 1}).save(
        tmp_path / "embeddings.parquet"
    )
    with pytest.raises(HMEError, match="3 segments .* for k=8 clusters.*lower k"):
        cluster(HMEConfig(output=str(tmp_path), k=8))


def test_gstd_and_log_volume_match_a_hand_computed_covariance():
    x = np.array([[0.0, 0.0], [2.0, 1.0], [4.0, 5.0]])
    # By hand (ddof 1): var 4 and 7, covariance 5: Sigma = [[4, 5], [5, 7]], det 3.
    assert gstd(x) == pytest.approx(math.exp((math.log(2.0) + math.log(math.sqrt(7.0))) / 2))
    eps = 1e-6
    assert log_volume(x, eps) == pytest.approx(0.5 * math.log((4 + eps) * (7 + eps) - 25))
    assert math.isnan(gstd(x[:1])) and math.isnan(log_volume(x[:1]))


def test_balanced_weights_from_as_the_data_is_to_every_cluster_equal():
    ids = np.array(["a"] * 6 + ["b"] * 3 + ["c"])
    mass = lambda w: {c: w[ids == c].sum() for c in "abc"}  # noqa: E731
    equal = mass(balanced_weights(ids, 1.0))
    assert all(v == pytest.approx(1 / 3) for v in equal.values())
    data = mass(balanced_weights(ids, 0.0))
    assert data == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1})
    half = mass(balanced_weights(ids, 0.5))
    assert data["a"] > half["a"] > equal["a"]
    assert np.allclose(balanced_weights(ids, True), balanced_weights(ids, 1.0))
    _, w1, owner = cluster_clip_table({"a": ["x"] * 4, "b": ["y"]}, balance=True)
    assert w1 == [0.25] * 4 + [1.0] and owner == [0] * 4 + [1]
    _, w0, _ = cluster_clip_table({"a": ["x"] * 4, "b": ["y"]}, balance=False)
    _, wt, _ = cluster_clip_table({"a": ["x"] * 4, "b": ["y"]}, balance=0.5)
    assert w0 == [1.0] * 5 and wt == pytest.approx([0.5] * 4 + [1.0])
    with pytest.raises(ManifestError, match="temperature"):
        cluster_clip_table({"a": ["x"]}, balance=2.0)


def test_farthest_point_subset_prefers_far_and_complex():
    x = np.array([[0.0], [0.1], [5.0], [10.0]])
    picked = farthest_point_subset(x, scores=np.array([0.0, 9.0, 1.0, 2.0]), m=3)
    assert picked.tolist() == [1, 3, 2]


def _segment_manifest(tmp_path) -> ClusterManifest:
    manifest = ClusterManifest(
        {"000": [f"{WALK}@0:300", f"{WALK}@300:600"], "001": [f"{RUN}@150:450", RUN]},
        meta={"clusters": {"000": {"size": 2}}},
    )
    return load_manifest(manifest.save(tmp_path / "clusters.json"))


def test_segment_manifest_round_trips_and_loads_the_right_slices(tmp_path, lafan1_dir, g1):
    assert str(ClipRef.parse("a/b.csv@3:9")) == "a/b.csv@3:9" and ClipRef.parse("a/b.csv@3:9").stop == 9
    assert not ClipRef.parse("walk@60hz.csv").is_segment  # a rate in a file name is not a segment
    with pytest.raises(ManifestError, match="start < stop"):
        ClipRef.parse("a.csv@9:3")
    back = _segment_manifest(tmp_path)
    assert json.loads((tmp_path / "clusters.json").read_text())["schema_version"] == 2
    assert back.clusters["001"] == [f"{RUN}@150:450", RUN] and back.meta["clusters"]["000"]["size"] == 2
    plain = ClusterManifest({"000": [WALK]}).save(tmp_path / "plain.json")
    assert json.loads(plain.read_text())["schema_version"] == 1  # no segments: readable by older code

    refs = back.clip_refs("000")
    assert refs[1] == ClipRef(lafan1_dir / "walk1_subject1.csv", 300, 600)
    clips = load_clip_refs([*refs, str(refs[0]), lafan1_dir / "run1_subject2.csv"], g1)
    whole = load_clip_refs([lafan1_dir / "walk1_subject1.csv"], g1)[0]
    assert [c.name for c in clips[:3]] == ["walk1_subject1@0", "walk1_subject1@300", "walk1_subject1@0"]
    np.testing.assert_array_equal(clips[1].joint_pos, whole.joint_pos[300:600])
    np.testing.assert_array_equal(clips[1].root_pos, whole.root_pos[300:600])
    assert clips[1].num_frames == 300 and clips[1].fps == 30.0 and clips[3].name == "run1_subject2"
    assert back.clips("001")[1] == lafan1_dir / "run1_subject2.csv"  # whole files stay paths in plans
    with pytest.raises(ManifestError, match="holds clip segments.*clip_refs"):
        back.clip_paths("000")
    with pytest.raises(ManifestError, match="ends at frame 99999 .* regenerate"):
        load_clip_refs([f"{lafan1_dir / 'walk1_subject1.csv'}@0:99999"], g1)

    refs_w, weights, owner = segment_weights(back, temperature=1.0)
    assert len(refs_w) == 4 and weights == [0.5] * 4 and owner == [0, 0, 1, 1]

    (tmp_path / "v1seg.json").write_text(json.dumps({"schema_version": 1, "clusters": {"000": [f"{WALK}@0:3"]}}))
    with pytest.raises(ManifestError, match="set schema_version to 2"):
        load_manifest(tmp_path / "v1seg.json")


def test_segment_clusters_register_as_tasks_and_plan_segments(tmp_path, lafan1_dir, g1, monkeypatch):
    from humanoid_gpt.backends import load_backend
    from humanoid_gpt.experts.train import ExpertRun, plan_expert
    from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
    from humanoid_gpt_tasks.registration import register_tasks

    manifest = ClusterManifest({"700": [f"{WALK}@0:300"], "701": [f"{RUN}@150:450", f"{RUN}@600:900"]})
    path = manifest.save(tmp_path / "clusters.json")
    ids = register_tasks(load_manifest(path))
    assert {"HGPT-Cluster-700", "HGPT-Cluster-701-Play"} <= set(ids)
    assert "HGPT-Cluster-701" in gym.registry

    monkeypatch.setenv("HGPT_CLUSTER_MANIFEST", str(path))
    tracking = TrackingConfig(randomization=RandomizationConfig.off())
    plan = plan_expert(ExpertRun("HGPT-Cluster-701", num_envs=2, threads=1, tracking=tracking))
    assert plan.clips == (
        ClipRef(lafan1_dir / "run1_subject2.csv", 150, 450),
        ClipRef(lafan1_dir / "run1_subject2.csv", 600, 900),
    )
    env = load_backend("mujoco", g1=g1).expert_env(plan)
    try:
        assert env.library.names == ["run1_subject2@150", "run1_subject2@600"]
        assert float(env.library.duration[0]) == pytest.approx(299 / 30)
    finally:
        env.close()


def test_a_manifest_whose_clips_are_gone_is_a_clear_error(tmp_path, lafan1_dir, g1):
    gone = ClusterManifest({"000": ["g1_motions/lafan1/vanished.csv@0:300"]}, source="hme.json")
    with pytest.raises(ManifestError, match="names 1 clips that do not exist .*vanished.csv.*regenerate"):
        gone.clip_refs("000")
    with pytest.raises(ManifestError, match="do not exist .*vanished.csv.*regenerate"):
        load_clip_refs([lafan1_dir / "vanished.csv"], g1)


def test_a_pae_made_for_other_features_or_rate_is_refused(tmp_path):
    cfg = PAEConfig(channels=1, width=4, kernel=3, epochs=1, min_steps=0, batch_size=4, hop=20)
    feats = torch.randn(600, 74)
    starts = torch.arange(0, 600 - cfg.span, 20)
    path = train_pae(feats, starts, cfg, tmp_path / "pae", pae_meta(cfg, "p", [], 0), seed=0, progress=False)
    load_pae(path, cfg)  # its own config: fine
    with pytest.raises(CheckpointError, match=r"other features, rate or windows: rate 50.0 \(this config: 30.0\)"):
        load_pae(path, PAEConfig(rate=30.0, frame_step=3))
    payload = torch.load(path, weights_only=False)
    payload["hgpt.hme.pae"]["features"] = "someone-elses-features/v3"
    torch.save(payload, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="features 'someone-elses-features/v3'.*Refit"):
        load_pae(tmp_path / "foreign.pt", cfg)


def test_clusters_use_posture_statistics_beside_the_hme_by_default(tmp_path):
    """Two postures (a crouch and an upright stance) with the same rhythm: the HME alone cannot tell them apart, the
    default cluster space (HME and joint statistics) does; a misspelt space is refused."""
    from humanoid_gpt.errors import ConfigError
    from humanoid_gpt.hme.embed import Embeddings
    from humanoid_gpt.hme.pipeline import cluster

    rng = np.random.default_rng(0)
    posture = np.repeat([0, 1], 20)
    rows = [
        {"key": f"h@{i}:{i + 1}", "clip_hash": "h", "path": WALK, "source": "lafan1", "label": "ab"[p], "start": i,
         "stop": i + 1, "fps": 30.0, "seconds": 10.0, "heldout": False, "windows": 1, "complexity": 1.0,
         "hme": rng.normal(size=8), "baseline": np.full(116, 3.0 * p) + 0.1 * rng.normal(size=116)}
        for i, p in enumerate(posture)
    ]  # fmt: skip
    Embeddings.from_rows(rows, 8, {"format": "hgpt.hme.embeddings", "schema_version": 1}).save(
        tmp_path / "embeddings.parquet"
    )

    def purity_of(**features) -> float:
        manifest = load_manifest(cluster(HMEConfig(output=str(tmp_path), k=2, **features)))
        assert manifest.meta["cluster_features"] == features.get("cluster_features", "hme+joint_stats")
        of = {ref: cid for cid, refs in manifest.clusters.items() for ref in refs}
        return purity(np.asarray([of[f"{WALK}@{i}:{i + 1}"] for i in range(len(rows))]), posture)

    assert purity_of() == 1.0
    assert purity_of(cluster_features="hme") < 0.9
    with pytest.raises(ConfigError, match="cluster_features='pose'"):
        HMEConfig(cluster_features="pose").validate()
