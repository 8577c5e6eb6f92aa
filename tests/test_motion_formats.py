"""The public G1 motion layouts people already have (holosoma whole-body tracking, AMASS-for-G1 Isaac Lab NPZ, G1
``.npy``) read back the clip they were made from; frame rates are never guessed silently; the root quaternion order is
told apart whatever the heading."""

import contextlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from humanoid_gpt import rotations as R
from humanoid_gpt.errors import MotionFormatError, MotionValidationError
from humanoid_gpt.motion import MotionClip, load_clip, load_clips
from humanoid_gpt.motion.check import check_files
from humanoid_gpt.motion.formats import breadth_first_bodies, joint_order_permutations, read_g1_npy
from humanoid_gpt.motion.io import npz_kind, read_clip
from humanoid_gpt.motion.kinematics import clip_body_states
from humanoid_gpt.motion.rates import FrameRateWarning, MotionWarning, fps_from_name
from humanoid_gpt.motion.validate import quaternion_order_misread
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES


@pytest.fixture(scope="module")
def walk(walk_clip) -> MotionClip:
    return walk_clip.slice(0, 150)


def _close(a, b, atol=1e-9):
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def _same_rotation(a, b, atol=1e-9):
    """q and -q are one rotation."""
    sign = np.sign(np.sum(a * b, axis=-1, keepdims=True))
    _close(a * sign, b, atol)


