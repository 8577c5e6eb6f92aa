"""Retargeting human mocap to the G1: feet on the floor, streaming = batch, no first-frame collapse, joint limits,
closeness to Unitree's retargeting of the same LAFAN1 take, CMU AMC, positions-only input, and clear failures.

Short slices keep the file fast (a few hundred frames per retarget)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from humanoid_gpt.governance.mocap import HumanMotion, read_mocap
from humanoid_gpt.governance.quality import (
    FootGeometry,
    clip_quality,
    collision_model,
    foot_tracks,
    keypoint_distance_mm,
)
from humanoid_gpt.governance.retarget import (
    G1_TARGETS,
    SKELETONS,
    ContactLock,
    Retargeter,
    RetargetError,
    RetargetWarning,
    load_mapping,
    retarget,
    retarget_to,
    write_result,
)
from humanoid_gpt.governance.retarget.contacts import FLAT, NONE, TOE
from humanoid_gpt.governance.retarget.filters import Smoother, gaussian_kernel, smooth_sequence
from humanoid_gpt.governance.retarget.targets import HumanFrames
from humanoid_gpt.motion.io import load_clip, read_g1_csv

WALK_FRAMES = 300


@pytest.fixture(scope="module")
def walk(lafan1_bvh_dir) -> HumanMotion:
    return read_mocap(lafan1_bvh_dir / "walk.bvh").slice(0, WALK_FRAMES)


@pytest.fixture(scope="module")
def walk_rt(walk, g1) -> Retargeter:
    return Retargeter.for_motion(walk, g1=g1)


@pytest.fixture(scope="module")
def walk_g1(walk, walk_rt):
    return walk_rt.retarget(walk)


@pytest.fixture(scope="module")
def cmodel(g1):
    return collision_model(g1)


# --- the table and its files ----------------------------------------------------------------------------------------


def test_correspondence_is_data_in_canonical_names():
    bodies = [t.body for t in G1_TARGETS]
    assert bodies[0] == "pelvis" and len(set(bodies)) == len(bodies)
    for t in G1_TARGETS:  # a target hangs from a body listed before it
        parent = t.chain[0] if t.chain else t.rigid
        assert parent is None or bodies.index(parent) < bodies.index(t.body)
    assert SKELETONS["cmu"].joints == {"left_wrist": "lwrist", "right_wrist": "rwrist"}


def test_mapping_file(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "name: mine\njoints: {left_wrist: LHand}\nweights: {pelvis: {pos: 3}}\noffsets: {pelvis: [1, 0, 0, 0]}\n"
    )
    corr = load_mapping(path)
    assert corr.name == "mine" and corr.joints == {"left_wrist": "LHand"}
    assert next(t for t in corr.targets() if t.body == "pelvis").pos == 3.0
    path.write_text("weights: {tail_link: {pos: 1}}\n")
    with pytest.raises(RetargetError, match=r"map.yaml.*unknown G1 bodies \['tail_link'\]"):
        load_mapping(path)


# --- LAFAN1 walk: floor, contacts, limits, first frame, Unitree -------------------------------------------------------


def test_walk_feet_on_floor_and_planted(walk, walk_rt, walk_g1, g1, cmodel):
    low, speed, _ = foot_tracks(walk_g1, g1, cmodel)
    assert low.min() > -0.01, f"a foot penetrates the floor by {-1000 * low.min():.1f} mm"
    # While the human's foot is planted, the G1's is on the floor and does not slide.
    frames = HumanFrames(walk.positions[:, walk_rt.joint_index], walk.rotations[:, walk_rt.joint_index])
    P, Q = smooth_sequence(walk_rt.smoother.kernel, frames.positions, frames.rotations)
    planted = walk_rt.builder(P, Q, P[0]).contact != NONE
    assert planted.mean() > 0.4
    assert np.median(low[planted]) < 0.01
    assert np.mean(speed[planted]) < 0.15, f"planted feet slide at {100 * np.mean(speed[planted]):.1f} cm/s"
    q = clip_quality(walk_g1, g1, cmodel)
    assert q.penetration_max_mm < 10.0 and q.skate_cm_s < 20.0 and q.float_mm < 10.0


def test_walk_joint_limits_and_provenance(walk_g1, walk_rt, g1, tmp_path):
    lo, hi = g1.joint_limits[:, 0], g1.joint_limits[:, 1]
    assert np.all(walk_g1.joint_pos >= lo - 1e-6) and np.all(walk_g1.joint_pos <= hi + 1e-6)
    assert np.allclose(np.linalg.norm(walk_g1.root_quat, axis=1), 1.0)
    prov = walk_g1.provenance["retarget"]
    assert prov["source_file"].endswith("walk.bvh") and prov["skeleton"] == "lafan1"
    assert prov["scale"] == pytest.approx(0.74, abs=0.01)  # the pairing's known factor
    assert prov["retargeter_version"] and len(prov["config_hash"]) == 16
    assert prov["status"] == "ok" and len(prov["residual_mm"]) == WALK_FRAMES
    npz, report = write_result(walk_g1, walk_rt.report, tmp_path)
    again = load_clip(npz, g1=g1)
    assert np.allclose(again.joint_pos, walk_g1.joint_pos)
    assert again.provenance["retarget"]["config_hash"] == prov["config_hash"]
    assert json.loads(report.read_text())["status"] == "ok"


def test_walk_close_to_unitree_and_no_first_frame_collapse(walk_g1, lafan1_dir, g1):
    unitree = read_g1_csv(lafan1_dir / "walk1_subject1.csv", 30).slice(0, WALK_FRAMES)
    kp = keypoint_distance_mm(walk_g1, unitree, g1)
    assert kp.mean() < 45.0, f"mean keypoint distance to Unitree's {kp.mean():.1f} mm"
    assert kp[0] < 45.0, f"frame 0 is {kp[0]:.1f} mm from Unitree's (collapsed start?)"
    assert kp[0] < 1.5 * np.median(kp) + 10.0
    # Frame 0 continues smoothly into the next frames: no jump out of a bad start.
    step = np.abs(np.diff(walk_g1.joint_pos[:6], axis=0)).max()
    assert step < 0.15, f"joint jump of {step:.2f} rad over the first frames"


def test_streaming_equals_batch(walk, walk_rt, walk_g1):
    n = 60
    part = walk.slice(0, n)
    batch = walk_rt.retarget(part)
    walk_rt.reset()
    out = []
    for t in range(n):
        r = walk_rt.step(part.positions[t], part.rotations[t])
        if t < walk_rt.lookahead:
            assert r is None
        if r is not None:
            out.append(r)
    out += walk_rt.flush()
    assert len(out) == n
    qpos = np.stack([q for q, _ in out])
    assert np.allclose(qpos, batch.qpos(), atol=1e-8), np.abs(qpos - batch.qpos()).max()
    assert np.allclose(np.stack([r for _, r in out]), walk_rt.residuals, atol=1e-8)
    # And the first frames of a longer batch are the same as a batch of only those frames (ends aside).
    assert np.allclose(batch.qpos()[: n - 5], walk_g1.qpos()[: n - 5], atol=1e-8)


def test_smoother_streaming_matches_sequence():
    rng = np.random.default_rng(0)
    for T in (1, 3, 20):
        P = rng.normal(size=(T, 4, 3))
        Q = rng.normal(size=(T, 4, 4))
        Q /= np.linalg.norm(Q, axis=-1, keepdims=True)
        kernel = gaussian_kernel(2.0)
        sp, sq = smooth_sequence(kernel, P, Q)
        sm = Smoother(kernel)
        out = [r for t in range(T) if (r := sm.push(P[t], Q[t])) is not None] + sm.flush()
        assert len(out) == T
        assert np.allclose(np.stack([p for p, _ in out]), sp) and np.allclose(np.stack([q for _, q in out]), sq)


def test_contact_lock_holds_and_releases_smoothly():
    lock = ContactLock(fps=30.0, release_time=0.2)
    toe = np.array([[0.12, 0.0], [0.12, 0.0]])
    raw = np.array([[0.0, 0.1], [0.5, -0.1]])
    first = lock.apply(raw, np.array([FLAT, NONE]), toe)
    held = lock.apply(raw + [[0.05, 0.0], [0.05, 0.0]], np.array([FLAT, NONE]), toe)
    assert np.allclose(held[0], first[0]) and np.allclose(held[1], raw[1] + [0.05, 0.0])
    switched = lock.apply(raw + [[0.1, 0.0], [0.1, 0.0]], np.array([TOE, NONE]), toe * 0.8)
    assert np.allclose(switched[0], first[0])  # re-anchored at the toe without moving
    rolled = lock.apply(raw + [[0.1, 0.0], [0.1, 0.0]], np.array([TOE, NONE]), toe * 0.6)
    assert np.allclose(rolled[0] + toe[0] * 0.6, first[0] + toe[0] * 0.8)  # the heel rises about a fixed toe
    path = [lock.apply(raw + [[0.1 + 0.05 * k, 0.0]] * 2, np.array([NONE, NONE]), toe)[0, 0] for k in range(30)]
    assert abs(path[-1] - (raw[0, 0] + 0.1 + 0.05 * 29)) < 0.01  # back on the human-following target
    assert np.abs(np.diff(path, 2)).max() < 0.05  # no jump on release


# --- other sources -------------------------------------------------------------------------------------------------


def test_cmu_amc_feet_on_floor(cmu_dir, g1, cmodel):
    motion = read_mocap(cmu_dir / "02_01.amc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetargetWarning)
        clip, report = retarget(motion, fps=30, g1=g1)
    assert clip.fps == 30 and clip.num_frames == 86 and report.ok
    assert clip.provenance["retarget"]["skeleton"] == "cmu"
    q = clip_quality(clip, g1, cmodel)
    assert q.penetration_max_mm < 10.0 and q.float_mm < 20.0 and q.limit_excess_rad < 1e-6
    low, _, _ = foot_tracks(clip, g1, cmodel)
    # A foot is on the floor in nearly every frame of a walk (this take's floor rises ~3 cm along the path).
    assert np.mean(low.min(axis=1) < 0.02) > 0.85


@pytest.fixture(scope="module")
def positions_walk(walk) -> HumanMotion:
    """SMPL-like input: joint positions with canonical names, no rotations, no skeleton."""
    keep = [walk.joint(c) for c in walk.canonical if c is not None]
    names = tuple(walk.canonical[j] for j in keep)
    return HumanMotion(
        "positions", walk.fps, None, walk.positions[:, keep], joint_names=names, canonical=names,
        provenance={"format": "positions", "path": "walk_positions.npy"},
    )  # fmt: skip


def test_positions_only_source(positions_walk, g1, cmodel):
    clip, report = retarget(positions_walk.slice(0, 150), g1=g1)
    prov = clip.provenance["retarget"]
    assert prov["skeleton"] == "smpl" and not prov["calibration"]["has_rotations"]
    q = clip_quality(clip, g1, cmodel)
    assert q.penetration_max_mm < 10.0 and report.residual_mm.mean() < 60.0 and report.ok
    # A shorter spine (no spine2) stands in for the missing joint.
    keep = [j for j, c in enumerate(positions_walk.canonical) if c != "spine2"]
    names = tuple(positions_walk.joint_names[j] for j in keep)
    short = positions_walk.replace(positions=positions_walk.positions[:60, keep], joint_names=names, canonical=names)
    assert retarget(short, g1=g1)[1].ok


# --- failures that must be loud -----------------------------------------------------------------------------------


def test_nan_frame_is_an_error_naming_the_file(walk, g1, walk_rt):
    bad = walk.slice(0, 40)
    bad.positions[17, 3] = np.nan
    with pytest.raises(RetargetError, match=r"walk\.bvh: 1 frame\(s\) with NaN or inf joint values \(first: 17\)"):
        retarget(bad, g1=g1)
    walk_rt.reset()
    walk_rt.step(walk.positions[0], walk.rotations[0])
    with pytest.raises(RetargetError, match=r"walk\.bvh: frame 1: non-finite"):
        walk_rt.step(bad.positions[17], bad.rotations[17])


def test_giant_performer_is_refused_or_warned(walk, g1):
    giant = walk.slice(0, 60)
    giant.positions *= 3.0  # a 5 m performer: a wrong unit
    with pytest.raises(RetargetError, match=r"walk\.bvh: the performer would be 5\.\d\d m tall"):
        retarget(giant, g1=g1)
    with pytest.warns(RetargetWarning, match=r"walk\.bvh: height=1\.75 m given, but the skeleton measures 5\.\d\d m"):
        retarget(giant, height=1.75, g1=g1)


def test_pose_the_g1_cannot_reach_is_flagged(positions_walk, g1):
    """A mocap glitch: the pelvis marker jumps a metre away for 20 frames while the feet stay planted. The G1 cannot
    keep its feet and follow the pelvis: those frames are flagged, named, and the clip is never written as good."""
    bad = positions_walk.slice(0, 90)
    bad.positions[40:60, bad.joint("pelvis"), 0] += 1.0
    with pytest.warns(RetargetWarning, match=r"walk_positions\.npy: \d+ of 90 frames flagged"):
        clip, report = retarget(bad, g1=g1)
    assert not report.ok and set(range(42, 58)) <= set(report.flagged)
    assert clip.provenance["retarget"]["status"] == "flagged"
    assert clip.provenance["retarget"]["report"]["flagged_frames"] == len(report.flagged)
    assert "frames 39-60" in report.describe() and "knee" in report.describe()


def test_missing_joint_names_the_fix(walk, g1):
    keep = [j for j, c in enumerate(walk.canonical) if c != "left_elbow"]
    motion = HumanMotion(
        "armless", walk.fps, None, walk.positions[:30, keep],
        joint_names=tuple(walk.joint_names[j] for j in keep), canonical=tuple(walk.canonical[j] for j in keep),
        provenance={"path": "armless.npy"},
    )  # fmt: skip
    with pytest.raises(RetargetError, match=r"armless\.npy: no joint for canonical 'left_elbow'.*mapping file"):
        retarget(motion, g1=g1)


def test_foot_geometry_reads_the_capsules(cmodel):
    feet = FootGeometry.of(cmodel)
    assert len(feet.points[0]) == 14 and np.allclose(feet.radii[0], 0.01)
    assert np.allclose(feet.points[0][:, 2], -0.025)


def test_quality_scores_see_a_sunken_clip(lafan1_dir, g1, cmodel):
    clip = read_g1_csv(lafan1_dir / "walk1_subject1.csv", 30).slice(0, 60)
    base = clip_quality(clip, g1, cmodel)
    sunk = clip.replace(root_pos=clip.root_pos - [0.0, 0.0, 0.03])
    q = clip_quality(sunk, g1, cmodel)
    assert q.penetration_mm > base.penetration_mm + 15.0 and q.frames == 60
    assert q.limit_excess_rad == 0.0 and base.jerk == pytest.approx(q.jerk)


def test_retarget_to_a_folder(cmu_dir, tmp_path, g1):
    """What ``hgpt retarget`` runs: every file retargeted and written, a broken one reported, the others kept."""
    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\n")
    results = retarget_to([cmu_dir / "02_01.amc", broken], tmp_path / "out", fps=30, g1=g1)
    assert [r["status"] for r in results] == ["ok", "error"]
    assert "broken.bvh" in results[1]["message"]
    clip = load_clip(results[0]["clip"], g1=g1)
    assert clip.num_frames == 86 and clip.provenance["retarget"]["source_format"] == "amc"
