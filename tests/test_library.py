"""The motion library answers batched (clip, time) queries with the clips' own frames and FK, interpolated."""

import contextlib

import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.kinematics import clip_body_states
from humanoid_gpt.motion.library import MotionLibrary
from humanoid_gpt.robot import G1_KEYPOINT_NAMES


@pytest.fixture(scope="module")
def clips(lafan1_dir, g1_moves_dir, g1):
    walk = load_clip(lafan1_dir / "walk1_subject1.csv", g1=g1).slice(0, 400)
    dance = load_clip(g1_moves_dir / "dance__B_DadDance.csv", g1=g1).slice(0, 600)  # 60 fps
    return [walk, dance]


@pytest.fixture(scope="module")
def lib(clips, g1):
    return MotionLibrary.from_clips(clips, g1, dtype=torch.float64)


def test_exact_frames_equal_the_clip_and_its_fk(lib, clips, g1):
    frames = torch.tensor([0, 17, 399, 0, 250, 599])
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    times = frames.double() / lib.fps[ids]
    out = lib.frames(ids, times)
    for k, (c, f) in enumerate(zip(ids.tolist(), frames.tolist(), strict=True)):
        clip = clips[c]
        states = clip_body_states(g1, clip, G1_KEYPOINT_NAMES)
        np.testing.assert_allclose(out.joint_pos[k], clip.joint_pos[f], atol=1e-12)
        np.testing.assert_allclose(out.joint_vel[k], clip.joint_vel()[f], atol=1e-9)
        np.testing.assert_allclose(out.root_pos[k], clip.root_pos[f], atol=1e-12)
        assert R.quat_error_angle(out.root_quat[k], torch.from_numpy(clip.root_quat[f])) < 1e-6
        np.testing.assert_allclose(out.body_pos[k], states.pos[f], atol=1e-9)
        np.testing.assert_allclose(out.body_lin_vel[k], states.lin_vel[f], atol=1e-9)
        angle = R.quat_error_angle(out.body_quat[k], torch.from_numpy(states.quat[f]))
        assert angle.max() < 1e-6


def test_between_frames_interpolates(lib, clips):
    walk = clips[0]
    out = lib.frames(torch.tensor([0]), torch.tensor([10.25 / 30.0], dtype=torch.float64))
    expect = 0.75 * walk.joint_pos[10] + 0.25 * walk.joint_pos[11]
    np.testing.assert_allclose(out.joint_pos[0], expect, atol=1e-9)
    q = torch.from_numpy(walk.root_quat)
    assert R.quat_error_angle(out.root_quat[0], R.quat_slerp(q[10], q[11], torch.tensor([0.25]).double())) < 1e-7
    np.testing.assert_allclose(out.root_quat.norm(dim=-1), 1.0, atol=1e-9)


def test_times_are_clamped_to_the_clip(lib, clips):
    out = lib.frames(torch.tensor([0, 1]), torch.tensor([-1.0, 1e6], dtype=torch.float64))
    np.testing.assert_allclose(out.joint_pos[0], clips[0].joint_pos[0])
    np.testing.assert_allclose(out.joint_pos[1], clips[1].joint_pos[-1])


def test_many_queries_match_one_by_one(lib):
    g = torch.Generator().manual_seed(3)
    ids, times = lib.sample(512, g)
    batch = lib.frames(ids, times)
    for k in (0, 101, 511):
        single = lib.frames(ids[k : k + 1], times[k : k + 1])
        np.testing.assert_allclose(single.body_pos[0], batch.body_pos[k])
        np.testing.assert_allclose(single.body_quat[0], batch.body_quat[k])


def test_sampling_follows_weights(lib):
    lib.set_weights([0.0, 1.0])
    try:
        ids, times = lib.sample(1000, torch.Generator().manual_seed(0))
        assert (ids == 1).all() and (times <= lib.duration[1]).all() and (times >= 0).all()
    finally:
        lib.set_weights([1.0, 1.0])
    with pytest.raises(ValueError, match="weights must be 2"):
        lib.set_weights([1.0])
    with pytest.raises(ValueError, match="not all zero"):
        lib.set_weights([0.0, 0.0])


def test_float32_library_is_close_to_float64(clips, g1, lib):
    lib32 = MotionLibrary.from_clips(clips, g1)
    ids, times = lib.sample(256, torch.Generator().manual_seed(1))
    a, b = lib.frames(ids, times), lib32.frames(ids, times.float())
    np.testing.assert_allclose(a.body_pos, b.body_pos.double(), atol=1e-4)
    assert R.quat_error_angle(a.body_quat, b.body_quat.double()).max() < 1e-3


def test_short_clip_is_rejected(clips, g1):
    with pytest.raises(ValueError, match="at least 2"):
        MotionLibrary.from_clips([clips[0].slice(0, 1)], g1)


def _packed(lib: MotionLibrary) -> torch.Tensor:
    """Every packed value and quaternion (not the slerp tables, whose 1/sin of near-zero angles amplify round-off)."""
    return lib._data[:, : lib._num_linear + 4 * lib._num_quats]


@contextlib.contextmanager
def _no_forward_kinematics():
    def refuse(*args, **kwargs):
        raise AssertionError("forward kinematics ran")

    with pytest.MonkeyPatch.context() as m:
        m.setattr("humanoid_gpt.motion.library.clip_body_states", refuse)
        m.setattr("humanoid_gpt.motion.kinematics.forward_kinematics", refuse)
        yield


