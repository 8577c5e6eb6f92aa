"""The native MuJoCo backend: real physics on the real G1 under the core MDP."""

import pytest
import torch

from humanoid_gpt.deploy.policies import ReferencePolicy, ZeroPolicy
from humanoid_gpt.mdp.config import RandomizationConfig, TrackingConfig
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt_mujoco.env import MujocoTrackingEnv
from humanoid_gpt_mujoco.evaluate import evaluate

EVAL = TrackingConfig(randomization=RandomizationConfig.off())


@pytest.fixture(scope="module")
def walk_lib(g1, walk_clip):
    return MotionLibrary.from_clips([walk_clip.slice(0, 30 * 20)], g1)


@pytest.fixture(scope="module")
def env(g1, walk_lib):
    env = MujocoTrackingEnv(g1, walk_lib, EVAL, num_envs=4, seed=0)
    yield env
    env.close()


def test_observation_groups(env):
    obs = env.get_observations()
    assert obs["student"].shape == (4, 136)
    for group in ("policy", "critic", "teacher"):
        assert obs[group].shape == (4, 520)
    assert torch.isfinite(obs["teacher"]).all()


def test_reset_places_the_robot_on_the_reference(env):
    env.reset()
    robot = env.robot_state()
    ref = env.library.frames(env.clock.clip_ids, env.clock.motion_time)
    # MuJoCo's own kinematics of the placed robot equals the library's FK of the reference, to a millimetre (the
    # reset clamps the few reference angles that sit just past a joint limit).
    clamped = ref.joint_pos.clamp(env.consts.joint_lower, env.consts.joint_upper)
    torch.testing.assert_close(robot.joint_pos, clamped, atol=1e-6, rtol=0)
    torch.testing.assert_close(robot.body_pos, ref.body_pos, atol=1e-3, rtol=0)
    torch.testing.assert_close(robot.body_lin_vel, ref.body_lin_vel, atol=1e-2, rtol=0)


def test_falls_terminate_and_reference_pd_tracks_better_than_a_fixed_pose(g1, walk_lib):
    """Real physics: open-loop PD cannot balance a walking G1, so episodes end in falls (failures, not time-outs)
    within about a second, never in crashes; PD towards the reference still tracks the joints better than PD
    towards the default pose."""

    def run(policy_cls) -> tuple[int, float]:
        env = MujocoTrackingEnv(g1, walk_lib, EVAL, num_envs=4, seed=1)
        policy = policy_cls(env) if policy_cls is ReferencePolicy else policy_cls(29)
        obs, falls = env.get_observations(), 0
        for _ in range(100):
            obs, rew, done, extras = env.step(policy(obs))
            assert torch.isfinite(rew).all()
            falls += int((done & ~extras["time_outs"]).sum())
        env.close()
        records = env.metrics.records
        return falls, sum(r.sums["mpjpe"] for r in records) / sum(r.steps for r in records)

    ref_falls, ref_mpjpe = run(ReferencePolicy)
    zero_falls, zero_mpjpe = run(ZeroPolicy)
    assert ref_falls >= 4 and zero_falls >= 4
    assert ref_mpjpe < 0.5 * zero_mpjpe


def test_clip_end_is_a_time_out(g1, walk_clip):
    lib = MotionLibrary.from_clips([walk_clip.slice(0, 10)], g1)  # 0.3 s: ends before the robot can fall
    env = MujocoTrackingEnv(g1, lib, EVAL, num_envs=2, seed=0)
    env.clock.motion_time[:] = 0.0
    obs, timed_out = env.get_observations(), False
    for _ in range(20):
        obs, _, done, extras = env.step(ReferencePolicy(env)(obs))
        if done.any():
            timed_out = bool(extras["time_outs"][done].all())
            break
    env.close()
    assert timed_out


def test_unstable_physics_resets_and_is_counted(env):
    env.reset()
    env.worlds.datas[2].qvel[:] = 1e12  # a diverging world
    obs, rew, done, extras = env.step(torch.zeros(4, 29))
    assert done[2] and not extras["time_outs"][2]
    assert extras["log"]["/termination/unstable_resets"] >= 1
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()


def test_randomized_training_env_runs(g1, walk_lib):
    env = MujocoTrackingEnv(g1, walk_lib, TrackingConfig(randomization=RandomizationConfig(latency=True)), 3, seed=0)
    masses = {float(m.body_mass[m.body("torso_link").id]) for m in env.worlds.models}
    assert len(masses) == 3  # each env got its own torso mass
    for _ in range(10):
        obs, rew, done, _ = env.step(torch.zeros(3, 29))
    assert torch.isfinite(obs["student"]).all()
    env.close()


def test_evaluation_plays_each_clip_once(g1, walk_clip, lafan1_dir):
    from humanoid_gpt.motion import load_clip

    clips = [walk_clip.slice(0, 45), load_clip(lafan1_dir / "run1_subject2.csv", g1=g1).slice(0, 45)]
    result = evaluate(g1, clips, ReferencePolicy, num_envs=2, progress=False)
    assert set(result["clips"]) == {"walk1_subject1", "run1_subject2"}
    assert result["aggregate"]["episodes"] == 2
    for metrics in result["clips"].values():
        assert metrics["episodes"] == 1 and metrics["mpkpe_mm"] >= 0 and metrics["mpjpe"] < 0.5


def test_bad_input_fails_at_build(g1, walk_clip):
    short = MotionLibrary.from_clips([walk_clip.slice(0, 2)], g1)
    with pytest.raises(ValueError, match="shorter than two control steps"):
        MujocoTrackingEnv(g1, short, EVAL, num_envs=1)
    wrong_bodies = MotionLibrary.from_clips([walk_clip.slice(0, 50)], g1, body_names=("pelvis", "torso_link"))
    with pytest.raises(ValueError, match="the task needs"):
        MujocoTrackingEnv(g1, wrong_bodies, EVAL, num_envs=1)
