"""The main job end to end on real data at toy budgets: every stage runs, the report holds the paper's table, an
interrupted stage resumes from its checkpoint, a rerun skips what is done and a changed setting reruns what depends
on it, saying why. The presets shipped with the package are valid configs."""

import json
from pathlib import Path

import pytest
import yaml

from humanoid_gpt import settings
from humanoid_gpt.catalog.manifests import load_manifest
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.jobs.config import PRESETS, load_main_config, preset_path
from humanoid_gpt.jobs.pipeline import run_main

TINY = {
    "schema_version": 1,
    "name": "tiny",
    "description": "A test run: toy budgets on two LAFAN1 takes and one CMU take.",
    "seed": 3,
    "corpus": {
        "name": "tiny",
        "fps": 50,
        "sources": [
            {
                "name": "lafan1",
                "path": "g1_motions/lafan1/walk1_subject[15].csv",
                "format": "g1",
                "licence": "CC BY-NC-ND 4.0",
                "performer": {"namespace": "lafan1"},
            },
            {
                "name": "cmu",
                "path": "mocap/cmu_asf_amc/02_01.amc",
                "format": "amc",
                "licence": "CMU terms",
                "retarget": {"skeleton": "cmu", "fps": 50},
                "performer": {"regex": "^(\\d+)_", "namespace": "cmu"},
            },
            {"name": "absent", "optional": True, "path": "mocap/nothing_here/*.bvh", "format": "bvh", "licence": "-"},
        ],
        "warps": {"factors": []},
        "splits": {"train": 0.9, "val": 0.0, "test": 0.1, "assign": {"lafan1/subject5": "test"}},
    },
    "hme": {
        "partitions": "all",
        "k": 2,
        "kmeans_restarts": 1,
        "pae": {"epochs": 1, "min_steps": 0, "max_windows": 256, "batch_size": 64, "threads": 1},
    },
    "experts": {
        "clusters": 1,
        "num_envs": 8,
        "max_iterations": 2,
        "save_interval": 1,
        "threads": 1,
        "eval_windows": 2,
        "eval_window_seconds": 2.0,
        "retention": {"min_sr_percent": 0, "max_mpkpe_mm": 1e6, "max_mpjpe": 1e3, "min_mean_episode_s": 0},
    },
    "distill": {
        "student": "gpt-s",
        "context": 8,
        "threads": 1,
        "dagger": {
            "num_envs": 4,
            "steps_per_iteration": 16,
            "max_iterations": 2,
            "beta_iterations": 1,
            "batch_windows": 8,
            "updates_per_iteration": 1,
            "save_interval": 1,
        },
    },
    "export": {"parity_steps": 16},
    "evaluate": {
        "unseen_sources": ["cmu"],
        "window_seconds": 2.0,
        "max_windows": 2,
        "num_envs": 2,
        "threads": 1,
        "video_seconds": 1.0,
    },
}


def _config(tmp_path: Path, **changes):
    data = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_main_config(path)
    import dataclasses

    return dataclasses.replace(cfg, output=str(tmp_path / "out"))