@pytest.fixture(scope="module")
def exported(tiny_corpus):
    """Clip id -> the file ``export_clips`` wrote it to, for every clip of the tiny corpus."""
    from humanoid_gpt.catalog.store import export_paths, read_manifest

    folder, files = tiny_corpus
    return {clip_id: files / path for clip_id, path in export_paths(read_manifest(folder)).items()}


def test_corpus_clips_give_their_exported_files_library_without_forward_kinematics(tiny_corpus, exported, g1):
    from humanoid_gpt.catalog.refs import ClipRef, load_clip_refs
    from humanoid_gpt.catalog.store import read_manifest

    folder, _ = tiny_corpus
    rows = read_manifest(folder)
    from_files = MotionLibrary.from_clips(load_clip_refs([exported[r["clip_id"]] for r in rows], g1), g1)
    with _no_forward_kinematics():
        clips = load_clip_refs([ClipRef.corpus_clip(folder, r["clip_id"], r["frames"]) for r in rows], g1)
        from_corpus = MotionLibrary.from_clips(clips, g1)
        picked = MotionLibrary.from_clips(clips, g1, ("torso_link", "pelvis"))  # cached bodies in any order
        with pytest.raises(AssertionError, match="forward kinematics ran"):  # a body the corpus did not cache
            MotionLibrary.from_clips(clips, g1, ("pelvis", "waist_yaw_link"))
    assert torch.equal(from_corpus.num_frames, from_files.num_frames)
    torch.testing.assert_close(_packed(from_corpus), _packed(from_files), rtol=0, atol=1e-5)
    ids, times = from_corpus.sample(64, torch.Generator().manual_seed(0))
    full, subset = from_corpus.frames(ids, times), picked.frames(ids, times)
    torso, pelvis = (from_corpus.body_names.index(b) for b in ("torso_link", "pelvis"))
    assert torch.equal(subset.body_pos, full.body_pos[:, [torso, pelvis]])
    assert torch.equal(subset.body_quat, full.body_quat[:, [torso, pelvis]])


def test_a_corpus_segment_keeps_the_whole_clips_kinematics(tiny_corpus, exported, g1):
    """Frames [a, b) of a corpus clip: the sliced file's frames; the library rows of the whole clip, so the same as a
    file segment's but at its two edges, where the file segment has one-sided differences and the corpus the
    central ones across the edge."""
    from humanoid_gpt.catalog.refs import ClipRef, load_clip_refs

    folder, _ = tiny_corpus
    walk, a, b = "lafan1/walk1_subject2", 10, 60
    (sliced,) = load_clip_refs([f"{exported[walk]}@{a}:{b}"], g1)
    file_segment = MotionLibrary.from_clips([sliced], g1)
    with _no_forward_kinematics():
        segment, whole = load_clip_refs([ClipRef(folder, a, b, walk), ClipRef(folder, clip_id=walk)], g1)
        lib, whole_lib = MotionLibrary.from_clips([segment], g1), MotionLibrary.from_clips([whole], g1)
    for key in ("root_pos", "root_quat", "joint_pos"):
        np.testing.assert_array_equal(getattr(segment, key), getattr(sliced, key))
    assert torch.equal(_packed(lib), _packed(whole_lib)[a:b])
    L, n = lib._layout, lib._num_linear
    for cols in (L["joint_pos"], L["root_pos"], L["body_pos"], slice(n, None)):  # positions and quaternions
        torch.testing.assert_close(_packed(lib)[:, cols], _packed(file_segment)[:, cols], rtol=0, atol=1e-5)
    for key in ("joint_vel", "root_lin_vel", "root_ang_vel", "body_lin_vel", "body_ang_vel"):
        inner = (_packed(lib) - _packed(file_segment))[1:-1, L[key]]
        assert inner.abs().max() < 1e-5, key
    edges = (_packed(lib) - _packed(file_segment))[[0, -1], L["joint_vel"]]
    assert edges.abs().max() > 1e-3  # one-sided differences at the file segment's edges


def test_changing_frames_drops_cached_kinematics(tiny_corpus, g1):
    from humanoid_gpt.catalog.store import load_clips_from_corpus
    from humanoid_gpt.governance.warp import time_warp

    folder, _ = tiny_corpus
    (clip,) = load_clips_from_corpus(folder, clips=["lafan1/walk1_subject2"])
    cached = clip.kinematics
    assert cached is not None and cached.num_frames == clip.num_frames
    assert clip.replace(name="renamed").kinematics is cached  # not a frame change
    part = clip.slice(5, 25)
    assert part.kinematics.num_frames == 20 and np.array_equal(part.kinematics.joint_vel, cached.joint_vel[5:25])
    changed = [
        clip.replace(joint_pos=clip.joint_pos + 0.1),
        clip.replace(root_pos=clip.root_pos + 1.0),
        clip.replace(fps=clip.fps * 2),
        clip.resample(30.0),
        time_warp(clip, 1.25, 50.0),
    ]
    assert all(c.kinematics is None for c in changed)
    assert clip.replace(joint_pos=clip.joint_pos.copy(), kinematics=cached).kinematics is cached  # given: kept
