"""Files from elsewhere run no code and point nowhere else (docs/security.md): a checkpoint whose unpickling would
run code is refused unread by every loader and command that reads one, naming the file; relative paths in cluster
manifests, expert registries, configs and corpus folders stay inside their folder; and the source holds no unsafe
loader."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_support import live_payload

from humanoid_gpt.cli import main
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.runs import CheckpointError

REPO = Path(__file__).resolve().parents[1]
WALK = "g1_motions/lafan1/walk1_subject1.csv"


@pytest.fixture
def hostile(tmp_path):
    """``(checkpoint, marker)``: a file shaped like an expert, student and PAE checkpoint at once (so only its payload
    can make a loader refuse it) whose unpickling creates ``marker``."""
    marker = tmp_path / "MARKER"
    payload = {
        "infos": {"hgpt": {"format": "humanoid_gpt.expert", "schema_version": 2, "num_actions": 29}},
        "meta": {"format": "humanoid_gpt.student", "schema_version": 2},
        "hgpt.hme.pae": {"format": "hgpt.hme.pae", "schema_version": 1},
        "model": live_payload(marker),
    }
    torch.save(payload, tmp_path / "evil.pt")
    return tmp_path / "evil.pt", marker


def _teacher(path, g1, registry_of):
    from students_support import TRACKING

    from humanoid_gpt.students.teachers import TeacherPool

    return TeacherPool(registry_of([path], ["a"]), ["a"], TRACKING, 520, 29, g1)


def _expert(path, g1, registry_of):
    from humanoid_gpt.experts.checkpoint import load_checkpoint

    return load_checkpoint(path)


def _student(path, g1, registry_of):
    from humanoid_gpt.students.checkpoint import load_student

    return load_student(path, g1)


def _student_resume(path, g1, registry_of):
    from humanoid_gpt.students.checkpoint import read_student_checkpoint

    return read_student_checkpoint(path)  # what DaggerRunner.resume reads


def _pae(path, g1, registry_of):
    from humanoid_gpt.hme.pae import load_pae

    return load_pae(path)


LOADERS = {
    "expert": _expert,
    "teacher": _teacher,
    "student": _student,
    "student resume": _student_resume,
    "pae": _pae,
}


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_checkpoint_that_would_run_code_is_refused_unread(loader, hostile, g1, registry_of):
    path, marker = hostile
    with pytest.raises(CheckpointError, match="refused, not loaded") as refused:
        LOADERS[loader](path, g1, registry_of)
    assert str(path) in str(refused.value) and "Fix: retrain" in str(refused.value)
    assert not marker.exists(), "the checkpoint's payload ran"


def test_a_checkpoint_of_the_old_layout_is_refused_with_the_fix(tmp_path):
    """Schema 1 stored numpy's RNG state and MuJoCo states as numpy arrays: a safe load cannot build those."""
    from humanoid_gpt.experts.checkpoint import load_checkpoint

    old = {"infos": {"hgpt": {"format": "humanoid_gpt.expert", "schema_version": 1, "rng": np.random.get_state()}}}
    torch.save(old, tmp_path / "model_10.pt")
    with pytest.raises(CheckpointError, match=r"model_10\.pt: refused, not loaded: it holds numpy arrays.*retrain"):
        load_checkpoint(tmp_path / "model_10.pt")


def _registry(folder: Path, checkpoint: str, cluster: str = "900") -> Path:
    record = {"cluster": cluster, "task": f"HGPT-Cluster-{cluster}", "checkpoint": checkpoint, "config_hash": "h"}
    record |= {"metrics": {}, "retained": True, "reasons": []}
    path = folder / "registry.json"
    path.write_text(json.dumps({"schema_version": 1, "experts": {cluster: record}}))
    return path


