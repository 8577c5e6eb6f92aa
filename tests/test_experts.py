"""Expert training on the native MuJoCo backend: PPO changes the policy, checkpoints resume exactly, bad
checkpoints and mismatched resumes fail before any step."""

import json

import pytest
import torch

from humanoid_gpt.backends import load_backend
from humanoid_gpt.catalog.manifests import cluster_of
from humanoid_gpt.catalog.refs import ManifestError
from humanoid_gpt.experts.checkpoint import load_checkpoint
from humanoid_gpt.experts.train import ExpertRun, plan_expert, train_expert
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.runs import CheckpointError, latest_checkpoint

TASK = "HGPT-Cluster-900"


def _run(tmp_path, **kw) -> ExpertRun:
    defaults = dict(
        num_envs=8,
        max_iterations=2,
        save_interval=1,
        log_root=tmp_path / "runs",
        run_name="r",
        threads=1,
        tracking=TrackingConfig(randomization=RandomizationConfig.off()),
    )
    return ExpertRun(TASK, **{**defaults, **kw})


def _weights(path) -> dict:
    return load_checkpoint(path)["actor_state_dict"]


def test_ppo_iterations_change_the_policy_and_checkpoints_describe_themselves(tmp_path, g1, walk_manifest, capsys):
    run_dir = train_expert(_run(tmp_path), g1)
    printed = capsys.readouterr().out  # one progress line per iteration, rsl_rl's statistics in TensorBoard
    assert f"{TASK} iteration 2/2: " in printed and "samples/s" in printed and "ETA 0:00" in printed
    assert "Learning iteration" not in printed and list(run_dir.glob("events.out.tfevents.*"))
    first, last = _weights(run_dir / "model_0.pt"), _weights(latest_checkpoint(run_dir))
    changed = [k for k in first if not torch.equal(first[k], last[k])]
    assert changed, "two PPO iterations left the actor unchanged"
    meta = load_checkpoint(latest_checkpoint(run_dir))["infos"]["hgpt"]
    assert meta["task"] == TASK and meta["obs_dims"]["policy"] == 520 and meta["num_actions"] == 29
    config = json.loads((run_dir / "config.json").read_text())
    assert config["ppo"]["algorithm"]["learning_rate"] == 1e-3 and config["meta"]["config_hash"] == meta["config_hash"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".part")]


def test_resume_restores_the_exact_training_state(tmp_path, g1, walk_manifest):
    from humanoid_gpt.experts.runner import ExpertRunner

    run_dir = train_expert(_run(tmp_path), g1)
    ckpt = latest_checkpoint(run_dir)
    saved = load_checkpoint(ckpt)
    config = json.loads((run_dir / "config.json").read_text())
    env = load_backend("mujoco", g1=g1).expert_env(plan_expert(_run(tmp_path)))
    torch.manual_seed(123)  # a different init and RNG than the saved run
    runner = ExpertRunner(env, config["ppo"], None, config["meta"])
    assert runner.resume(ckpt) == saved["iter"] + 1
    now = runner.alg.save()
    for key in ("actor_state_dict", "critic_state_dict"):  # weights and observation normalizers
        for name, value in saved[key].items():
            torch.testing.assert_close(now[key][name], value, rtol=0, atol=0)
    assert now["optimizer_state_dict"]["state"].keys() == saved["optimizer_state_dict"]["state"].keys()
    torch.testing.assert_close(
        now["optimizer_state_dict"]["state"][0]["exp_avg"], saved["optimizer_state_dict"]["state"][0]["exp_avg"]
    )
    rng = saved["infos"]["hgpt"]["rng"]
    assert torch.equal(torch.get_rng_state(), rng["torch"]) and torch.equal(env.generator.get_state(), rng["env"])
    env.close()


def test_a_kill_while_saving_loses_only_that_checkpoint(tmp_path, g1, walk_manifest, monkeypatch):
    real_save, calls = torch.save, []

    def dying_save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the process dies while writing the second checkpoint
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train_expert(_run(tmp_path, max_iterations=3), g1)
    monkeypatch.setattr(torch, "save", real_save)
    run_dir = tmp_path / "runs" / TASK / "r"
    assert sorted(p.name for p in run_dir.glob("model_*")) == ["model_0.pt"]  # no half file posing as model_1
    resumed = train_expert(_run(tmp_path, max_iterations=3, resume=run_dir), g1)
    assert load_checkpoint(latest_checkpoint(resumed))["iter"] == 2


