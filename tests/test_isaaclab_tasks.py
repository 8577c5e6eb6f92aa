"""The Isaac Lab extension, kit-less on CPU (Newton + MuJoCo-Warp): task registration, a real tracking env built
from the core MDP, terminations, and agreement with the native MuJoCo backend.

One simulation context for the module; each test builds its own small env (the first build takes 5-40 s here, Warp
compiling its kernels; later ones about a second)."""

import contextlib

import pytest
import torch

pytest.importorskip("isaaclab", reason="Isaac Lab is installed by scripts/setup_env.sh")

import humanoid_gpt_tasks  # noqa: E402  (sets up local assets before Isaac Lab reads them)
from humanoid_gpt.catalog.manifests import default_manifest, task_id  # noqa: E402
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig  # noqa: E402
from humanoid_gpt.motion import load_clip  # noqa: E402
from humanoid_gpt.motion.library import MotionLibrary  # noqa: E402
from humanoid_gpt_mujoco.env import MujocoTrackingEnv  # noqa: E402
from humanoid_gpt_tasks.tracking_env_cfg import make_tracking_env_cfg  # noqa: E402

TRACKING = TrackingConfig(randomization=RandomizationConfig.off())
NUM_ENVS = 2


@pytest.fixture(scope="module")
def walk_path(lafan1_dir):
    return str(lafan1_dir / "walk1_subject1.csv")


@pytest.fixture(scope="module")
def simulation(walk_path):
    from isaaclab.app import launch_simulation

    cfg = make_tracking_env_cfg([walk_path], TRACKING, num_envs=NUM_ENVS)
    with launch_simulation(cfg, {"headless": True, "device": "cpu"}):
        yield


@contextlib.contextmanager
def tracking_env(walk_path, tracking=TRACKING, num_envs=NUM_ENVS, groups=("student", "teacher")):
    from isaaclab.envs import ManagerBasedRLEnv

    env = ManagerBasedRLEnv(cfg=make_tracking_env_cfg([walk_path], tracking, num_envs=num_envs, groups=groups))
    try:
        env.reset()
        yield env
    finally:
        env.close()  # one env at a time per simulation context


@pytest.fixture
def isaac_env(simulation, walk_path):
    with tracking_env(walk_path) as env:
        yield env


def _reference_actions(cmd) -> torch.Tensor:
    return (cmd.ref_next().joint_pos - cmd.consts.default_joint_pos) / cmd.consts.action_scale


def test_every_cluster_has_tasks(lafan1_dir):
    import gymnasium as gym

    for cluster in default_manifest().clusters:
        for suffix in ("", "-Play"):
            assert task_id(cluster) + suffix in gym.registry
    assert "HGPT-Distill" in gym.registry and "HGPT-Distill" in humanoid_gpt_tasks.TASK_IDS