COMMANDS = {
    "export onnx": lambda t, p: ["export", "onnx", str(p), "--out", str(t / "x")],
    "experts eval": lambda t, p: ["experts", "eval", "--checkpoint", str(p), "--registry", str(t / "r.json")],
    "train expert --resume": lambda t, p: [
        "train", "expert", "--task", "HGPT-Cluster-900", "--resume", str(p), "--num-envs", "2", "--threads", "1"
    ],
    "distill (a teacher)": lambda t, p: [
        "distill", "--registry", str(_registry(t, p.name)), "--log-root", str(t / "d")
    ],
    "sim2sim eval --policy": lambda t, p: [
        "sim2sim", "eval", "--policy", str(p), "--motions", str(t / "walk.csv"), "--out", str(t / "e.json")
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_runs_code_from_a_checkpoint(command, hostile, walk_manifest, lafan1_dir, capsys):
    path, marker = hostile
    shutil.copy(lafan1_dir / "walk1_subject1.csv", path.parent / "walk.csv")
    code = main(COMMANDS[command](path.parent, path))
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "Traceback" not in err, err
    assert "refused, not loaded" in err, err  # the safety refusal, not "not a TorchScript policy" or the like
    assert not marker.exists(), "the checkpoint's payload ran"


# Paths in files stay inside their folder -----------------------------------------------------------------------


def test_manifest_entries_stay_inside_the_data_root(tmp_path, lafan1_dir):
    from humanoid_gpt.catalog.manifests import load_manifest
    from humanoid_gpt.catalog.refs import ManifestError

    root = tmp_path / "data"
    (root / "g1_motions").mkdir(parents=True)
    shutil.copy(lafan1_dir / "walk1_subject1.csv", root / "g1_motions" / "walk.csv")
    shutil.copy(lafan1_dir / "walk1_subject1.csv", tmp_path / "outside.csv")
    entries = ["g1_motions/walk.csv", str(tmp_path / "outside.csv")]  # absolute paths are the user's (or ours)
    for escape in ("../outside.csv", "g1_motions/../../outside.csv@0:10", "../..//etc::clip"):
        path = tmp_path / "clusters.json"
        path.write_text(json.dumps({"schema_version": 3, "clusters": {"000": entries, "001": [escape]}}))
        manifest = load_manifest(path)
        assert [r.path for r in manifest.clip_refs("000", root)] == [root / entries[0], Path(entries[1])]
        with pytest.raises(ManifestError) as refused:
            manifest.clip_refs("001", root)
        message = str(refused.value)
        assert f"{path}: cluster '001': bad entry {escape!r}" in message and "leads out of the data root" in message


def test_manifest_entries_beside_the_manifest_stay_in_its_outputs_tree(tmp_path):
    """Schema 4's entries relative to the manifest's folder (./, ../) may name its folder and its siblings, never a
    path out of the outputs tree it was saved in."""
    from humanoid_gpt.catalog.manifests import load_manifest
    from humanoid_gpt.catalog.refs import ManifestError

    tree = tmp_path / "outputs"
    (tree / "experts").mkdir(parents=True)
    path = tree / "experts" / "clusters.json"
    for escape in ("../../etc/passwd", "./../../../etc/passwd@0:10", "../..::clip", "../corpus/../../x.csv"):
        path.write_text(json.dumps({"schema_version": 4, "clusters": {"000": ["../corpus::c"], "001": [escape]}}))
        with pytest.raises(ManifestError) as refused:
            load_manifest(path)
        message = str(refused.value)
        assert f"{path}: cluster '001': entry {escape!r}: " in message, message
        assert f"leads out of the manifest's folder and its siblings ({tree})" in message, message
        assert f"Fix: move the file under {tree}, or name it by its absolute path" in message, message


def test_registry_checkpoints_stay_inside_the_registry_folder(tmp_path):
    from humanoid_gpt.experts.registry import ExpertRegistry, RegistryError

    folder = tmp_path / "experts"
    folder.mkdir()
    beside = ExpertRegistry.load(_registry(folder, "run/model_9.pt"))
    assert beside.experts["900"].checkpoint == str(folder / "run" / "model_9.pt")
    absolute = ExpertRegistry.load(_registry(folder, "/srv/experts/model_9.pt"))  # `hgpt experts eval` writes these
    assert absolute.experts["900"].checkpoint == "/srv/experts/model_9.pt"
    path = _registry(folder, "../../../../etc/passwd")
    with pytest.raises(RegistryError) as refused:
        ExpertRegistry.load(path)
    message = str(refused.value)
    assert (
        f"{path}: expert of cluster '900': checkpoint: '../../../../etc/passwd' leads out of the registry's" in message
    )


def test_config_sources_stay_inside_the_data_root(tmp_path):
    from humanoid_gpt.governance.corpus_config import load_corpus_config
    from humanoid_gpt.hme.config import HMEConfig

    root = tmp_path / "data"
    source = {"name": "x", "path": "g1_motions/../../secrets/*.csv", "format": "g1", "licence": "CC0"}
    config = tmp_path / "corpus.yaml"
    config.write_text(json.dumps({"sources": [source], "output": str(tmp_path / "out")}))
    with pytest.raises(ConfigError, match=rf"{config}: sources\[0\]\.path: .* leads out of the data root"):
        load_corpus_config(config, data_root=root)
    inside = load_corpus_config({"sources": [{**source, "path": "g1_motions/*.csv"}], "output": "o"}, data_root=root)
    assert inside.sources[0].path == "g1_motions/*.csv"
    with pytest.raises(ConfigError, match=r"HME config: sources\[1\]: '\.\./x' leads out of the data root"):
        HMEConfig.from_dict({"sources": ["g1_motions", "../x"], "data_root": str(root)})
    assert HMEConfig.from_dict({"sources": ["/anywhere/g1"], "data_root": str(root)}).sources == ["/anywhere/g1"]


def test_corpus_shards_and_exports_stay_inside_their_folders(tiny_corpus, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from humanoid_gpt.catalog.store import CorpusError, CorpusIndex, export_clips

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus[0], corpus)
    index = json.loads((corpus / "index.json").read_text())
    name = index["shards"][0]["name"]
    index["shards"][0]["name"] = "../../../elsewhere"
    (corpus / "index.json").write_text(json.dumps(index))
    with pytest.raises(CorpusError, match=r"index\.json: shard: '\.\./\.\./\.\./elsewhere' leads out of"):
        CorpusIndex.read(corpus).verify()
    index["shards"][0]["name"] = name
    (corpus / "index.json").write_text(json.dumps(index))
    table = pq.read_table(corpus / "manifest.parquet")
    rows = table.to_pylist()
    stored = next(r for r in rows if r["shard"] is not None)
    stored["source"] = "../../../escaped"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), corpus / "manifest.parquet")
    with pytest.raises(CorpusError, match=rf"manifest\.parquet: clip '{stored['clip_id']}': .* leads out of the"):
        export_clips(corpus, tmp_path / "out" / "clips")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "out").exists()