def test_main_job_runs_every_stage_resumes_and_reruns_only_what_changed(tmp_path, g1, monkeypatch, one_torch_thread):
    import humanoid_gpt.experts.evaluation as evaluation

    cfg = _config(tmp_path)
    out = cfg.output_dir()

    # A crash after the experts trained (their evaluation is the next thing the stage does).
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(evaluation, "evaluate_expert", crash)
        with pytest.raises(KeyboardInterrupt):
            run_main(cfg, g1)
    assert (out / "corpus" / "stage.json").is_file() and not (out / "experts").exists()
    assert list((out / "experts.work" / "runs").rglob("model_1.pt"))

    run_main(cfg, g1)
    log = (out / "main.log").read_text()
    assert "[experts] first run; resuming an interrupted attempt" in log
    assert "(resuming from model_1.pt)" in log  # the trained expert is not trained again
    assert "source 'absent' is not present" in log  # an optional source without files is left out

    # The report: the paper's metrics for the exported student, its teacher and the two baselines, on both sets.
    report = (out / "report" / "report.md").read_text()
    results = json.loads((out / "sim2sim" / "results.json").read_text())
    for set_name, windows in results["windows"].items():
        assert windows and all(("subject5" if set_name == "held_out" else "02_01") in w for w in windows)
        rows = results["results"][set_name]
        peer = "peer twist2_1017_25k.onnx (twist2)"  # a released tracker, by default when the data root holds it
        has_peer = (settings.data_root() / "policies/twist2/twist2_1017_25k.onnx").is_file()
        assert set(rows) == {
            "gpt-s (ONNX)",
            "teacher HGPT-Cluster-" + rows_cluster(out),
            "gpt-s untrained",
            "open-loop reference",
        } | ({peer} if has_peer else set())
        for metrics in rows.values():
            assert 0.0 <= metrics["sr_percent"] <= 100.0 and metrics["mpkpe_mm"] > 0
    assert "| gpt-s (ONNX) |" in report and "MPKPE (mm)" in report and "one window is 50.0 points of SR" in report
    assert not has_peer or f"| {peer} |" in report
    html = (out / "report" / "report.html").read_text()
    assert "<video" in html and "<table>" in html
    assert (out / "report" / "curves.png").stat().st_size > 10_000
    assert (out / "sim2sim" / "student.mp4").stat().st_size > 1000

    # The stages hand over real artefacts: no held-out or unseen clip in the clusters; the ONNX matches PyTorch.
    manifest = json.loads((out / "hme" / "clusters.json").read_text())
    entries = [e for clips in manifest["clusters"].values() for e in clips]
    assert entries and not [e for e in entries if "/cmu/" in e or "/test/" in e]
    # Experts and distillation train on those clusters as clips of the corpus (its cached kinematics), not files.
    as_corpus = json.loads((out / "experts" / "clusters_corpus.json").read_text())
    corpus_clips = [e for clips in as_corpus["clusters"].values() for e in clips]
    # Written relative to the manifest's folder (schema 4), so the outputs folder can move; read back absolute.
    assert as_corpus["schema_version"] == 4 and len(corpus_clips) == len(entries)
    assert all(e.startswith("../corpus/corpus::lafan1/") for e in corpus_clips)
    loaded = load_manifest(out / "experts" / "clusters_corpus.json").clusters
    assert all(e.startswith(f"{out / 'corpus' / 'corpus'}::lafan1/") for clips in loaded.values() for e in clips)
    runs = [*(out / "experts" / "runs").rglob("config.json"), *(out / "distill" / "runs").rglob("config.json")]
    manifests = {Path(json.loads(r.read_text())["run"]["manifest"]).name for r in runs}
    assert len(runs) >= 2 and manifests == {"clusters_corpus.json"}
    export = json.loads((out / "export" / "stage.json").read_text())["summary"]
    assert export["parity_max_abs"] <= 1e-5
    from humanoid_gpt.experts.registry import ExpertRegistry

    registry = ExpertRegistry.load(out / "experts" / "registry.json")  # relative paths survive the publish
    assert all(Path(r.checkpoint).is_file() for r in registry.experts.values())

    # A rerun skips everything; a changed evaluation setting reruns sim2sim and the report only, saying why.
    before = (out / "main.log").read_text()
    run_main(cfg, g1)
    rerun = (out / "main.log").read_text()[len(before) :]
    assert rerun.count("skipped (done, inputs unchanged)") == 7
    changed = _config(tmp_path, evaluate__max_windows=1)
    run_main(changed, g1)
    last = (out / "main.log").read_text()[len(before) + len(rerun) :]
    assert last.count("skipped (done, inputs unchanged)") == 5
    assert "[sim2sim] inputs changed: evaluate.max_windows" in last


def test_main_job_distills_from_a_released_tracker_without_training_experts(
    tmp_path, g1, twist2_file, one_torch_thread
):
    """A lab that owns a tracker skips the hours of PPO: distill.teacher labels the states, the students act under its
    actuation, and the report scores the teacher beside them on the same windows (once, though it is also a peer)."""
    from humanoid_gpt.deploy.policies import policy_setup

    cfg = _config(tmp_path, distill__teacher=str(twist2_file))
    out = run_main(cfg, g1, until="sim2sim")
    log = (out / "main.log").read_text()
    assert "[experts] none trained: distill.teacher" in log and not list((out / "experts").rglob("model_*.pt"))
    students = json.loads((out / "distill" / "stage.json").read_text())["summary"]["students"]
    for key in ("checkpoint", "untrained"):  # the "before" row acts as the trained student does
        setup = policy_setup(str(out / "distill" / students["gpt-s"][key]), g1)
        assert setup.g1.actuation.name == "twist2"
    export = json.loads((out / "export" / "stage.json").read_text())["summary"]
    assert policy_setup(str(out / "export" / export["streaming"]), g1).g1.actuation.name == "twist2"
    rows = json.loads((out / "sim2sim" / "results.json").read_text())["results"]["held_out"]
    assert set(rows) == {
        "gpt-s (ONNX)",
        "teacher twist2_1017_25k.onnx (twist2)",
        "gpt-s untrained",
        "open-loop reference",
    }


