"""Deployment exports: ONNX parity with PyTorch on real observations, the harness running them, TensorRT where
it imports, foreign files refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from students_support import TRACKING, export_tiny


@pytest.mark.parametrize("kind", ["gpt", "tcn", "mlp"])
def test_onnx_exports_match_pytorch_on_real_observations(kind, g1, real_tokens, tmp_path):
    import onnxruntime as ort

    from humanoid_gpt.deploy.onnx import read_onnx_metadata

    model, paths = export_tiny(kind, g1, real_tokens, tmp_path)
    meta = read_onnx_metadata(paths["streaming"])
    assert meta["joint_names"] == list(g1.joint_names) and meta["context"] == model.cfg.context
    assert np.allclose(meta["kp"], g1.kp) and np.allclose(meta["default_joint_pos"], g1.default_joint_pos)
    assert meta["control_dt"] == 0.02 and meta["action_relative_to_reference"] is True
    assert [tuple(p) for p in meta["obs_layout"]][0] == ("base_ang_vel", 3)
    stream = ort.InferenceSession(str(paths["streaming"]), providers=["CPUExecutionProvider"])
    window = ort.InferenceSession(str(paths["windowed"]), providers=["CPUExecutionProvider"])
    cache, count = model.initial_state(2)
    ort_cache, ort_count = cache.numpy(), count.numpy()
    worst = 0.0
    with torch.no_grad():
        for t in range(real_tokens.shape[1]):
            action, cache, count = model.step(real_tokens[:, t], cache, count)
            feeds = {"obs": real_tokens[:, t].numpy(), "cache": ort_cache, "count": ort_count}
            ort_action, ort_cache, ort_count = stream.run(None, feeds)
            tokens = real_tokens[:, max(0, t - model.cfg.context + 1) : t + 1].numpy()
            (windowed,) = window.run(None, {"tokens": tokens})
            worst = max(worst, np.abs(ort_action - action.numpy()).max(), np.abs(windowed - action.numpy()).max())
    assert worst < 1e-5


def test_the_harness_runs_a_student_in_torch_and_onnx_runtime_alike(g1, walk_clip, exported):
    from humanoid_gpt.deploy.onnx import OnnxMetadataError
    from humanoid_gpt.deploy.policies import make_policy
    from humanoid_gpt_mujoco.evaluate import evaluate

    clips = [walk_clip.slice(0, 120), walk_clip.slice(300, 420)]
    checkpoint = exported["streaming"].parent / "s.pt"
    runs = {
        str(spec): evaluate(g1, clips, lambda env, spec=spec: make_policy(str(spec), env), TRACKING, progress=False)
        for spec in (checkpoint, exported["streaming"])
    }
    torch_run, onnx_run = runs.values()
    assert torch_run["aggregate"]["episodes"] == 2
    for key in ("sr_percent", "mean_episode_steps", "mpjpe", "mpkpe_mm"):
        assert torch_run["aggregate"][key] == pytest.approx(onnx_run["aggregate"][key], rel=1e-4, abs=1e-6), key
    with pytest.raises(OnnxMetadataError, match="windowed graph"):
        evaluate(g1, clips, lambda env: make_policy(str(exported["windowed"]), env), TRACKING, progress=False)


def test_tensorrt_engines_build_from_the_streaming_onnx(exported, tmp_path):
    import json

    from humanoid_gpt.deploy.tensorrt import build_engine
    from humanoid_gpt.errors import HGPTError

    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(HGPTError, match="needs the `tensorrt` Python package and an NVIDIA GPU"):
            build_engine(exported["streaming"], tmp_path / "s.engine")
        pytest.skip("tensorrt is not installed (it needs an NVIDIA GPU): checked the error, skipped the build")
    engine = build_engine(exported["streaming"], tmp_path / "s.engine", max_batch=16)
    assert engine.stat().st_size > 0
    assert json.loads((tmp_path / "s.engine.json").read_text())["joint_names"][0] == "left_hip_pitch_joint"


def test_the_harness_runs_a_tensorrt_engine_like_its_onnx(g1, walk_clip, exported, tmp_path):
    """``--policy student.engine`` validates the engine itself: same metrics as the ONNX it was built from. Where
    TensorRT or a GPU is absent, the engine policy refuses clearly (checked) and the run is skipped."""
    import torch

    from humanoid_gpt.deploy.policies import make_policy
    from humanoid_gpt.deploy.tensorrt import build_engine
    from humanoid_gpt.errors import HGPTError
    from humanoid_gpt_mujoco.evaluate import evaluate

    clips = [walk_clip.slice(0, 120)]
    engine = tmp_path / "s.engine"
    with pytest.raises(HGPTError, match="engine .* does not exist"):
        evaluate(g1, clips, lambda env: make_policy(str(engine), env), TRACKING, progress=False)
    try:
        import tensorrt  # noqa: F401

        ready = torch.cuda.is_available()
    except ImportError:
        ready = False
    if not ready:
        engine.write_bytes(b"not an engine")
        with pytest.raises(HGPTError, match="metadata s.engine.json is missing"):
            evaluate(g1, clips, lambda env: make_policy(str(engine), env), TRACKING, progress=False)
        from humanoid_gpt.deploy.onnx import read_onnx_metadata

        (tmp_path / "s.engine.json").write_text(json.dumps(read_onnx_metadata(exported["streaming"])))
        with pytest.raises(HGPTError, match="tensorrt|CUDA GPU"):
            evaluate(g1, clips, lambda env: make_policy(str(engine), env), TRACKING, progress=False)
        pytest.skip("tensorrt or a CUDA GPU is missing: checked the refusals, skipped the engine run")
    build_engine(exported["streaming"], engine, max_batch=16)
    results = {
        spec: evaluate(g1, clips, lambda env, spec=spec: make_policy(str(spec), env), TRACKING, progress=False)
        for spec in (engine, exported["streaming"])
    }
    a, b = (r["aggregate"] for r in results.values())
    assert a["sr_percent"] == b["sr_percent"] and abs(a["mpkpe_mm"] - b["mpkpe_mm"]) < 1.0


def test_onnx_files_without_our_metadata_are_refused(tmp_path):
    from humanoid_gpt.deploy.onnx import OnnxMetadataError, read_onnx_metadata

    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(path), dynamo=False)
    with pytest.raises(OnnxMetadataError, match="no humanoid_gpt metadata"):
        read_onnx_metadata(path)
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(OnnxMetadataError, match="not a readable ONNX"):
        read_onnx_metadata(tmp_path / "junk.onnx")


def test_hgpt_export_onnx_checks_parity_like_the_main_job(g1, real_tokens, tmp_path, monkeypatch, capsys):
    """The command and the main job export through one function: the streaming graph is stepped against PyTorch,
    and an export that differs beyond the tolerance is refused."""
    import humanoid_gpt.deploy.export as export
    from humanoid_gpt.cli import main

    export_tiny("gpt", g1, real_tokens, tmp_path)
    assert main(["export", "onnx", str(tmp_path / "s.pt"), "--out", str(tmp_path / "x"), "--parity-steps", "8"]) == 0
    assert "s.stream.onnx: max |ONNX - PyTorch| =" in capsys.readouterr().out
    monkeypatch.setattr(export, "parity", lambda *args: 1.0)
    assert main(["export", "onnx", str(tmp_path / "s.pt"), "--out", str(tmp_path / "y")]) == 2
    assert "differs from PyTorch by 1.00e+00 > the parity tolerance 1e-05" in capsys.readouterr().err