# The source holds no unsafe loader -------------------------------------------------------------------------------

SCANNED = ("source", "mujoco_backend", "tasks", "scripts")
RESTRICTED_UNPICKLER = REPO / "source" / "humanoid_gpt" / "motion" / "pickles.py"
UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "joblib.load", "dill.load", "dill.loads"}


def unsafe_loads(source: str, path: Path) -> list[str]:
    """Calls in ``source`` that can run code from a file: ``torch.load`` without ``weights_only=True``, pickle's (and
    joblib's, dill's) loaders outside the restricted unpickler, any ``allow_pickle`` but ``False``, YAML's unsafe
    loaders; and imports that would hide such a call under another name."""
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle", "joblib", "dill", "yaml"):
            hidden = [a.name for a in node.names if a.name in ("load", "loads", "Unpickler", "unsafe_load")]
            found += [f"{path}:{node.lineno}: from {node.module} import {n}" for n in hidden]
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        flags = {k.arg: k.value for k in node.keywords}
        weights_only = flags.get("weights_only")
        allow_pickle = flags.get("allow_pickle")
        if (
            (name == "torch.load" and not (isinstance(weights_only, ast.Constant) and weights_only.value is True))
            or (name in UNPICKLERS and path != RESTRICTED_UNPICKLER)
            or (
                allow_pickle is not None
                and not (isinstance(allow_pickle, ast.Constant) and allow_pickle.value is False)
            )
            or name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load")
        ):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_source_holds_no_loader_that_runs_code_from_a_file():
    found = [hit for folder in SCANNED for path in sorted((REPO / folder).rglob("*.py"))
             for hit in unsafe_loads(path.read_text(), path)]  # fmt: skip
    assert not found, "loaders that can run code from a file (see docs/security.md):\n" + "\n".join(found)


def test_the_source_check_catches_each_unsafe_loader():
    sample = """
torch.load(p)
torch.load(p, weights_only=False)
torch.load(p, map_location="cpu", weights_only=True)
pickle.load(f)
pickle.loads(b)
np.load(p, allow_pickle=True)
np.load(p, allow_pickle=False)
yaml.load(text)
from torch import load
"""
    found = unsafe_loads(sample, Path("sample.py"))
    assert sorted(int(hit.split(":")[1]) for hit in found) == [2, 3, 5, 6, 7, 9, 10], found
    assert unsafe_loads("pickle.load(f)", RESTRICTED_UNPICKLER) == []