def test_main_job_refuses_a_teacher_it_cannot_run_before_any_stage(tmp_path, g1):
    cfg = _config(tmp_path, distill__teacher="no/such/policy.onnx")
    with pytest.raises(ConfigError, match="distill.teacher 'no/such/policy.onnx': no file at"):
        run_main(cfg, g1)
    assert not (cfg.output_dir() / "corpus").exists()


def rows_cluster(out: Path) -> str:
    return json.loads((out / "experts" / "stage.json").read_text())["summary"]["clusters"][0]


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_a_valid_config(name):
    cfg = load_main_config(preset_path(name))
    assert cfg.name == name and cfg.description


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"experts": {"num_envs": 8, "max_iteration": 2}}, "unknown field(s) ['max_iteration']"),
        ({"experts": {"num_envs": "many"}}, "experts: num_envs='many' is not a int"),
        ({"distill": {"dagger": {"num_env": 4}}}, "distill.dagger: unknown field(s) ['num_env']"),
        ({"distill": {"dagger": {"num_envs": 0}}}, "distill.dagger.num_envs=0 must be at least 1"),
        ({"corpus": {**TINY["corpus"], "num_cpus": 0}}, "corpus: num_cpus=0 must be at least 1"),
        ({"corpus": {**TINY["corpus"], "fps": "fast"}}, "corpus: fps='fast' is not a number"),
        ({"hme": {"pae": {"epochs": -1}}}, "hme: PAE settings out of range: epochs=-1"),
        ({"evaluate": {"unseen_sources": ["mocap"]}}, "evaluate.unseen_sources ['mocap'] are not corpus sources"),
        ({"hme": {"sources": ["x"]}}, "hme.sources is set by the main job"),
        ({"experts": {"max_iterations": 0}}, "experts.max_iterations=0 must be positive"),
    ],
)
def test_impossible_configs_are_refused_naming_the_file_and_field(tmp_path, change, message):
    data = {**json.loads(json.dumps(TINY)), **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_main_config(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_a_required_source_without_data_names_the_fix(tmp_path, g1):
    data = json.loads(json.dumps(TINY))
    data["corpus"]["sources"][0]["path"] = "g1_motions/not_fetched/*.csv"
    path = tmp_path / "missing.yaml"
    path.write_text(yaml.safe_dump(data))
    import dataclasses

    cfg = dataclasses.replace(load_main_config(path), output=str(tmp_path / "out"))
    with pytest.raises(ConfigError) as e:
        run_main(cfg, g1)
    assert "corpus source 'lafan1' names data that is missing" in str(e.value) and "HGPT_DATA_ROOT" in str(e.value)
    assert str(path) in str(e.value)


def test_the_experts_section_is_expert_run_options_with_the_jobs_defaults():
    """The preset's PPO options are ExpertRun's (same types, help and bounds); only their defaults are the job's."""
    import dataclasses
    import typing

    from humanoid_gpt.experts.train import ExpertRun
    from humanoid_gpt.jobs.config import RUN_OPTIONS, ExpertsStage

    section, run = typing.get_type_hints(ExpertsStage), typing.get_type_hints(ExpertRun)
    assert {"num_envs", "max_iterations", "relative_actions", "compile"} <= set(RUN_OPTIONS)
    assert all(section[name] == run[name] for name in RUN_OPTIONS)
    metadata = {f.name: f.metadata for f in dataclasses.fields(ExpertsStage)}
    assert all(metadata[name] == ExpertRun.__dataclass_fields__[name].metadata for name in RUN_OPTIONS)
    built = ExpertsStage().expert_run(task="HGPT-Cluster-000", seed=3)
    assert (built.max_iterations, built.save_interval, built.relative_actions, built.seed) == (100, 25, True, 3)
