"""Another lab's tracker as the DAgger teacher: rollouts run under its actuation, its labels are actions of that
env, and the student records the actuation so the harness and the export simulate it as its teacher was."""

import numpy as np
import pytest
import torch

from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.deploy.policies import policy_setup
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.jobs.distill import run_distill
from humanoid_gpt.students.checkpoint import read_student_checkpoint
from humanoid_gpt.students.dagger import DaggerConfig
from humanoid_gpt.students.distill import DistillRun


def test_one_dagger_iteration_with_twist2_labels_states(twist2_file, g1, lafan1_dir, tmp_path):
    manifest = ClusterManifest(clusters={"walk": [str(lafan1_dir / "walk1_subject1.csv")]})
    dagger = DaggerConfig(num_envs=4, steps_per_iteration=32, max_iterations=1, beta_iterations=1, batch_windows=4)
    run = DistillRun(teacher=twist2_file, student="mlp", log_root=tmp_path, run_name="r", threads=1, dagger=dagger)
    folder = run_distill(run, g1, manifest=manifest, on_iteration=lambda i, s: None)
    payload = read_student_checkpoint(folder / "student_1.pt")
    meta = payload["meta"]
    assert meta["actuation"]["name"] == "twist2" and meta["teachers"] == {"walk": str(twist2_file)}
    assert meta["tracking"]["action_relative_to_reference"] is False
    labels = torch.cat([torch.as_tensor(r["labels"]) for r in payload["buffer"]["rollouts"]])
    assert labels.shape[-1] == 29 and torch.isfinite(labels).all()
    # The teacher drove every step (beta 1): real, varied commands within its clip, not zeros.
    assert labels.abs().max() <= 10.0 and labels.std() > 0.05
    setup = policy_setup(str(folder / "student_1.pt"), g1)
    np.testing.assert_allclose(setup.g1.kp[:6], [100, 100, 100, 150, 40, 40])  # the student runs as its teacher did


def test_teachers_are_either_our_experts_or_a_tracker_file(twist2_file, g1, tmp_path):
    with pytest.raises(ConfigError, match="pass --registry .* or --teacher"):
        run_distill(DistillRun(), g1)
    with pytest.raises(ConfigError, match="pass --registry .* or --teacher"):
        run_distill(DistillRun(registry=tmp_path / "experts.json", teacher=twist2_file), g1)
    with pytest.raises(ConfigError, match="use --backend mujoco"):
        run_distill(DistillRun(teacher=twist2_file, backend="isaaclab"), g1)


def test_a_teacher_map_gives_each_cluster_its_own_tracker(twist2_file, g1, lafan1_dir, tmp_path):
    """One tracker per cluster (a lab's per-clip policies): the run records which file taught which cluster."""
    import shutil

    copy = tmp_path / "trackers" / "run_policy.onnx"
    copy.parent.mkdir()
    shutil.copy(twist2_file, copy)
    (tmp_path / "trackers" / "teachers.yaml").write_text(f"walk: {twist2_file}\nrun: run_policy.onnx\n")
    manifest = ClusterManifest(
        clusters={"walk": [str(lafan1_dir / "walk1_subject1.csv")], "run": [str(lafan1_dir / "run1_subject2.csv")]}
    )
    dagger = DaggerConfig(num_envs=4, steps_per_iteration=32, max_iterations=1, beta_iterations=1, batch_windows=4)
    run = DistillRun(
        teacher_map=tmp_path / "trackers" / "teachers.yaml", student="mlp", log_root=tmp_path, run_name="r",
        threads=1, dagger=dagger,
    )  # fmt: skip
    folder = run_distill(run, g1, manifest=manifest, on_iteration=lambda i, s: None)
    meta = read_student_checkpoint(folder / "student_1.pt")["meta"]
    assert meta["teachers"] == {"run": str(copy), "walk": str(twist2_file)} and meta["actuation"]["name"] == "twist2"


def test_each_env_takes_the_action_of_its_clusters_tracker():
    from humanoid_gpt.students.teachers import ForeignTeacher

    a, b = torch.zeros(4, 29), torch.ones(4, 29)
    teacher = ForeignTeacher(["a.onnx", "b.onnx", "a.onnx"], {"a.onnx": lambda _: a, "b.onnx": lambda _: b})
    actions = teacher.act(torch.zeros(4, 8), torch.tensor([0, 1, 2, 1]))
    assert actions[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_teacher_maps_are_checked_before_any_rollout(twist2_file, holosoma_file, g1, lafan1_dir, tmp_path):
    manifest = ClusterManifest(
        clusters={"walk": [str(lafan1_dir / "walk1_subject1.csv")], "run": [str(lafan1_dir / "run1_subject2.csv")]}
    )
    teachers = tmp_path / "teachers.yaml"
    teachers.write_text(f"jump: {twist2_file}\n")
    with pytest.raises(ConfigError, match=r"teachers.yaml: cluster 'jump' is not in the manifest"):
        run_distill(DistillRun(teacher_map=teachers), g1, manifest=manifest)
    teachers.write_text("walk: {path: policy.onnx}\n")
    with pytest.raises(ConfigError, match=r"teachers.yaml: cluster walk: .* is not a tracker file's path"):
        run_distill(DistillRun(teacher_map=teachers), g1, manifest=manifest)
    teachers.write_text("walk: missing.onnx\n")
    with pytest.raises(ConfigError, match=r"teachers.yaml: cluster walk: no tracker file at .*missing.onnx"):
        run_distill(DistillRun(teacher_map=teachers), g1, manifest=manifest)
    teachers.write_text(f"walk: {twist2_file}\nrun: {holosoma_file}\n")
    with pytest.raises(ConfigError, match="run under different actuations"):
        run_distill(DistillRun(teacher_map=teachers), g1, manifest=manifest)
    with pytest.raises(ConfigError, match="one kind of teacher.*one student learns one action space"):
        run_distill(DistillRun(registry=tmp_path / "experts.json", teacher_map=teachers), g1, manifest=manifest)
