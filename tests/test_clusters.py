import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from humanoid_gpt import settings
from humanoid_gpt.catalog.manifests import ClusterManifest, default_manifest, load_manifest, task_id
from humanoid_gpt.catalog.refs import ClipRef, ManifestError, load_clip_refs
from humanoid_gpt.catalog.store import CorpusError, read_manifest

WALK_FILE = "g1_motions/lafan1/walk1_subject1.csv"


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


def test_corpus_clip_notation_round_trips_and_bad_notations_are_refused():
    cases = {
        "corpora/tiny::lafan1/walk1_subject2": (Path("corpora/tiny"), "lafan1/walk1_subject2", None, None),
        "/data/c::lafan1/walk@3:9": (Path("/data/c"), "lafan1/walk", 3, 9),
        # A trimmed clip's id ends like a segment: the last @start:stop is the segment, the rest the id.
        "c::lafan1/walk.csv@120:900@0:780": (Path("c"), "lafan1/walk.csv@120:900", 0, 780),
    }
    for text, (path, clip_id, start, stop) in cases.items():
        ref = ClipRef.parse(text)
        assert (ref.path, ref.clip_id, ref.start, ref.stop) == (path, clip_id, start, stop) and ref.is_corpus
        assert str(ref) == text and ClipRef.parse(str(ref)) == ref
    trimmed = ClipRef.corpus_clip("c", "lafan1/walk.csv@120:900", 780)
    assert str(trimmed) == "c::lafan1/walk.csv@120:900@0:780"
    assert str(ClipRef.corpus_clip("c", "lafan1/walk", 10)) == "c::lafan1/walk"
    # Every file notation reads as before.
    assert ClipRef.parse("walk@60hz.csv") == ClipRef(Path("walk@60hz.csv")) and not ClipRef.parse("a.csv").is_corpus
    assert ClipRef.parse(Path("a/b.csv@3:9")) == ClipRef(Path("a/b.csv"), 3, 9)
    bad = {
        "::lafan1/walk": "needs a corpus folder",
        "c::": "needs a clip id",
        "c::lafan1/walk@9:3": "start < stop",
    }
    for text, message in bad.items():
        with pytest.raises(ManifestError, match=message):
            ClipRef.parse(text)
    with pytest.raises(ManifestError, match=r"would read back as a segment.*c::x@1:2@0:<frames>"):
        ClipRef("c", clip_id="x@1:2")
    with pytest.raises(ManifestError, match="reads as <corpus folder>::<clip id>"):
        ClipRef(Path("odd::name.csv"))


def test_manifests_of_corpus_clips_are_schema_3_and_older_schemas_stay(tmp_path):
    walk = "g1_motions/lafan1/walk1_subject1.csv"

    def saved_version(clusters: dict) -> int:
        return json.loads(ClusterManifest(clusters).save(tmp_path / "m.json").read_text())["schema_version"]

    assert saved_version({"0": [walk]}) == 1 and saved_version({"0": [walk, f"{walk}@0:30"]}) == 2
    mixed = {"000": [walk, f"{walk}@0:30", "c::lafan1/walk"], "001": ["c::lafan1/run@5:50"]}
    assert saved_version(mixed) == 3 and load_manifest(tmp_path / "m.json").clusters == mixed
    for version in (1, 2):
        path = tmp_path / f"v{version}.json"
        path.write_text(json.dumps({"schema_version": version, "clusters": {"000": ["c::lafan1/walk"]}}))
        with pytest.raises(ManifestError, match="cannot hold corpus clips .*set schema_version to 3"):
            load_manifest(path)


def test_a_manifest_moved_with_its_outputs_names_the_same_clips(tiny_corpus, tmp_path, g1):
    """Entries inside the manifest's outputs tree are written relative to its folder (schema 4), so the tree can move
    or be copied as a whole; other entries are written as before."""
    folder, files = tiny_corpus
    out = tmp_path / "out"
    shutil.copytree(folder, out / "corpus")
    shutil.copytree(files, out / "clips")
    walk = "lafan1/walk1_subject2"
    exported = sorted((out / "clips").rglob("*.npz"))[0]
    entries = [f"{out / 'corpus'}::{walk}", f"{out / 'corpus'}::{walk}@10:60", f"{exported}@0:20"]
    manifest = ClusterManifest({"000": entries, "001": [WALK_FILE]}, "m.json")
    path = manifest.save(out / "experts" / "clusters.json")
    saved = json.loads(path.read_text())
    assert saved["schema_version"] == 4
    rel = exported.relative_to(out).as_posix()
    assert saved["clusters"] == {
        "000": [f"../corpus::{walk}", f"../corpus::{walk}@10:60", f"../{rel}@0:20"],
        "001": [WALK_FILE],  # relative to the data root, as before
    }
    assert load_manifest(path).clusters == manifest.clusters  # read back absolute: the same strings
    before = load_clip_refs(manifest.clip_refs("000"), g1)

    moved = tmp_path / "elsewhere" / "run"
    shutil.move(out, moved)
    back = load_manifest(moved / "experts" / "clusters.json")
    assert back.clusters["000"] == [e.replace(str(out), str(moved)) for e in entries]
    after = load_clip_refs(back.clip_refs("000"), g1)
    assert [c.name for c in after] == [c.name for c in before]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a.joint_pos, b.joint_pos)
    # Beside the manifest, in its own folder: "./".
    inside = ClusterManifest({"000": [f"{moved / 'corpus'}::{walk}"]}).save(moved / "corpus" / "m.json")
    assert json.loads(inside.read_text())["clusters"] == {"000": [f".::{walk}"]}
    assert load_manifest(inside).clusters == {"000": [f"{moved / 'corpus'}::{walk}"]}


