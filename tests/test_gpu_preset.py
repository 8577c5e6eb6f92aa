"""The gpu preset's code path, run for real: ``hgpt main --preset gpu --override configs/main/gpu-smoke.yaml`` changes
only sizes (and the device), and on a tiny corpus every stage runs through the Isaac Lab backend, kit-less on
Newton with Warp's CPU device, the TensorRT engine skipped with its reason where this machine cannot build one. So a
GPU machine's first run meets no code that never ran."""

import json
from pathlib import Path

import pytest
import yaml
from test_main_job import TINY

from humanoid_gpt.jobs.config import load_main_config, preset_path

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "main" / "gpu-smoke.yaml"

MAY_CHANGE = (
    "name",
    "description",
    "device",  # the machine's, not the recipe's
    "corpus.num_cpus",
    "hme.k",
    "hme.pae.",
    "experts.num_envs",
    "experts.max_iterations",
    "experts.save_interval",
    "experts.eval_windows",
    "experts.threads",
    "experts.retention.",  # untrained experts meet no real rule: the file says why
    "distill.threads",
    "distill.dagger.num_envs",
    "distill.dagger.max_iterations",
    "distill.dagger.batch_windows",
    "distill.dagger.updates_per_iteration",
    "distill.dagger.save_interval",
    "evaluate.max_windows",
    "evaluate.num_envs",
    "evaluate.threads",
    "evaluate.video_seconds",
)
"""What the smoke file may change: sizes, the device and the retention rule (prefixes end with a dot)."""

SMALLEST = {
    "corpus": {  # the main job test's corpus: two LAFAN1 performers (one held out) and one CMU take (unseen)
        "sources": TINY["corpus"]["sources"],
        "splits": TINY["corpus"]["splits"],
        "warps": {"factors": [1.1]},
    },
    # The smoke file's sizes, smaller still: each costs seconds of Warp CPU physics or of MuJoCo evaluation.
    "experts": {"max_iterations": 1, "eval_windows": 1, "eval_window_seconds": 2.0},
    "distill": {"dagger": {"num_envs": 2, "max_iterations": 1, "batch_windows": 2}},
    "evaluate": {"window_seconds": 2.0, "max_windows": 1, "num_envs": 1, "video_seconds": 1.0},
}
"""The smallest version of the smoke run: a tiny corpus and sizes below the smoke file's."""


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_the_smoke_overrides_change_only_sizes_of_the_gpu_preset():
    gpu = _flat(load_main_config(preset_path("gpu")).to_dict())
    smoke_cfg = load_main_config(preset_path("gpu"), [SMOKE])
    smoke = _flat(smoke_cfg.to_dict())
    changed = sorted(k for k in gpu.keys() | smoke.keys() if gpu.get(k) != smoke.get(k))
    assert "experts.num_envs" in changed and [k for k in changed if not _may_change(k)] == []
    assert smoke_cfg.backend == "isaaclab" and smoke_cfg.export.tensorrt and smoke_cfg.corpus["executor"] == "ray"
    assert smoke_cfg.source == f"{preset_path('gpu')} + {SMOKE}"


def _may_change(key: str) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in MAY_CHANGE)


def test_an_override_that_would_drop_a_preset_value_is_refused(tmp_path):
    from humanoid_gpt.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experts": {"clusters": {"count": 2}}}))
    with pytest.raises(
        ConfigError,
        match=r"bad.yaml: experts.clusters: a mapping cannot merge into the preset's value 'all'",
    ):
        load_main_config(preset_path("gpu"), [bad])
    bad.write_text(yaml.safe_dump({"distill": {"dagger": {"steps_per_iteration": 16}}}))
    with pytest.raises(ConfigError, match=r"gpu.yaml \+ .*bad.yaml: distill \(gpt-s-kv\): --steps-per-iteration 16"):
        load_main_config(preset_path("gpu"), [bad])


@pytest.mark.isaaclab
def test_the_gpu_preset_runs_every_stage_through_isaac_lab(tmp_path, g1, one_torch_thread):
    pytest.importorskip("isaaclab", reason="the gpu preset's backend: Isaac Lab is installed by scripts/setup_env.sh")
    import dataclasses

    from humanoid_gpt.deploy.tensorrt import tensorrt_unavailable
    from humanoid_gpt.jobs.pipeline import run_main

    tiny = tmp_path / "smallest.yaml"
    tiny.write_text(yaml.safe_dump(SMALLEST))
    cfg = dataclasses.replace(load_main_config(preset_path("gpu"), [SMOKE, tiny]), output=str(tmp_path / "out"))
    out = run_main(cfg, g1)

    # Experts and students trained in Isaac Lab envs (every cluster, the deployed student and its three baselines).
    runs = [json.loads(p.read_text())["run"] for p in (out / "experts" / "runs").rglob("config.json")]
    runs += [json.loads(p.read_text())["run"] for p in (out / "distill" / "runs").rglob("config.json")]
    clusters = json.loads((out / "experts" / "stage.json").read_text())["summary"]["clusters"]
    assert len(runs) == len(clusters) + 4 and len(clusters) == 2
    assert {(r["backend"], r["device"]) for r in runs} == {("isaaclab", "cpu")}
    students = json.loads((out / "distill" / "stage.json").read_text())["summary"]["students"]
    assert set(students) == {"gpt-s-kv", "gpt-s", "mlp", "tcn"}

    # The export: parity checked; the TensorRT engine built, or skipped with the reason said at the start and after.
    export = json.loads((out / "export" / "stage.json").read_text())["summary"]
    assert export["parity_max_abs"] <= 1e-5
    log = (out / "main.log").read_text()
    report = (out / "report" / "report.md").read_text()
    reason = tensorrt_unavailable()
    if reason is None:
        assert (out / "export" / export["tensorrt"]).is_file()
    else:
        assert export["tensorrt_skipped"] == reason
        assert f"export.tensorrt: the export stage will skip the TensorRT engine on this machine: {reason}" in log
        assert f"[export] TensorRT engine skipped: {reason}" in log
        assert f"TensorRT engine: skipped ({reason})" in report

    # sim2sim scored the exported GPT-S-KV, the baselines and the teachers; the report holds the table.
    results = json.loads((out / "sim2sim" / "results.json").read_text())["results"]
    assert set(results) == {"held_out", "unseen"}
    assert {"gpt-s-kv (ONNX)", "gpt-s", "mlp", "tcn"} <= set(results["held_out"])
    assert "| gpt-s-kv (ONNX) |" in report and (out / "report" / "report.html").is_file()