@contextlib.contextmanager
def _no_motion_warnings():
    """Any MotionWarning (an assumed rate, a grounding, a finding) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionWarning)
        yield


# holosoma whole-body tracking ----------------------------------------------------------------------------------


def _wbt_arrays(clip: MotionClip, g1, names: list[str], perm: np.ndarray, objects: bool) -> dict:
    """A holosoma whole-body-tracking NPZ of ``clip``: joints stored in the order ``perm`` named by ``names``."""
    states = clip_body_states(g1, clip)
    n = clip.num_frames
    pad = lambda x: np.concatenate([np.zeros((n, 1, x.shape[-1])), x], axis=1)  # noqa: E731  ("world" first)
    world_quat = np.concatenate([np.tile([1.0, 0, 0, 0], (n, 1, 1)), states.quat], axis=1)
    arrays = dict(
        fps=np.array([clip.fps]),
        joint_pos=np.concatenate([clip.root_pos, clip.root_quat, clip.joint_pos[:, perm]], axis=1),
        joint_vel=np.concatenate([clip.root_lin_vel(), clip.root_ang_vel(), clip.joint_vel()[:, perm]], axis=1),
        body_pos_w=pad(states.pos),
        body_quat_w=world_quat,
        body_lin_vel_w=pad(states.lin_vel),
        body_ang_vel_w=pad(states.ang_vel),
        joint_names=np.array(names),
        body_names=np.array(["world", *states.names]),
    )
    if objects:
        arrays.update(
            object_pos_w=np.tile([1.0, 0.0, 0.4], (n, 1)),
            object_quat_w=np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
            object_lin_vel_w=np.zeros((n, 3)),
            object_ang_vel_w=np.zeros((n, 3)),
        )
    return arrays


@pytest.mark.parametrize("objects", [False, True], ids=["no_objects", "objects"])
@pytest.mark.parametrize("root_names", [[], ["floating_base_joint"]], ids=["29_names", "with_root_name"])
def test_holosoma_wbt_reads_back_the_clip(tmp_path, g1, walk, objects, root_names):
    perm = np.random.default_rng(3).permutation(len(G1_JOINT_NAMES))
    # shuffled order; half the names without the "_joint" suffix, as some exporters write them
    names = [G1_JOINT_NAMES[j].removesuffix("_joint") if k % 2 else G1_JOINT_NAMES[j] for k, j in enumerate(perm)]
    arrays = _wbt_arrays(walk, g1, root_names + names, perm, objects)
    assert npz_kind(arrays) == "holosoma_wbt"  # a 36-wide joint_pos is not a BeyondMimic NPZ
    np.savez(tmp_path / "walk_wbt.npz", **arrays)
    with _no_motion_warnings():
        clip = load_clip(tmp_path / "walk_wbt.npz", g1=g1)
    _close(clip.root_pos, walk.root_pos)
    _close(clip.root_quat, walk.root_quat)
    _close(clip.joint_pos, walk.joint_pos)
    assert clip.fps == walk.fps and clip.provenance["fps_source"] == "file"
    assert clip.provenance["source_format"] == "holosoma_wbt"
    assert clip.provenance["has_objects"] is objects
    assert bool(clip.provenance["object_keys"]) is objects


def test_holosoma_wbt_with_29_wide_joint_pos_takes_the_root_from_the_pelvis(tmp_path, g1, walk):
    perm = np.arange(len(G1_JOINT_NAMES))
    arrays = _wbt_arrays(walk, g1, list(G1_JOINT_NAMES), perm, objects=False)
    arrays["joint_pos"] = arrays["joint_pos"][:, 7:]
    np.savez(tmp_path / "wbt29.npz", **arrays)
    clip = read_clip(tmp_path / "wbt29.npz", g1=g1)
    assert "pelvis" in clip.provenance["root_from"]
    _close(clip.root_pos, walk.root_pos, 1e-9)
    _same_rotation(clip.root_quat, walk.root_quat, 1e-9)
    _close(clip.joint_pos, walk.joint_pos)


def test_holosoma_wbt_with_foreign_joint_names_is_refused(tmp_path, g1, walk):
    perm = np.arange(len(G1_JOINT_NAMES))
    names = list(G1_JOINT_NAMES)
    names[20] = "left_hand_thumb_0_joint"  # not one of the G1's 29
    np.savez(tmp_path / "h1.npz", **_wbt_arrays(walk.slice(0, 10), g1, names, perm, objects=False))
    with pytest.raises(MotionFormatError, match=r"h1.npz: 'joint_names' does not name the Unitree G1's 29 joints"):
        read_clip(tmp_path / "h1.npz", g1=g1)


def test_old_layouts_keep_their_kind():
    assert npz_kind(["joint_pos", "body_pos_w"]) == "beyondmimic"
    assert npz_kind({"joint_pos": np.zeros((3, 29)), "body_pos_w": np.zeros((3, 30, 3))}) == "beyondmimic"
    assert npz_kind(["qpos", "fps"]) == "holosoma"


# AMASS retargeted to the G1, Isaac Lab NPZ ---------------------------------------------------------------------


def test_amass_isaaclab_npz_reads_back_root_and_joints(tmp_path, g1, walk):
    bodies = breadth_first_bodies(g1)  # Isaac Lab's order: not the G1's, and the pelvis is found by name
    states = clip_body_states(g1, walk).select(("pelvis", *bodies))
    perm = joint_order_permutations(g1)["isaaclab"]
    f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731  (as the released files)
    np.savez(
        tmp_path / "amass_walk.npz",
        fps=np.array(walk.fps),
        dof_names=np.array([G1_JOINT_NAMES[j] for j in perm]),
        dof_positions=f32(walk.joint_pos[:, perm]),
        dof_velocities=f32(walk.joint_vel()[:, perm]),
        body_names=np.array(states.names),
        body_positions=f32(states.pos),
        body_rotations=f32(states.quat),
        body_linear_velocities=f32(states.lin_vel),
        body_angular_velocities=f32(states.ang_vel),
    )
    with _no_motion_warnings():
        clip = load_clip(tmp_path / "amass_walk.npz", g1=g1)
    assert clip.provenance["source_format"] == "amass_isaaclab" and "AMASS" in clip.provenance["licence"]
    assert clip.fps == walk.fps and clip.provenance["fps_source"] == "file"
    _close(clip.root_pos, walk.root_pos, 1e-6)
    _same_rotation(clip.root_quat, walk.root_quat, 1e-6)
    _close(clip.joint_pos, walk.joint_pos, 1e-6)


# G1 .npy: frame rate from the name, quaternion order, relative root height -------------------------------------


@pytest.mark.parametrize(
    "name, fps",
    [("walk_30fps.npy", 30.0), ("walk_fps50.npy", 50.0), ("walk@60hz.npy", 60.0), ("run-120Hz.npy", 120.0)],
)
def test_fps_from_the_file_name(name, fps):
    assert fps_from_name(Path(name)) == fps


def test_names_without_a_rate_give_none():
    for name in ("walk1_subject1.csv", "dance__J_Dance20_DWG.csv", "M_Move10.npy", "fps_test.npy"):
        assert fps_from_name(Path(name)) is None


def test_a_name_with_two_rates_is_refused():
    with pytest.raises(MotionFormatError, match="several frame rates"):
        fps_from_name(Path("walk_120hz_to_30fps.npy"))


def _npy_rows(clip: MotionClip, order: str) -> np.ndarray:
    quat = clip.root_quat if order == "wxyz" else clip.root_quat[:, [1, 2, 3, 0]]
    return np.concatenate([clip.root_pos, quat, clip.joint_pos], axis=1)


def test_relative_height_npy_is_grounded_with_a_warning(tmp_path, g1, walk):
    rows = _npy_rows(walk, "xyzw")
    rows[:, 2] -= rows[0, 2]  # heights relative to the first frame: the pelvis starts at 0 m
    np.save(tmp_path / "walk_rel_30fps.npy", rows)
    with pytest.warns(MotionWarning, match=r"relative to the start.*Grounded the clip"):
        clip = load_clip(tmp_path / "walk_rel_30fps.npy", g1=g1)
    assert abs(clip.root_pos[0, 2]) > 0.6 and clip.provenance["grounded_by_m"] > 0.6
    _close(clip.root_pos[:, 2], walk.root_pos[:, 2], 0.02)  # back near the original height
    _close(clip.root_pos[:, :2], walk.root_pos[:, :2])
    assert clip.fps == 30.0 and clip.provenance["fps_source"] == "file"
    assert clip.provenance["quat_order"] == "xyzw"
    _close(clip.joint_pos, walk.joint_pos)


def test_absolute_height_npy_is_left_alone(tmp_path, g1, walk):
    np.save(tmp_path / "walk@60hz.npy", _npy_rows(walk, "wxyz"))
    with _no_motion_warnings():
        clip = load_clip(tmp_path / "walk@60hz.npy", g1=g1)
    assert "grounded_by_m" not in clip.provenance and clip.provenance["quat_order"] == "wxyz"
    _close(clip.root_pos, walk.root_pos)
    assert clip.fps == 60.0  # the name says so (this clip is really 30 fps: the name is the user's statement)


def test_npy_without_a_rate_is_an_error_not_a_guess(tmp_path, g1, walk):
    np.save(tmp_path / "walk.npy", _npy_rows(walk, "wxyz"))
    with pytest.raises(MotionFormatError, match=r"walk.npy: no frame rate.*walk_30fps.npy.*--fps"):
        read_clip(tmp_path / "walk.npy", g1=g1)
    clip = read_clip(tmp_path / "walk.npy", fps=30, g1=g1)
    assert clip.fps == 30.0 and clip.provenance["fps_source"] == "option"


def test_folders_find_npy_files(tmp_path, g1, walk):
    np.save(tmp_path / "walk_30fps.npy", _npy_rows(walk, "wxyz"))
    assert [c.name for c in load_clips([tmp_path], g1)] == ["walk_30fps"]


# Quaternion order, whatever the heading -----------------------------------------------------------------------


def _turned(clip: MotionClip, degrees: float) -> MotionClip:
    """The same motion with the heading turned by ``degrees`` about world z (root position and orientation)."""
    half = np.radians(degrees) / 2
    yaw = torch.tensor([np.cos(half), 0.0, 0.0, np.sin(half)], dtype=torch.float64).expand(clip.num_frames, 4)
    pos = R.quat_apply(yaw, torch.from_numpy(clip.root_pos)).numpy()
    quat = R.quat_mul(yaw, torch.from_numpy(clip.root_quat)).numpy()
    return clip.replace(root_pos=pos, root_quat=quat)


def _heading(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = quat.T
    return np.degrees(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


@pytest.mark.parametrize("order", ["xyzw", "wxyz"])
def test_quaternion_order_is_detected_at_150_degrees(tmp_path, g1, walk, order):
    turned = _turned(walk, 150.0)
    assert np.all(np.abs(_heading(turned.root_quat)) > 120)  # the heading the old check could not handle
    np.save(tmp_path / "turned_30fps.npy", _npy_rows(turned, order))
    clip = read_g1_npy(tmp_path / "turned_30fps.npy", g1=g1)
    assert clip.provenance["quat_order"] == order
    _same_rotation(clip.root_quat, turned.root_quat)


@pytest.mark.parametrize("heading, order", [(0.0, "xyzw"), (180.0, "wxyz")])
def test_quaternion_order_at_the_heading_where_the_pelvis_cannot_tell(tmp_path, g1, g1_moves_dir, heading, order):
    """Read in the other order, x-first data facing 0 degrees (w-first data facing 180) still has an upright pelvis:
    only the feet, flat in stance for the real reading, tell the two apart."""
    moves = read_clip(g1_moves_dir / "bonus__B_Fence2.csv").slice(0, 400)
    clip = _turned(moves, heading - np.median(_heading(moves.root_quat)))
    np.save(tmp_path / "fence_60fps.npy", _npy_rows(clip, order))
    back = read_g1_npy(tmp_path / "fence_60fps.npy", g1=g1)
    assert back.provenance["quat_order"] == order and "foot tilt" in back.provenance["quat_order_from"]
    _same_rotation(back.root_quat, clip.root_quat)


def test_validation_catches_a_misread_quaternion_at_150_degrees(walk):
    turned = _turned(walk, 150.0)
    w_first_read_x_first = turned.root_quat[:, [3, 0, 1, 2]]  # what a G1 CSV reader makes of w-first data
    assert quaternion_order_misread(turned.root_quat) is None  # the right reading is never suspect
    found = quaternion_order_misread(w_first_read_x_first)
    assert found is not None and found[0] == "stored w, x, y, z but read as x, y, z, w"
    x_first_read_w_first = turned.root_quat[:, [1, 2, 3, 0]]
    assert quaternion_order_misread(x_first_read_w_first)[0] == "stored x, y, z, w but read as w, x, y, z"


def test_w_first_csv_facing_150_degrees_is_rejected(tmp_path, g1, walk):
    rows = _npy_rows(_turned(walk, 150.0), "wxyz")  # a CSV must be x, y, z, w: this one is w first
    np.savetxt(tmp_path / "turned.csv", rows, delimiter=",", fmt="%.9f")
    with pytest.raises(MotionValidationError, match="root_quat: .*other order"):
        load_clip(tmp_path / "turned.csv", fps=30, g1=g1)
    np.savetxt(tmp_path / "turned.csv", _npy_rows(_turned(walk, 150.0), "xyzw"), delimiter=",", fmt="%.9f")
    load_clip(tmp_path / "turned.csv", fps=30, g1=g1)


def test_w_first_csv_facing_180_degrees_is_rejected_by_the_feet(tmp_path, g1, g1_moves_dir):
    moves = read_clip(g1_moves_dir / "bonus__B_Fence2.csv").slice(0, 400)
    clip = _turned(moves, 180.0 - np.median(_heading(moves.root_quat)))
    np.savetxt(tmp_path / "fence.csv", _npy_rows(clip, "wxyz"), delimiter=",", fmt="%.9f")
    with pytest.raises(MotionValidationError, match="foot tilt.*other order"):
        load_clip(tmp_path / "fence.csv", fps=60, g1=g1)


# Frame rates of formats that store none ------------------------------------------------------------------------


def _head(src: Path, dst: Path, rows: int = 200) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(src.read_text().splitlines()[:rows]) + "\n")
    return dst


def test_csv_in_a_g1_moves_like_folder_takes_the_manifest_rate(tmp_path, g1_moves_dir):
    folder = tmp_path / "my_moves"
    _head(g1_moves_dir / "dance__B_DadDance.csv", folder / "dance__B_Test.csv")
    (folder / "manifest.json").write_text(json.dumps({"clips": {"B_Test": {"fps": 50, "performer": "Ann"}}}))
    with _no_motion_warnings():
        clip = read_clip(folder / "dance__B_Test.csv")
    assert clip.fps == 50.0 and clip.provenance["fps_source"] == "manifest"
    assert "manifest.json (clip B_Test)" in clip.provenance["fps_from"] and clip.provenance["performer"] == "Ann"


def test_g1_moves_manifest_and_card(tmp_path, g1_moves_dir):
    """The dataset's own manifest gives each clip's rate; a clip it does not list gets the rate all its clips share;
    without the manifest the dataset card states the rate."""
    folder = tmp_path / "g1_moves_copy"
    _head(g1_moves_dir / "karate__M_Move1.csv", folder / "karate__M_Move1.csv")
    _head(g1_moves_dir / "karate__M_Move1.csv", folder / "karate__M_NewMove.csv")
    shutil.copy(g1_moves_dir / "manifest.json", folder / "manifest.json")
    with _no_motion_warnings():
        listed, unlisted = read_clip(folder / "karate__M_Move1.csv"), read_clip(folder / "karate__M_NewMove.csv")
    assert listed.fps == unlisted.fps == 60.0
    assert "(clip M_Move1)" in listed.provenance["fps_from"] and "all 59 clips" in unlisted.provenance["fps_from"]
    (folder / "manifest.json").unlink()
    shutil.copy(g1_moves_dir / "DATASET_CARD.md", folder / "DATASET_CARD.md")
    with _no_motion_warnings():
        carded = read_clip(folder / "karate__M_Move1.csv")
    assert carded.fps == 60.0 and carded.provenance["fps_from"].endswith("DATASET_CARD.md (dataset card)")


def test_names_no_longer_set_the_rate(tmp_path, g1_moves_dir):
    """'__' in a name used to mean 60 fps; now only a stated rate counts."""
    _head(g1_moves_dir / "dance__B_DadDance.csv", tmp_path / "dance__B_DadDance.csv")
    with pytest.warns(FrameRateWarning):
        clip = read_clip(tmp_path / "dance__B_DadDance.csv")
    assert clip.fps == 30.0 and clip.provenance["fps_source"] == "assumed"


def test_lafan1_is_recognised_by_name_and_by_content(tmp_path, lafan1_dir):
    with _no_motion_warnings():
        named = read_clip(_head(lafan1_dir / "run1_subject2.csv", tmp_path / "a" / "run7_subject9.csv"))
        shutil.copy(lafan1_dir / "walk1_subject1.csv", tmp_path / "renamed.csv")
        renamed = read_clip(tmp_path / "renamed.csv")
    assert named.fps == renamed.fps == 30.0
    assert named.provenance["fps_source"] == renamed.provenance["fps_source"] == "dataset rule"
    assert "walk1_subject1.csv" in renamed.provenance["fps_from"]  # matched by its sha256


def test_csv_in_an_unknown_folder_warns_loudly_once(tmp_path, g1, lafan1_dir):
    folder = tmp_path / "from_a_friend"
    for name in ("a.csv", "b.csv", "c.csv"):
        _head(lafan1_dir / "walk2_subject1.csv", folder / name, 120)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = load_clips([folder], g1)
    rate_warnings = [w for w in caught if issubclass(w.category, FrameRateWarning)]
    assert len(rate_warnings) == 1, [str(w.message) for w in rate_warnings]
    message = str(rate_warnings[0].message)
    assert "ASSUMING 30 fps" in message and "--fps" in message and str(folder.resolve()) in message
    assert all(c.fps == 30.0 and c.provenance["fps_source"] == "assumed" for c in clips)
    rows = check_files(sorted(folder.glob("*.csv")), g1)
    assert all(r.status == "warning" and any("30 fps assumed" in f for f in r.findings) for r in rows)
    ok = check_files(sorted(folder.glob("*.csv")), g1, fps=30)
    assert all(r.status == "ok" for r in ok)


@pytest.mark.parametrize("bad", [0, -50, float("nan"), 5000.0])
def test_a_bad_fps_option_is_a_clear_error(tmp_path, g1, lafan1_dir, bad):
    path = _head(lafan1_dir / "walk1_subject1.csv", tmp_path / "walk1_subject1.csv")
    pattern = r"fps=.* is not a usable frame rate.*--fps 30"
    with pytest.raises(MotionFormatError, match=pattern):
        read_clip(path, fps=bad)
    with pytest.raises(MotionFormatError, match=pattern):
        load_clip(path, fps=bad, g1=g1)
    with pytest.raises(MotionFormatError, match=pattern):
        check_files([path], g1, fps=bad)  # once for the whole run, not a row per file


def test_qpos_npz_rate_rules(tmp_path, walk):
    np.savez(tmp_path / "holo.npz", qpos=walk.qpos())
    with pytest.raises(MotionFormatError, match="holo.npz: no frame rate"):
        read_clip(tmp_path / "holo.npz")
    np.savez(tmp_path / "holo_30fps.npz", qpos=walk.qpos())
    assert read_clip(tmp_path / "holo_30fps.npz").provenance["fps_source"] == "file"
    np.savez(tmp_path / "dt.npz", qpos=walk.qpos(), fps=np.array(1 / 30))  # a frame period under 'fps'
    with pytest.raises(MotionFormatError, match=r"'fps' holds 0.0333.*frame period"):
        read_clip(tmp_path / "dt.npz")
    with pytest.warns(MotionWarning, match="using fps=30 as passed"):
        assert read_clip(tmp_path / "dt.npz", fps=30).fps == 30.0
