"""The MDP maths on real reference states: perfect tracking scores highest, errors lower the reward, falls
terminate, and heading-frame quantities ignore a rigid drift of the whole body."""

import dataclasses

import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp import observations as O
from humanoid_gpt.mdp.actions import actions_for_targets, joint_targets
from humanoid_gpt.mdp.config import RandomizationConfig, RewardConfig, RobotTensors, TrackingConfig
from humanoid_gpt.mdp.reset import reset_state_from_reference
from humanoid_gpt.mdp.rewards import REWARD_TERMS, TrackingStep, compute_rewards
from humanoid_gpt.mdp.terminations import compute_failures
from humanoid_gpt.metrics import ERROR_KEYS, EpisodeRecord, seconds, step_errors, summarize
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.state import KinematicState


@pytest.fixture(scope="module")
def setup(g1, walk_clip):
    cfg = TrackingConfig()
    lib = MotionLibrary.from_clips([walk_clip.slice(0, 600)], g1, cfg.keypoints)
    ids = torch.zeros(64, dtype=torch.long)
    times = torch.linspace(0.5, 15.0, 64, dtype=torch.float64)
    return cfg, RobotTensors.build(g1, cfg), lib.frames(ids, times)


def _step(ref: KinematicState, robot: KinematicState, consts) -> TrackingStep:
    zeros = torch.zeros_like(ref.joint_pos)
    return TrackingStep(robot, ref, zeros, zeros, consts)


def _rigid(state: KinematicState, yaw: float, shift: tuple[float, float]) -> KinematicState:
    """The same motion turned by ``yaw`` about world z and shifted in xy."""
    q = torch.tensor([torch.cos(torch.tensor(yaw / 2)), 0.0, 0.0, torch.sin(torch.tensor(yaw / 2))])
    d = torch.tensor([shift[0], shift[1], 0.0])
    rot = lambda v: R.quat_apply(q.expand(v.shape[:-1] + (4,)), v)  # noqa: E731
    qm = lambda x: R.quat_mul(q.expand(x.shape), x)  # noqa: E731
    return dataclasses.replace(
        state,
        root_pos=rot(state.root_pos) + d,
        root_quat=qm(state.root_quat),
        root_lin_vel=rot(state.root_lin_vel),
        root_ang_vel=rot(state.root_ang_vel),
        body_pos=rot(state.body_pos) + d,
        body_quat=qm(state.body_quat),
        body_lin_vel=rot(state.body_lin_vel),
        body_ang_vel=rot(state.body_ang_vel),
    )


