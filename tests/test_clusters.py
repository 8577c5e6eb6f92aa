import json

import pytest

from humanoid_gpt.hme.clusters import ManifestError, default_manifest, load_manifest, task_id


def test_default_manifest_has_one_cluster_per_dataset(lafan1_dir):
    m = default_manifest()
    folders = m.meta["folders"]
    lafan = next(c for c, name in folders.items() if name == "lafan1")
    assert len(m.clusters[lafan]) == 40 and all(p.startswith("g1_motions/lafan1/") for p in m.clusters[lafan])
    assert all(p.is_file() for p in m.clip_paths(lafan))
    assert task_id(lafan) == f"HGPT-Cluster-{lafan}"


def test_manifest_round_trip_and_bad_manifests(tmp_path, lafan1_dir):
    m = default_manifest()
    back = load_manifest(m.save(tmp_path / "clusters.json"))
    assert back.clusters == m.clusters
    with pytest.raises(ManifestError, match="'999' is not in the manifest"):
        back.clip_paths("999")
    (tmp_path / "empty.json").write_text(json.dumps({"schema_version": 1, "clusters": {"000": []}}))
    with pytest.raises(ManifestError, match=r"clusters \['000'\] have no clips"):
        load_manifest(tmp_path / "empty.json")
    (tmp_path / "ghost.json").write_text(json.dumps({"schema_version": 1, "clusters": {"000": ["g1_motions/x.csv"]}}))
    with pytest.raises(ManifestError, match="names 1 clips that do not exist"):
        load_manifest(tmp_path / "ghost.json").clip_paths("000")
    (tmp_path / "old.json").write_text(json.dumps({"schema_version": 7, "clusters": {}}))
    with pytest.raises(ManifestError, match="schema_version 7"):
        load_manifest(tmp_path / "old.json")


def test_plain_path_manifests_plan_paths_as_before(tmp_path, lafan1_dir):
    m = default_manifest()
    lafan = next(c for c, name in m.meta["folders"].items() if name == "lafan1")
    assert m.clips(lafan) == m.clip_paths(lafan)  # whole files stay Paths in plans
    assert all(not r.is_segment and r.path == p for r, p in zip(m.clip_refs(lafan), m.clip_paths(lafan), strict=True))
    saved = json.loads(m.save(tmp_path / "clusters.json").read_text())
    assert saved["schema_version"] == 1  # nothing new in it: older readers still read it