def test_bad_checkpoints_and_resumes_fail_before_training(tmp_path, g1, walk_manifest):
    run_dir = train_expert(_run(tmp_path, max_iterations=1), g1)
    ckpt = latest_checkpoint(run_dir)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="broken.pt: not a readable checkpoint"):
        load_checkpoint(broken)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": 1}, foreign)
    with pytest.raises(CheckpointError, match="not a humanoid_gpt expert checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="obs_dims is"):
        load_checkpoint(ckpt, {"obs_dims": {"policy": 99, "critic": 99, "student": 136, "teacher": 520}})
    relative = TrackingConfig(action_relative_to_reference=True, randomization=RandomizationConfig.off())
    with pytest.raises(CheckpointError, match="action_relative_to_reference differ"):
        train_expert(_run(tmp_path, resume=run_dir, tracking=relative), g1)
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        empty = tmp_path / "empty"
        empty.mkdir()
        train_expert(_run(tmp_path, resume=empty), g1)


def test_task_ids_name_a_cluster():
    assert cluster_of("HGPT-Cluster-042") == "042" and cluster_of("HGPT-Cluster-042-Play") == "042"
    with pytest.raises(ManifestError, match="not a cluster task"):
        cluster_of("HGPT-Distill")


def test_expert_evaluation_and_registry(tmp_path, g1, walk_manifest, walk_clip):
    from humanoid_gpt.experts.evaluation import evaluate_expert
    from humanoid_gpt.experts.registry import ExpertRegistry, RetentionRule

    run_dir = train_expert(_run(tmp_path, max_iterations=1), g1)
    ckpt = latest_checkpoint(run_dir)
    result = evaluate_expert(g1, ckpt, [walk_clip.slice(0, 60), walk_clip.slice(300, 360)], progress=False)
    metrics = result["aggregate"]
    assert metrics["episodes"] == 2 and 0 <= metrics["sr_percent"] <= 100 and metrics["mean_episode_s"] > 0
    registry = ExpertRegistry(rule=RetentionRule())
    record = registry.add("900", TASK, ckpt, "hash", metrics)
    assert not record.retained  # one PPO iteration does not make a stable expert
    registry.add(
        "901",
        "HGPT-Cluster-901",
        ckpt,
        "hash",
        {"sr_percent": 95.0, "mpkpe_mm": 40.0, "mpjpe": 0.08, "mean_episode_s": 9.5},
    )
    back = ExpertRegistry.load(registry.save(tmp_path / "experts.json"))
    assert set(back.retained()) == {"901"} and back.experts["900"].reasons


def test_retention_rule_keeps_and_drops():
    from humanoid_gpt.experts.registry import RetentionRule

    rule = RetentionRule(min_sr_percent=80, max_mpkpe_mm=60, max_mpjpe=0.15, min_mean_episode_s=4)
    good = {"sr_percent": 90.0, "mpkpe_mm": 45.0, "mpjpe": 0.1, "mean_episode_s": 8.0}
    assert rule.judge(good) == (True, [])
    for key, bad in (("sr_percent", 50.0), ("mpkpe_mm", 80.0), ("mpjpe", 0.3), ("mean_episode_s", 1.0)):
        kept, reasons = rule.judge({**good, key: bad})
        assert not kept and len(reasons) == 1
    assert not rule.judge({})[0]  # missing metrics never pass


@pytest.mark.parametrize("executor", ["local", "ray", "submitit"])
def test_train_all_fans_out(tmp_path, walk_manifest, executor, monkeypatch):
    """Every cluster of a manifest trained as independent jobs: in process, on a local Ray instance, and through
    submitit's local executor (what runs as SLURM jobs on a cluster)."""
    import shutil

    from humanoid_gpt.catalog.manifests import load_manifest
    from humanoid_gpt.experts.fanout import cluster_runs, train_all

    # Two one-clip clusters, so the fan-out has more than one job.
    data = json.loads(walk_manifest.read_text())
    data["clusters"]["901"] = ["g1_motions/lafan1/run1_subject2.csv"]
    walk_manifest.write_text(json.dumps(data))
    template = _run(tmp_path, num_envs=4, max_iterations=1, run_name=executor)
    runs = cluster_runs(load_manifest(walk_manifest), template)
    folders = train_all(runs, executor, slurm_folder=tmp_path / "slurm")
    assert [r.task for r in runs] == ["HGPT-Cluster-900", "HGPT-Cluster-901"]
    for folder, run in zip(folders, runs, strict=True):
        ckpt = latest_checkpoint(tmp_path / "runs" / run.task / executor)
        assert ckpt is not None and str(ckpt.parent) == folder
        assert load_checkpoint(ckpt)["infos"]["hgpt"]["task"] == run.task
    if executor == "ray":
        import ray

        ray.shutdown()
    shutil.rmtree(tmp_path / "runs")


def test_an_interrupted_run_resumed_equals_the_uninterrupted_run_bit_for_bit(tmp_path, g1, walk_manifest):
    """The checkpoint holds the learner and the envs' episodes (worlds, clocks, actions in flight, generators), so a
    run stopped after iteration 1 and resumed ends with the same weights as one that never stopped."""
    randomized = TrackingConfig(action_relative_to_reference=True)  # sensor noise and pushes draw random numbers
    whole = train_expert(_run(tmp_path, max_iterations=4, run_name="whole", tracking=randomized), g1)
    part = train_expert(_run(tmp_path, max_iterations=2, run_name="part", tracking=randomized), g1)
    resumed = train_expert(_run(tmp_path, max_iterations=4, run_name="part", resume=part, tracking=randomized), g1)
    a, b = load_checkpoint(whole / "model_3.pt"), load_checkpoint(resumed / "model_3.pt")
    for key in a["actor_state_dict"]:
        assert torch.equal(a["actor_state_dict"][key], b["actor_state_dict"][key]), key
    assert torch.equal(a["infos"]["hgpt"]["env_state"]["motion_time"], b["infos"]["hgpt"]["env_state"]["motion_time"])