def test_student_observation_layout(setup):
    cfg, consts, ref = setup
    obs = O.student_observation(ref, ref, torch.zeros(64, 29), consts)
    assert obs.shape == (64, 136) == (64, O.STUDENT_DIM)
    parts = dict(zip([n for n, _ in O.STUDENT_LAYOUT], obs.split([k for _, k in O.STUDENT_LAYOUT], -1), strict=True))
    torch.testing.assert_close(parts["joint_pos_rel"], parts["ref_joint_pos_rel"])
    torch.testing.assert_close(parts["yaw_error_cos_sin"], torch.tensor([1.0, 0.0]).expand(64, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(parts["xy_error_heading"], torch.zeros(64, 2))
    assert parts["projected_gravity"][:, 2].max() < -0.9  # walking upright
    privileged = O.privileged_observation(ref, ref, torch.zeros(64, 29), consts)
    assert privileged.shape == (64, O.privileged_dim(len(cfg.keypoints)))


def test_perfect_tracking_earns_the_full_tracking_reward(setup):
    cfg, consts, ref = setup
    s = _step(ref, ref, consts)
    for name in ("anchor_pos", "anchor_rot", "keypoint_pos", "keypoint_rot", "keypoint_lin_vel", "keypoint_ang_vel"):
        torch.testing.assert_close(REWARD_TERMS[name](s, cfg.rewards), torch.ones(64), atol=1e-4, rtol=0)
    failed, _ = compute_failures(s, cfg.terminations)
    assert not failed.any()


def test_errors_lower_the_reward_and_a_drop_terminates(setup):
    cfg, consts, ref = setup
    perfect, _ = compute_rewards(_step(ref, ref, consts), cfg.rewards, cfg.control_dt)
    sagging = dataclasses.replace(ref, joint_pos=ref.joint_pos + 0.2, body_pos=ref.body_pos - torch.tensor([0, 0, 0.1]))
    worse, _ = compute_rewards(_step(ref, sagging, consts), cfg.rewards, cfg.control_dt)
    assert (worse < perfect).all()
    fallen = dataclasses.replace(ref, body_pos=ref.body_pos - torch.tensor([0, 0, 0.3]))
    failed, flags = compute_failures(_step(ref, fallen, consts), cfg.terminations)
    assert failed.all() and flags["anchor_height"].all()


def test_tilt_and_nan_terminate(setup):
    cfg, consts, ref = setup
    tilt = R.rotvec_to_quat(torch.tensor([1.2, 0.0, 0.0])).expand(64, 14, 4)
    tilted = dataclasses.replace(ref, body_quat=R.quat_mul(tilt, ref.body_quat))
    _, flags = compute_failures(_step(ref, tilted, consts), cfg.terminations)
    assert flags["anchor_tilt"].all()
    broken = dataclasses.replace(ref, joint_pos=ref.joint_pos.clone())
    broken.joint_pos[3, 5] = float("nan")
    failed, flags = compute_failures(_step(ref, broken, consts), cfg.terminations)
    assert flags["non_finite"].tolist() == [i == 3 for i in range(64)] and failed[3]


def test_xy_drift_terminates_only_when_enabled(setup):
    cfg, consts, ref = setup
    shift = torch.tensor([0.7, 0.0, 0.0])
    drifted = dataclasses.replace(ref, root_pos=ref.root_pos + shift, body_pos=ref.body_pos + shift)
    _, flags = compute_failures(_step(ref, drifted, consts), cfg.terminations)
    assert not flags["root_xy_drift"].any()  # off by default
    strict = dataclasses.replace(cfg.terminations, root_xy_drift=0.5)
    failed, flags = compute_failures(_step(ref, drifted, consts), strict)
    assert flags["root_xy_drift"].all() and failed.all()
    _, flags = compute_failures(_step(ref, ref, consts), strict)
    assert not flags["root_xy_drift"].any()


def test_heading_frame_ignores_rigid_drift(setup):
    cfg, consts, ref = setup
    robot = dataclasses.replace(ref, joint_pos=ref.joint_pos + 0.05, body_pos=ref.body_pos + 0.02)
    base = step_errors(robot, ref)
    # The whole robot turned by 30 degrees and moved 1 m: the heading-frame MPKPE does not change...
    drifted = step_errors(_rigid(robot, 0.5, (1.0, -0.5)), ref)
    torch.testing.assert_close(drifted["mpkpe_mm"], base["mpkpe_mm"], atol=1e-2, rtol=0)
    assert (drifted["g_mpkpe_mm"] > base["g_mpkpe_mm"] + 500).all()  # ...the world-frame one does
    # Moving both sides together changes nothing at all, rewards included.
    both = step_errors(_rigid(robot, 0.5, (1.0, -0.5)), _rigid(ref, 0.5, (1.0, -0.5)))
    torch.testing.assert_close(both["g_mpkpe_mm"], base["g_mpkpe_mm"], atol=1e-2, rtol=0)
    r0, _ = compute_rewards(_step(ref, robot, consts), cfg.rewards, cfg.control_dt)
    r1, _ = compute_rewards(
        _step(_rigid(ref, 0.5, (1, -0.5)), _rigid(robot, 0.5, (1, -0.5)), consts), cfg.rewards, 0.02
    )
    torch.testing.assert_close(r0, r1, atol=1e-5, rtol=0)


def test_metric_units(setup):
    _, _, ref = setup
    robot = dataclasses.replace(
        ref, joint_pos=ref.joint_pos + 0.1, body_pos=ref.body_pos + torch.tensor([0.0, 0.0, 0.05])
    )
    e = step_errors(robot, ref)
    torch.testing.assert_close(e["mpjpe"], torch.full((64,), 0.1), atol=1e-5, rtol=0)
    torch.testing.assert_close(e["g_mpkpe_mm"], torch.full((64,), 50.0), atol=1e-3, rtol=0)


def test_gaussian_kernels_are_beyondmimics(setup):
    """rewards.form "gaussian": exp(-mean_k |e_k|^2 / sigma^2), so a 0.3 m shift of every keypoint (sigma) gives
    e^-1 and perfect tracking 1; the anchor term sees the world-frame drift the keypoint terms ignore."""
    cfg, consts, ref = setup
    rewards = dataclasses.replace(cfg.rewards, form="gaussian")
    perfect = _step(ref, ref, consts)
    for name in ("anchor_pos", "anchor_rot", "keypoint_pos", "keypoint_rot", "keypoint_lin_vel", "keypoint_ang_vel"):
        torch.testing.assert_close(REWARD_TERMS[name](perfect, rewards), torch.ones(64), atol=1e-4, rtol=0)
    lowered = dataclasses.replace(ref, body_pos=ref.body_pos - torch.tensor([0.0, 0.0, 0.3]))
    for name in ("anchor_pos", "keypoint_pos"):
        value = REWARD_TERMS[name](_step(ref, lowered, consts), rewards)
        torch.testing.assert_close(value, torch.full((64,), float(torch.exp(torch.tensor(-1.0)))), atol=1e-4, rtol=0)
    drifted = _step(ref, _rigid(ref, 0.0, (1.0, 0.0)), consts)
    assert REWARD_TERMS["keypoint_pos"](drifted, rewards).min() > 0.999
    assert REWARD_TERMS["anchor_pos"](drifted, rewards).max() < 1e-3  # exp(-1 / 0.09): no gradient back to the path
    with pytest.raises(ConfigError, match="rewards.form"):
        dataclasses.replace(cfg, rewards=dataclasses.replace(cfg.rewards, form="l2")).validate()


def test_failed_windows_report_seconds_until_the_fall():
    sums = dict.fromkeys(ERROR_KEYS, 0.0)
    records = [EpisodeRecord(0, True, 500, sums), EpisodeRecord(0, False, 100, sums)]
    records.append(EpisodeRecord(1, False, 200, sums))
    out = seconds(summarize(records), 0.02)
    assert out["sr_percent"] == pytest.approx(100 / 3)
    assert out["fail_s"] == pytest.approx(3.0)  # the two falls, after 2 s and 4 s
    assert out["mean_episode_s"] == pytest.approx(800 / 3 * 0.02)
    clean = seconds(summarize(records[:1]), 0.02)
    assert clean["fail_s"] is None and clean["mean_episode_s"] == pytest.approx(10.0)


def test_action_maps_round_trip(setup):
    _, consts, ref = setup
    a = torch.randn(64, 29, generator=torch.Generator().manual_seed(0))
    for base in (None, ref.joint_pos):
        torch.testing.assert_close(actions_for_targets(joint_targets(a, consts, base), consts, base), a)
    torch.testing.assert_close(joint_targets(torch.zeros(1, 29), consts), consts.default_joint_pos.unsqueeze(0))


def test_reference_state_initialization(setup):
    _, consts, ref = setup
    exact = reset_state_from_reference(ref, consts)
    torch.testing.assert_close(exact.root_pos, ref.root_pos)
    torch.testing.assert_close(exact.joint_pos, ref.joint_pos.clamp(consts.joint_lower, consts.joint_upper))
    noisy = reset_state_from_reference(ref, consts, RandomizationConfig(), torch.Generator().manual_seed(0))
    assert (noisy.joint_pos != exact.joint_pos).any()
    assert (noisy.joint_pos >= consts.joint_lower).all() and (noisy.joint_pos <= consts.joint_upper).all()
    torch.testing.assert_close(noisy.root_quat.norm(dim=-1), torch.ones(64))


def test_impossible_configs_are_refused(g1):
    with pytest.raises(ValueError, match="whole multiple"):
        RobotTensors.build(g1, TrackingConfig(control_dt=0.02, physics_dt=0.003))
    with pytest.raises(ValueError, match="among the keypoints"):
        RobotTensors.build(g1, TrackingConfig(anchor_body="head_link"))
    with pytest.raises(ValueError, match=r"keypoint bodies \['head_link'\] are not in the robot model"):
        keypoints = (*TrackingConfig().keypoints, "head_link")
        RobotTensors.build(g1, TrackingConfig(keypoints=keypoints, rewards=RewardConfig(keypoint_weights=(1.0,) * 15)))
