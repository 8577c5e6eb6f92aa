"""GMR and PHC motion pickles: a real clip written in each published layout reads back exactly, and nothing in a
pickle runs: foreign classes, joblib streams, truncated files, several motions, the 23-DoF G1 and a w-first quaternion
are refused naming the file and the fix."""

import pickle

import numpy as np
import pytest

from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.io import find_motion_files
from humanoid_gpt.motion.pickles import read_phc_motions


def _xyzw(clip) -> np.ndarray:
    return clip.root_quat[:, [1, 2, 3, 0]]


def _gmr(clip) -> dict:
    """What GMR's retargeting scripts pickle for a G1 motion."""
    return {
        "fps": 30,
        "root_pos": clip.root_pos.astype(np.float32),
        "root_rot": _xyzw(clip).astype(np.float32),
        "dof_pos": clip.joint_pos.astype(np.float32),
        "local_body_pos": None,
        "link_body_list": ["pelvis", "left_hip_pitch_link"],
    }


def _phc(clip) -> dict:
    """One motion of a PHC / HumanoidVerse motion library."""
    return {
        "root_trans_offset": clip.root_pos,
        "root_rot": _xyzw(clip),
        "dof": clip.joint_pos,
        "pose_aa": np.zeros((clip.num_frames, 30, 3)),
        "fps": np.int64(30),
    }


def _dump(path, obj, protocol=None):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def _same(a, b, atol=1e-6):
    np.testing.assert_allclose(a.root_pos, b.root_pos, atol=atol)
    np.testing.assert_allclose(np.abs((a.root_quat * b.root_quat).sum(1)), 1.0, atol=atol)  # same rotation
    np.testing.assert_allclose(a.joint_pos, b.joint_pos, atol=atol)
    assert a.fps == b.fps == 30.0


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_pickle_protocol_reads(tmp_path, walk_clip, g1, protocol):
    clip = walk_clip.slice(0, 60)
    _same(load_clip(_dump(tmp_path / "walk.pkl", _gmr(clip), protocol), g1=g1), clip)


def test_gmr_and_phc_pickles_read_back_the_clip(tmp_path, walk_clip, g1):
    clip = walk_clip.slice(0, 150)
    gmr = load_clip(_dump(tmp_path / "walk_gmr.pkl", _gmr(clip)), g1=g1)
    _same(gmr, clip)
    assert gmr.provenance["source_format"] == "gmr" and gmr.provenance["fps_source"] == "file"
    phc = load_clip(_dump(tmp_path / "lib.pkl", {"0-walk1_subject1": _phc(clip)}), g1=g1)
    _same(phc, clip)
    assert phc.name == "0-walk1_subject1" and phc.provenance["source_format"] == "phc"
    flat = load_clip(_dump(tmp_path / "one.pkl", _phc(clip)), g1=g1)  # the inner dict alone
    _same(flat, clip)
    assert tmp_path / "walk_gmr.pkl" in find_motion_files([tmp_path])  # folders of pickles are motion sources


def test_a_library_of_several_motions_is_refused_and_read_whole(tmp_path, walk_clip, g1):
    lib = _dump(tmp_path / "lib.pkl", {"a": _phc(walk_clip.slice(0, 90)), "b": _phc(walk_clip.slice(90, 200))})
    with pytest.raises(
        MotionFormatError, match=r"lib\.pkl: a PHC motion library of 2 motions \(a, b.*read_phc_motions"
    ):
        load_clip(lib, g1=g1)
    clips = read_phc_motions(lib)
    assert [c.name for c in clips] == ["a", "b"] and [c.num_frames for c in clips] == [90, 110]


def test_nothing_in_a_pickle_runs(tmp_path):
    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {tmp_path / 'ran'}",))

    evil = _dump(tmp_path / "evil.pkl", {"root_pos": Exploit()})
    with pytest.raises(MotionFormatError, match=r"evil\.pkl: the pickle asks for (posix|nt)\.system.*refused"):
        load_clip(evil)
    assert not (tmp_path / "ran").exists()
    joblib_stream = tmp_path / "lib_joblib.pkl"
    joblib_stream.write_bytes(b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n.")
    with pytest.raises(MotionFormatError, match=r"lib_joblib\.pkl: saved with joblib\.dump.*pickle\.dump"):
        load_clip(joblib_stream)


def test_bad_pickles_name_the_file_field_and_fix(tmp_path, walk_clip, g1):
    clip = walk_clip.slice(0, 60)
    whole = pickle.dumps(_gmr(clip))
    (tmp_path / "cut.pkl").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MotionFormatError, match=r"cut\.pkl: not a readable pickle .*truncated"):
        load_clip(tmp_path / "cut.pkl", g1=g1)
    g1_23 = {**_gmr(clip), "dof_pos": clip.joint_pos[:, :23]}
    with pytest.raises(MotionFormatError, match=r"'dof_pos' has shape \(60, 23\).*23-DoF variant"):
        load_clip(_dump(tmp_path / "g1_23.pkl", g1_23), g1=g1)
    with pytest.raises(MotionFormatError, match=r"unknown motion pickle .*expected GMR's"):
        load_clip(_dump(tmp_path / "other.pkl", {"poses": np.zeros((5, 72))}), g1=g1)
    with pytest.raises(MotionFormatError, match=r"holds a list, not a motion dict"):
        load_clip(_dump(tmp_path / "list.pkl", [1, 2]), g1=g1)
    short = {**_gmr(clip), "root_rot": _xyzw(clip)[:50]}
    with pytest.raises(MotionFormatError, match=r"disagree in length"):
        load_clip(_dump(tmp_path / "short.pkl", short), g1=g1)
    no_rate = {k: v for k, v in _gmr(clip).items() if k != "fps"}
    with pytest.raises(MotionFormatError, match=r"no_rate\.pkl"):
        load_clip(_dump(tmp_path / "no_rate.pkl", no_rate), g1=g1)
    assert load_clip(tmp_path / "no_rate.pkl", fps=30, g1=g1).fps == 30.0
    with pytest.raises(MotionFormatError, match=r"word_rate\.pkl: 'fps' holds 'thirty', not a usable frame rate"):
        load_clip(_dump(tmp_path / "word_rate.pkl", {**_gmr(clip), "fps": "thirty"}), g1=g1)
    # A quaternion stored w first in a file that says x, y, z, w: validation names it.
    wfirst = {**_gmr(clip), "root_rot": clip.root_quat}
    with pytest.raises(MotionValidationError, match=r"(?s)wfirst\.pkl.*root_quat.*stored w, x, y, z but read as x"):
        load_clip(_dump(tmp_path / "wfirst.pkl", wfirst), g1=g1)
