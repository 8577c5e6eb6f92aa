"""The corpus build on a few short clips made in tmp_path from the shared LAFAN1-G1 takes: manifest rows,
performer-disjoint splits, duplicates removed, the card; a rerun does nothing; a crashed build resumes; a corrupt
shard is rebuilt; bad configs fail before anything is written; Ray builds the same corpus; the motion library from
the corpus equals ``MotionLibrary.from_clips`` on the same clips; a cluster manifest of exported files becomes one of
the corpus's clips."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from humanoid_gpt.catalog.store import (
    MANIFEST_COLUMNS,
    CorpusIndex,
    load_clips_from_corpus,
    load_library,
    read_manifest,
)
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.governance.corpus import build_corpus, verify_corpus
from humanoid_gpt.governance.corpus_config import load_corpus_config
from humanoid_gpt.governance.warp import time_warp
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.library import MotionLibrary

FRAMES = 150  # 5 s at 30 fps per clip


@pytest.fixture(scope="module")
def src(tmp_path_factory, lafan1_dir) -> Path:
    """Three short takes of three performers, and a byte-for-byte copy of one of them."""
    folder = tmp_path_factory.mktemp("src")
    for name in ("walk1_subject2", "run1_subject5", "walk1_subject1"):
        rows = np.loadtxt(lafan1_dir / f"{name}.csv", delimiter=",", max_rows=FRAMES)
        np.savetxt(folder / f"{name}.csv", rows, delimiter=",", fmt="%.10g")
    shutil.copy(folder / "walk1_subject2.csv", folder / "walk1_subject2_copy.csv")
    return folder


def _config(src: Path, out: Path, **extra) -> dict:
    return {
        "name": "tiny",
        "output": str(out),
        "sources": [
            {
                "name": "lafan1",
                "path": str(src / "*.csv"),
                "format": "g1",
                "fps": 30,
                "licence": "CC BY-NC-ND 4.0",
                "performer": {"regex": r"(subject\d+)", "namespace": "lafan1"},
            }
        ],
        "splits": {"train": 0.34, "val": 0.33, "test": 0.33},
        "dtype": "float64",
        **extra,
    }


def _files(out: Path) -> dict[str, int]:
    """Every published file and its modification time (ns): not the work units or the build lock (dot files)."""
    files = (p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files if not p.relative_to(out).parts[0][0] == "."}


def _key(rows: list[dict]) -> list[tuple]:
    return [
        (r["clip_id"], r["status"], r["content_hash"], r["split"], r["shard"], r["offset"], r["shard_sha256"])
        for r in rows
    ]


@pytest.fixture(scope="module")
def built(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "out"
    summary = build_corpus(load_corpus_config(_config(src, out)), progress=False)
    return out, summary


def test_manifest_splits_duplicates_and_card(built):
    out, summary = built
    rows = read_manifest(out)
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    inside = [r for r in rows if r["shard"] is not None]
    assert summary.clips == len(inside) == 3 * 5  # three distinct takes x (original + 4 warps)
    assert summary.units_total == 4 and summary.units_computed == 3  # the copy shares its twin's unit
    # The copy's clips are duplicates of its twin's, named and kept out of the shards.
    dups = [r for r in rows if r["status"] == "duplicate"]
    assert len(dups) == 5 and all(r["shard"] is None and r["duplicate_of"] for r in dups)
    assert {r["path"].split("/")[-1] for r in dups} == {"walk1_subject2_copy.csv"}
    assert all("duplicate: same content as lafan1/walk1_subject2" in r["reasons"][-1] for r in dups)
    # Performer-disjoint splits: each performer in exactly one split; every split used with three performers.
    by_performer: dict[str, set] = {}
    for r in inside:
        by_performer.setdefault(r["performer"], set()).add(r["split"])
    assert set(by_performer) == {"lafan1/subject1", "lafan1/subject2", "lafan1/subject5"}
    assert all(len(s) == 1 for s in by_performer.values())
    assert {r["split"] for r in inside} == {"train", "val", "test"}
    # Rows carry what the card and the loaders need.
    walk = next(r for r in inside if r["name"] == "walk1_subject2~x1.25")
    assert walk["warp"] == 1.25 and walk["fps"] == 50.0 and walk["licence"] == "CC BY-NC-ND 4.0"
    assert walk["labels"] == ["walk"] and walk["status"] == "keep" and walk["source_fps"] == 30.0
    assert walk["frames"] == int((FRAMES - 1) / 30.0 * 1.0 / 1.25 * 50.0) + 1
    assert len(walk["content_hash"]) == 32 and len(walk["shard_sha256"]) == 64
    # One shard per split, checksummed; the card and its plot, the filter report.
    index = CorpusIndex.read(out)
    assert sorted(s["split"] for s in index.data["shards"]) == ["test", "train", "val"]
    assert verify_corpus(out) == []
    card = (out / "DATASET_CARD.md").read_text()
    for heading in ("## Sources", "## Licences", "## Filter reasons", "## Time warps", "## Splits", "## Labels"):
        assert heading in card
    assert "CC BY-NC-ND 4.0" in card and "non-commercial" in card and "Duplicates removed by content hash: 5" in card
    assert (out / "card.png").stat().st_size > 10_000
    report = json.loads((out / "filter_report.json").read_text())
    assert [d["name"] for d in report] == ["run1_subject5", "walk1_subject1", "walk1_subject2", "walk1_subject2_copy"]


def test_a_rerun_does_nothing(built, src):
    out, _ = built
    before = _files(out)
    again = build_corpus(load_corpus_config(_config(src, out)), progress=False)
    assert again.up_to_date and again.units_computed == 0 and again.units_reused == 4
    assert _files(out) == before  # not a byte rewritten
    # One build at a time per folder: a second one is refused while the first holds the lock.
    import fcntl

    with open(out / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(HGPTError, match="another corpus build .* is writing here"):
            build_corpus(load_corpus_config(_config(src, out)), progress=False)


class Crash(Exception):
    pass


def test_a_crashed_build_resumes_with_nothing_lost_or_duplicated(built, src, tmp_path):
    reference = read_manifest(built[0])
    out = tmp_path / "out"
    computed: list[str] = []

    def crash_after_two(task, meta, cached):
        if not cached:
            computed.append(task.name)
            if len(computed) == 2:
                raise Crash  # as if killed after two units were written

    with pytest.raises(Crash):
        build_corpus(load_corpus_config(_config(src, out)), progress=False, on_unit=crash_after_two)
    assert not (out / "index.json").exists() and not (out / "manifest.parquet").exists()  # nothing published
    assert len(list((out / ".units").rglob("*.npz"))) == 2
    seen: list[tuple[str, bool]] = []
    resumed = build_corpus(
        load_corpus_config(_config(src, out)), progress=False, on_unit=lambda t, m, c: seen.append((t.name, c))
    )
    assert resumed.units_computed == 1 and resumed.units_reused == 3  # the copy reuses its twin's unit
    assert sorted(name for name, cached in seen if not cached) == ["walk1_subject2"]
    assert _key(read_manifest(out)) == _key(reference)
    # Final outputs lost (a crash during assembly): rebuilt from the units alone, shards reused.
    (out / "index.json").unlink()
    (out / "manifest.parquet").unlink()
    again = build_corpus(load_corpus_config(_config(src, out)), progress=False)
    assert again.units_computed == 0 and again.shards_written == 0 and again.shards_reused == 3
    assert _key(read_manifest(out)) == _key(reference) and verify_corpus(out) == []


def test_a_corrupt_shard_is_detected_and_rebuilt(built, src):
    out, _ = built
    reference = _key(read_manifest(out))
    shard = next((out / "shards").glob("val-*"))
    data = bytearray((shard / "body_pos.npy").read_bytes())
    data[-8:] = b"\x00" * 8  # one value changed in place, file size unchanged
    (shard / "body_pos.npy").write_bytes(bytes(data))
    problems = verify_corpus(out)
    assert len(problems) == 1 and "body_pos.npy" in problems[0] and "corrupt" in problems[0]
    repaired = build_corpus(load_corpus_config(_config(src, out)), progress=False)
    assert repaired.shards_written == 1 and repaired.shards_reused == 2 and repaired.units_computed == 0
    assert verify_corpus(out) == [] and _key(read_manifest(out)) == reference


def test_the_library_from_the_corpus_equals_from_clips(built, src, g1):
    out, _ = built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clip = load_clip(src / "walk1_subject2.csv", fps=30, g1=g1)
    same = [time_warp(clip, 1.0, 50.0), time_warp(clip, 1.25, 50.0)]
    names = ["walk1_subject2", "walk1_subject2~x1.25"]
    for dtype in (torch.float64, torch.float32):
        expected = MotionLibrary.from_clips(same, g1, dtype=dtype)
        got = load_library(out, g1, clips=names, dtype=dtype)
        assert got.names == names and torch.equal(got.num_frames, expected.num_frames)
        assert torch.equal(got._data, expected._data)  # every packed value, FK included, bit for bit
        ids, times = expected.sample(64, torch.Generator().manual_seed(0))
        a, b = expected.frames(ids, times), got.frames(ids, times)
        assert torch.equal(a.body_pos, b.body_pos) and torch.equal(a.body_quat, b.body_quat)
    # Splits and body subsets select without recomputing; clips come back as MotionClips.
    train = load_library(out, g1, body_names=("pelvis", "torso_link"), split="train")
    assert train.num_clips == 5 and train.body_names == ("pelvis", "torso_link")
    (back,) = load_clips_from_corpus(out, clips=["walk1_subject2"])
    np.testing.assert_array_equal(back.joint_pos, same[0].joint_pos)
    with pytest.raises(ValueError, match="not in the corpus"):
        load_library(out, g1, clips=["nope"])


def test_bad_configs_fail_before_anything_is_written(src, tmp_path):
    out = tmp_path / "never"
    cases = {
        "does not exist": {"path": str(tmp_path / "missing")},
        "holds no g1 files": {"path": str(tmp_path / "missing*")},
        "unknown format 'fbx'": {"format": "fbx"},
        "field 'licence' missing": {"licence": None},
    }
    for message, change in cases.items():
        config = _config(src, out)
        config["sources"][0].update(change)
        if change.get("licence", "") is None:
            del config["sources"][0]["licence"]
        with pytest.raises(ConfigError, match=message) as err:
            build_corpus(load_corpus_config(config), progress=False)
        assert "sources[0] (lafan1)" in str(err.value) or "source 'lafan1'" in str(err.value)
        assert "Fix" in str(err.value)
    with pytest.raises(ConfigError, match="splits .* must be non-negative fractions adding up to 1"):
        load_corpus_config(_config(src, out, splits={"train": 0.9, "val": 0.2, "test": 0.0}))
    with pytest.raises(ConfigError, match="unknown filter setting"):
        load_corpus_config(_config(src, out, filters={"penetration": 1}))
    assert not out.exists()


def test_files_without_a_frame_rate_or_unreadable_are_dropped_naming_them(src, tmp_path):
    folder = tmp_path / "mystery"
    folder.mkdir()
    shutil.copy(src / "run1_subject5.csv", folder / "take.csv")  # no rate in the name, no manifest, unknown content
    (folder / "torn.csv").write_text("0.1,0.2\n")
    config = _config(src, tmp_path / "out")
    config["sources"][0].update(path=str(folder), fps=None)
    summary = build_corpus(load_corpus_config(config), progress=False)
    rows = {Path(r["path"]).name: r for r in read_manifest(tmp_path / "out")}
    assert summary.clips == 0 and len(summary.errors) == 1 and "torn.csv" in summary.errors[0]
    take, torn = rows["take.csv"], rows["torn.csv"]
    assert take["status"] == "drop" and take["reason_codes"] == ["fps_unknown"]
    assert "take.csv" in take["reasons"][0] and "`fps:` field" in take["reasons"][0]
    assert torn["status"] == "drop" and torn["reason_codes"] == ["unreadable"] and "torn.csv" in torn["reasons"][0]
    assert "## Filter reasons" in (tmp_path / "out" / "DATASET_CARD.md").read_text()  # an empty corpus has a card
    config["output"] = str(tmp_path / "strict")
    with pytest.raises(HGPTError, match=r"(?s)1 source file\(s\) could not be used \(on_error: fail\).*torn\.csv"):
        build_corpus(load_corpus_config({**config, "on_error": "fail"}), progress=False)
    assert not (tmp_path / "strict" / "index.json").exists()


def test_exported_clip_files_load_back_with_provenance(built, tmp_path, g1):
    """`hgpt corpus export`: each clip a file under <split>/<source>/, readable by every file-based tool."""
    from humanoid_gpt.cli import main
    from humanoid_gpt.motion.io import load_clip as read_clip

    out, _ = built
    assert main(["corpus", "export", str(out), "--out", str(tmp_path / "files"), "--split", "train"]) == 0
    files = sorted((tmp_path / "files").rglob("*.npz"))
    rows = [r for r in read_manifest(out) if r["shard"] is not None and r["split"] == "train"]
    assert len(files) == len(rows) and all(f.parent.parent.name == "train" for f in files)
    (original,) = load_clips_from_corpus(out, clips=[rows[0]["name"]])
    again = read_clip(tmp_path / "files" / "train" / rows[0]["source"] / f"{rows[0]['name']}.npz", g1=g1)
    np.testing.assert_array_equal(again.joint_pos, original.joint_pos)
    assert again.fps == original.fps and again.provenance["performer"] == rows[0]["performer"]


def test_ray_builds_the_same_corpus(src, tmp_path):
    """A local Ray instance (2 CPUs), one task per file: the same manifest, hashes and shards as in-process."""
    pytest.importorskip("ray")
    import ray

    small = tmp_path / "src"
    small.mkdir()
    for name in ("walk1_subject2", "run1_subject5"):
        shutil.copy(src / f"{name}.csv", small / f"{name}.csv")
    manifests = []
    for executor in ("local", "ray"):
        config = _config(small, tmp_path / executor, executor=executor, warps=[1.25], dtype="float32")
        build_corpus(load_corpus_config(config), progress=False)
        manifests.append(read_manifest(tmp_path / executor))
    assert not ray.is_initialized()  # a Ray instance the build started is shut down with it
    assert _key(manifests[0]) == _key(manifests[1]) and len(manifests[0]) == 4
    for a, b in zip(manifests[0], manifests[1], strict=True):
        assert {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}


def test_a_manifest_of_exported_files_becomes_one_of_corpus_clips(tiny_corpus, g1, monkeypatch):
    """The main job's rewrite of the HME manifest: every exported file (whole, or a segment) becomes the corpus clip
    it was written from, with the same frames, and the result loads as the files do."""
    from humanoid_gpt.catalog.manifests import ClusterManifest, corpus_manifest, load_manifest
    from humanoid_gpt.catalog.refs import ManifestError, load_clip_refs
    from humanoid_gpt.catalog.store import export_paths

    folder, files = tiny_corpus
    rows = read_manifest(folder)
    paths = export_paths(rows)
    assert sorted(files / p for p in paths.values()) == sorted(files.rglob("*.npz"))  # what export_clips wrote
    for row in rows:  # an exported file keeps its clip's frames and rate: segments map frame for frame
        clip = load_clip(files / paths[row["clip_id"]], g1=g1)
        assert (clip.num_frames, clip.fps) == (row["frames"], row["fps"])
    walk, trimmed = "lafan1/walk1_subject2", next(r["clip_id"] for r in rows if r["status"] == "trim")
    # HME writes entries relative to the data root when under it: a relative one resolves there too.
    monkeypatch.setenv("HGPT_DATA_ROOT", str(files.parent))
    relative = (files / paths[trimmed]).relative_to(files.parent).as_posix()
    hme = ClusterManifest(
        {"000": [str(files / paths[walk]), f"{files / paths[walk]}@5:40"], "001": [relative, f"{relative}@0:30"]},
        "hme/clusters.json",
        {"k": 2},
    )
    rewritten = corpus_manifest(hme, folder, files)
    frames = {r["clip_id"]: r["frames"] for r in rows}
    assert rewritten.clusters == {
        "000": [f"{folder}::{walk}", f"{folder}::{walk}@5:40"],
        "001": [f"{folder}::{trimmed}@0:{frames[trimmed]}", f"{folder}::{trimmed}@0:30"],
    }
    assert rewritten.meta["k"] == 2 and rewritten.meta["corpus"] == str(folder)
    back = load_manifest(rewritten.save(folder.parent / "clusters_corpus.json"))
    for cluster in hme.clusters:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = load_clip_refs(hme.clip_refs(cluster), g1)
        got = load_clip_refs(back.clip_refs(cluster), g1)
        assert [c.num_frames for c in got] == [c.num_frames for c in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.joint_pos, b.joint_pos)
            assert a.kinematics is not None and b.kinematics is None
    stray = ClusterManifest({"000": [str(files / "train" / "elsewhere.npz")]}, "hme/clusters.json")
    with pytest.raises(ManifestError, match="hme/clusters.json: entry .*elsewhere.npz.* is not a clip file exported"):
        corpus_manifest(stray, folder, files)