def test_a_fresh_cache_makes_the_ground_and_then_converts_the_g1(tmp_path):
    """On a fresh cache, importing the tasks makes the ground USD (the process's first stage) before the G1 is
    converted: OpenUSD reads its schema plugins at that first stage, so the Newton and MuJoCo schemas the converter
    applies must be registered before it (a new machine's first run failed on NewtonSceneAPI). A process of its own:
    this one's USD plugins are read already."""
    import os
    import subprocess
    import sys

    code = (
        "import humanoid_gpt_tasks\n"
        "from humanoid_gpt.robot import load_g1\n"
        "from humanoid_gpt.robot.usd import g1_usd\n"
        "print(g1_usd(load_g1()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ISAACSIM_ASSET_ROOT"} | {"HGPT_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "isaac_assets").is_dir() and done.stdout.strip().endswith(".usda")


def test_a_broken_manifest_stops_the_import_naming_it(tmp_path):
    """Registering the active manifest's tasks is part of importing the package: a manifest that cannot be read is an
    error naming it, not a warning and an empty task list (a process of its own: this one imported the package)."""
    import os
    import subprocess
    import sys

    broken = tmp_path / "clusters.json"
    broken.write_text("{not json")
    env = os.environ | {"HGPT_CLUSTER_MANIFEST": str(broken)}
    done = subprocess.run(
        [sys.executable, "-c", "import humanoid_gpt_tasks"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and str(broken) in done.stderr, done.stderr[-2000:]


def test_registry_configs_resolve(lafan1_dir):
    from isaaclab_tasks.utils import load_cfg_from_registry

    manifest = default_manifest()
    lafan = next(c for c, name in manifest.meta["folders"].items() if name == "lafan1")
    cfg = load_cfg_from_registry(task_id(lafan), "env_cfg_entry_point")
    assert len(cfg.commands.motion.motion_files) == 40 and cfg.decimation == 4
    play = load_cfg_from_registry(task_id(lafan) + "-Play", "env_cfg_entry_point")
    assert play.scene.num_envs == 16 and not play.commands.motion.tracking.randomization.push
    agent = load_cfg_from_registry(task_id(lafan), "rsl_rl_cfg_entry_point")
    assert agent.obs_groups == {"actor": ["policy"], "critic": ["critic"]}
    distill = load_cfg_from_registry("HGPT-Distill", "env_cfg_entry_point")
    assert {"student", "teacher"} <= set(vars(distill.observations))
    assert len(distill.commands.motion.motion_files) == sum(len(v) for v in manifest.clusters.values())


def test_physics_presets():
    from isaaclab_newton.physics import NewtonCfg
    from isaaclab_physx.physics import PhysxCfg

    from humanoid_gpt_tasks.tracking_env_cfg import physics_cfg

    assert isinstance(physics_cfg("newton", 0.005, "cpu").physics, NewtonCfg)
    physx = physics_cfg("physx", 0.005, "cuda:0")  # built here, runs where Isaac Sim and a GPU are
    assert isinstance(physx.physics, PhysxCfg) and physx.dt == 0.005


def test_observations_rewards_and_a_fall(isaac_env):
    env = isaac_env
    cmd = env.command_manager.get_term("motion")
    obs = env.observation_manager.compute()
    assert obs["student"].shape == (NUM_ENVS, 136) and obs["teacher"].shape == (NUM_ENVS, 520)
    weights = TRACKING.rewards
    best = (
        sum(
            getattr(weights, n)
            for n in (
                "anchor_pos",
                "anchor_rot",
                "keypoint_pos",
                "keypoint_rot",
                "keypoint_lin_vel",
                "keypoint_ang_vel",
            )
        )
        * env.step_dt
    )
    for _ in range(3):
        obs, rew, terminated, truncated, extras = env.step(_reference_actions(cmd))
        assert torch.isfinite(rew).all() and (rew <= best + 1e-6).all()
    # Lay robot 0 on its side: the tilt termination must end its episode as a failure, not a time-out.
    from humanoid_gpt.rotations import wxyz_to_xyzw

    pose = env.scene["robot"].data.root_link_pose_w.torch[:1].clone()
    pose[:, 2] = 0.2
    pose[:, 3:] = wxyz_to_xyzw(torch.tensor([[0.7071, 0.7071, 0.0, 0.0]]))
    env.scene["robot"].write_root_link_pose_to_sim_index(root_pose=pose, env_ids=torch.tensor([0]))
    obs, rew, terminated, truncated, extras = env.step(_reference_actions(cmd))
    assert terminated[0] and not truncated[0]
    assert extras["log"]["Episode_Termination/anchor_tilt"] > 0


def test_backends_agree(isaac_env, walk_path, g1):
    """Same clip, same start, same actions: Isaac Lab (Newton/MuJoCo-Warp, float32) and the native harness (C MuJoCo,
    float64) give the same observations and rewards. Both integrate the same MJCF with the same solver settings, so
    they differ by float precision and Warp's contact solver details: a few 1e-3 over half a second, measured."""
    env = isaac_env
    cmd = env.command_manager.get_term("motion")
    lib = MotionLibrary.from_clips([load_clip(walk_path, g1=g1)], g1)
    mj = MujocoTrackingEnv(g1, lib, TRACKING, num_envs=NUM_ENVS, seed=0)
    ids, clips = torch.arange(NUM_ENVS), torch.zeros(NUM_ENVS, dtype=torch.long)
    times = torch.tensor([1.0, 5.0], dtype=torch.float64)
    cmd.start_at(ids, clips, times)
    env.action_manager.reset(ids)
    mj.start_at(ids, clips, times)
    noise = 0.2 * torch.randn(25, NUM_ENVS, 29, generator=torch.Generator().manual_seed(0))
    for k in range(25):
        actions = _reference_actions(cmd) + noise[k]
        o_isaac, r_isaac, terminated, truncated, _ = env.step(actions)
        o_mj, r_mj, done_mj, _ = mj.step(actions)
        assert not (terminated | truncated).any() and not done_mj.any(), f"an episode ended at step {k}"
        torch.testing.assert_close(o_isaac["student"], o_mj["student"], atol=2e-2, rtol=0)
        torch.testing.assert_close(o_isaac["teacher"], o_mj["teacher"], atol=5e-2, rtol=0)
        torch.testing.assert_close(r_isaac, r_mj, atol=1e-3, rtol=0)
    mj.close()


def test_randomization_events_apply(simulation, walk_path):
    """Friction, torso mass, gains and pushes: the core's draws, written by the event adapters, in the core's ranges."""
    from humanoid_gpt_tasks.mdp import shape_friction
    from humanoid_gpt_tasks.mdp.events import core_draws

    dr = RandomizationConfig(latency=True)
    with tracking_env(walk_path, TRACKING, num_envs=1) as env:
        nominal = env.scene["robot"]
        torso = nominal.find_bodies("torso_link")[0][0]
        base_mass = float(nominal.data.body_mass.torch[0, torso])
        base_kp = float(nominal.data.joint_stiffness.torch[0, 0])
        base_friction = shape_friction(env)[0]
    with tracking_env(walk_path, TrackingConfig(randomization=dr), num_envs=4, groups=("policy",)) as env:
        robot = env.scene["robot"]
        ratio = shape_friction(env)[:, base_friction > 0] / base_friction[base_friction > 0]  # (envs, shapes)
        multiplier = ratio[:, 0]
        torch.testing.assert_close(ratio, multiplier[:, None].expand_as(ratio), atol=1e-5, rtol=0)  # one per env
        assert multiplier.std() > 0
        assert (multiplier >= dr.friction_range[0] - 1e-5).all() and (multiplier <= dr.friction_range[1] + 1e-5).all()
        drawn = core_draws(env, dr)[0]  # the core decides: friction and latency are its draws
        torch.testing.assert_close(multiplier, drawn.friction, atol=1e-5, rtol=0)
        assert torch.equal(env.action_manager.get_term("joint_pos")._delay.cpu(), drawn.latency_steps)
        offsets = robot.data.body_mass.torch[:, torso] - base_mass
        assert offsets.std() > 0
        assert (offsets >= dr.torso_mass_offset[0] - 1e-4).all() and (offsets <= dr.torso_mass_offset[1] + 1e-4).all()
        scale = robot.data.joint_stiffness.torch[:, 0] / base_kp
        assert scale.std() > 0 and (scale >= dr.gain_scale[0] - 1e-4).all() and (scale <= dr.gain_scale[1] + 1e-4).all()
        for _ in range(5):
            obs, rew, *_ = env.step(torch.zeros(4, 29))
        assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()


def test_ppo_on_isaaclab_changes_the_policy(simulation, tmp_path, walk_manifest, g1):
    """The expert runner and checkpoints work on the Isaac Lab backend too (a few iterations, few envs)."""
    from humanoid_gpt.experts.checkpoint import load_checkpoint
    from humanoid_gpt.experts.train import ExpertRun, train_expert
    from humanoid_gpt.runs import latest_checkpoint

    run = ExpertRun(
        "HGPT-Cluster-900",
        backend="isaaclab",
        num_envs=4,
        max_iterations=2,
        save_interval=1,
        log_root=tmp_path,
        run_name="i",
        tracking=TRACKING,
    )
    run_dir = train_expert(run, g1)
    first = load_checkpoint(run_dir / "model_0.pt")["actor_state_dict"]
    last = load_checkpoint(latest_checkpoint(run_dir))
    assert last["infos"]["hgpt"]["obs_dims"]["policy"] == 520
    assert any(not torch.equal(first[k], last["actor_state_dict"][k]) for k in first)


def test_dagger_on_isaaclab_distill(simulation, tmp_path, walk_manifest, g1, untrained_experts, registry_of):
    """HGPT-Distill: the student drives Isaac Lab envs, the cluster's expert labels them, checkpoints are written."""
    from humanoid_gpt.students.checkpoint import load_student
    from humanoid_gpt.students.dagger import DaggerConfig
    from humanoid_gpt.students.distill import DistillRun, distill, plan_distill
    from humanoid_gpt_tasks.backend import plan_env_cfg

    registry = registry_of(untrained_experts[:1], clusters=("900",))
    registry.save(tmp_path / "experts.json")
    dagger = DaggerConfig(
        num_envs=4,
        steps_per_iteration=8,
        max_iterations=2,
        batch_windows=4,
        updates_per_iteration=2,
        warmup_updates=1,
        save_interval=1,
    )
    run = DistillRun(
        tmp_path / "experts.json",
        backend="isaaclab",
        context=8,
        log_root=tmp_path,
        run_name="d",
        dagger=dagger,
    )
    plan = plan_distill(run)
    cfg = plan_env_cfg(plan)
    assert cfg.commands.motion.motion_weights == [1.0] and plan.clip_cluster == (0,)
    run_dir = distill(run, g1)
    first, _ = load_student(run_dir / "student_1.pt", g1)
    last, meta = load_student(run_dir / "student_2.pt", g1, context=8)
    assert meta["teachers"] == {"900": str(untrained_experts[0])}
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), last.parameters(), strict=True))