def test_schema_3_manifests_read_as_before(tiny_corpus, tmp_path, lafan1_dir):
    """Before schema 4, relative entries are under the data root whatever they start with; absolute ones stay."""
    folder, _ = tiny_corpus
    walk = "lafan1/walk1_subject2"
    entries = [f"{folder}::{walk}@0:30", WALK_FILE, f"./{WALK_FILE}@0:30"]
    path = tmp_path / "run" / "clusters.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"schema_version": 3, "clusters": {"000": entries}}))
    manifest = load_manifest(path)
    assert manifest.clusters == {"000": entries}
    root = settings.data_root()
    assert [r.path for r in manifest.clip_refs("000")] == [folder, root / WALK_FILE, root / WALK_FILE]
    # Saved again where nothing it names lies in its outputs tree (the folder's parent), it is the same file.
    assert json.loads(manifest.save(path).read_text()) == {
        "schema_version": 3,
        "clusters": {"000": entries},
        "meta": {},
    }


def test_corpus_clips_load_from_the_corpus_with_clear_errors(tiny_corpus, tmp_path, g1, monkeypatch):
    folder, _ = tiny_corpus
    rows = {r["clip_id"]: r for r in read_manifest(folder)}
    walk = "lafan1/walk1_subject2"
    manifest = ClusterManifest({"000": [f"{folder}::{walk}", f"{folder}::{walk}@10:60"]}, "m.json")
    assert all(r.is_corpus for r in manifest.clips("000"))  # plans carry the refs
    with pytest.raises(ManifestError, match="corpus clips"):
        manifest.clip_paths("000")
    whole, segment = load_clip_refs(manifest.clip_refs("000"), g1)
    assert whole.name == "walk1_subject2" and whole.num_frames == rows[walk]["frames"]
    assert whole.kinematics is not None and whole.kinematics.num_frames == whole.num_frames
    assert segment.name == "walk1_subject2@10" and segment.provenance["segment"] == [10, 60]
    np.testing.assert_array_equal(segment.joint_pos, whole.joint_pos[10:60])
    np.testing.assert_array_equal(segment.kinematics.body_pos, whole.kinematics.body_pos[10:60])

    # A relative corpus folder: from the working directory first, then under the data root.
    monkeypatch.chdir(folder.parent)
    (here,) = load_clip_refs([f"{folder.name}::{walk}"], g1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HGPT_DATA_ROOT", str(folder.parent.parent))
    (there,) = load_clip_refs([f"{folder.parent.name}/{folder.name}::{walk}"], g1)
    np.testing.assert_array_equal(here.joint_pos, there.joint_pos)

    with pytest.raises(ManifestError, match=rf"do not exist .*'{walk}' of the corpus .*gone.*regenerate"):
        load_clip_refs([f"{tmp_path / 'gone'}::{walk}"], g1)
    with pytest.raises(CorpusError, match=rf"{re.escape(str(folder))}: clip 'lafan1/nope' is not in this corpus"):
        load_clip_refs([f"{folder}::lafan1/nope"], g1)
    trimmed = next(c for c in rows if "@" in c)
    # Its id without the last @start:stop is no clip: the message says how a reference reads.
    with pytest.raises(CorpusError, match="trailing @start:stop is a segment"):
        load_clip_refs([f"{folder}::{trimmed}"], g1)
    too_long = f"{folder}::{walk}@0:{rows[walk]['frames'] + 1}"
    with pytest.raises(
        ManifestError, match=rf"ends at frame .* but clip '{walk}' of the corpus {re.escape(str(folder))}"
    ):
        load_clip_refs([too_long], g1)
    monkeypatch.setattr("humanoid_gpt.runs.robot_hash", lambda path: "another-robot")
    with pytest.raises(CorpusError, match=rf"{re.escape(str(folder))}: built for another robot model"):
        load_clip_refs([f"{folder}::{walk}"], g1)
