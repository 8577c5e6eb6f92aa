"""BVH reader: LAFAN1 clips from the shared data, synthetic files written here (any channel order, 6-channel joints,
units, CRLF), a write/read round trip, and one clear error per kind of broken file."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from humanoid_gpt.governance.mocap import HumanMotion, MocapFormatError, MocapWarning, read_bvh, read_mocap

# --- a tiny BVH writer and an independent forward kinematics (scipy, not the reader's code) -----------------------


def bvh_text(joints: list[dict], frames: np.ndarray, frame_time: float = 1 / 30, newline: str = "\n") -> str:
    """``joints``: dicts with name, parent (index or -1), offset, channels (names), end (End Site offset or None),
    in hierarchy order; ``frames`` (T, sum of channels)."""
    out = ["HIERARCHY"]

    def write(j: int, depth: int) -> None:
        pad = "\t" * depth
        joint = joints[j]
        out.append(f"{pad}{'ROOT' if joint['parent'] < 0 else 'JOINT'} {joint['name']}")
        out.append(pad + "{")
        out.append(f"{pad}\tOFFSET {' '.join(f'{v:.6f}' for v in joint['offset'])}")
        out.append(f"{pad}\tCHANNELS {len(joint['channels'])} {' '.join(joint['channels'])}")
        for c, child in enumerate(joints):
            if child["parent"] == j:
                write(c, depth + 1)
        if joint.get("end") is not None:
            end = " ".join(map(str, joint["end"]))
            out.extend([f"{pad}\tEnd Site", pad + "\t{", f"{pad}\t\tOFFSET {end}", pad + "\t}"])
        out.append(pad + "}")

    write(0, 0)
    out += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.6f}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in frames]
    return newline.join(out) + newline


def reference_fk(joints: list[dict], frames: np.ndarray) -> np.ndarray:
    """Global positions (T, J, 3) in file units and axes, by scipy: intrinsic rotations in channel order."""
    T = len(frames)
    pos, rot = np.zeros((T, len(joints), 3)), [None] * len(joints)
    col = 0
    for j, joint in enumerate(joints):
        t = np.tile(np.asarray(joint["offset"], float), (T, 1))
        axes, angles = "", []
        for ch in joint["channels"]:
            if ch.endswith("position"):
                t[:, "XYZ".index(ch[0])] = frames[:, col]
            else:
                axes += ch[0]
                angles.append(frames[:, col])
            col += 1
        local = Rotation.from_euler(axes, np.stack(angles, 1), degrees=True) if axes else Rotation.identity(T)
        p = joint["parent"]
        if p < 0:
            pos[:, j], rot[j] = t, local
        else:
            pos[:, j], rot[j] = pos[:, p] + rot[p].apply(t), rot[p] * local
    return pos


def human(scale: float = 1.0) -> list[dict]:
    """A 1.75 m human-like skeleton, Y up, facing +z, in metres times ``scale``, LAFAN1-like channels."""
    zyx = ["Zrotation", "Yrotation", "Xrotation"]
    rows = [
        ("Hips", -1, (0, 0.95, 0), ["Xposition", "Yposition", "Zposition"] + zyx, None),
        ("LeftUpLeg", 0, (0.1, -0.05, 0), zyx, None),
        ("LeftLeg", 1, (0, -0.42, 0), zyx, None),
        ("LeftFoot", 2, (0, -0.42, 0), zyx, None),
        ("LeftToe", 3, (0, -0.06, 0.14), zyx, (0, 0, 0.05)),
        ("RightUpLeg", 0, (-0.1, -0.05, 0), zyx, None),
        ("RightLeg", 5, (0, -0.42, 0), zyx, None),
        ("RightFoot", 6, (0, -0.42, 0), zyx, None),
        ("RightToe", 7, (0, -0.06, 0.14), zyx, (0, 0, 0.05)),
        ("Spine", 0, (0, 0.12, 0), zyx, None),
        ("Spine1", 9, (0, 0.15, 0), zyx, None),
        ("Spine2", 10, (0, 0.15, 0), zyx, None),
        ("Neck", 11, (0, 0.18, 0), zyx, None),
        ("Head", 12, (0, 0.1, 0), zyx, (0, 0.15, 0)),
        ("LeftShoulder", 11, (0.05, 0.15, 0), zyx, None),
        ("LeftArm", 14, (0.13, 0, 0), zyx, None),
        ("LeftForeArm", 15, (0.28, 0, 0), zyx, None),
        ("LeftHand", 16, (0.25, 0, 0), zyx, (0.1, 0, 0)),
        ("RightShoulder", 11, (-0.05, 0.15, 0), zyx, None),
        ("RightArm", 18, (-0.13, 0, 0), zyx, None),
        ("RightForeArm", 19, (-0.28, 0, 0), zyx, None),
        ("RightHand", 20, (-0.25, 0, 0), zyx, (-0.1, 0, 0)),
    ]
    return [
        dict(name=n, parent=p, offset=np.array(o) * scale, channels=c, end=None if e is None else np.array(e) * scale)
        for n, p, o, c, e in rows
    ]


def motion_for(joints: list[dict], T: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Random but human-ish frames: root walking along +z at hip height, joint angles within +-30 degrees."""
    rng = np.random.default_rng(seed)
    cols = []
    for joint in joints:
        for ch in joint["channels"]:
            if ch.endswith("position"):
                base = {"X": 0.0, "Y": 0.95, "Z": 0.0}[ch[0]] * scale
                cols.append(base + (np.linspace(0, 1.0, T) * scale if ch[0] == "Z" else np.zeros(T)))
            else:
                cols.append(rng.uniform(-30, 30) + 5 * np.sin(np.linspace(0, 3, T) + rng.uniform(0, 6)))
    return np.stack(cols, axis=1)


Y_TO_Z = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)  # the reader's documented (x, y, z) -> (z, x, y)

# --- shared data ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk(lafan1_bvh_dir) -> HumanMotion:
    return read_bvh(lafan1_bvh_dir / "walk.bvh")


def test_lafan1_walk_header_units_axes(walk):
    assert walk.num_frames == 1800 and walk.fps == 30.0 and walk.num_joints == 22
    prov = walk.provenance
    assert prov["unit"] == "cm" and prov["unit_source"] == "detected" and prov["scale_to_m"] == 0.01
    assert prov["up_axis"] == "y" and prov["fps_source"] == "file" and prov["format"] == "bvh"
    assert walk.joint("Hips") == walk.joint("pelvis") == 0
    # Z up: the head is above the hips and the feet below them in (nearly) every frame.
    z = walk.positions[..., 2]
    assert np.mean(z[:, walk.joint("head")] > z[:, 0]) > 0.99
    assert np.mean(z[:, walk.joint("left_ankle")] < z[:, 0]) > 0.99
    assert 1.5 < walk.height() < 1.9
    feet = [walk.joint(c) for c in ("left_foot", "right_foot", "left_ankle", "right_ankle")]
    assert abs(walk.positions[:, feet, 2].min()) < 0.05  # LAFAN1's floor is the file's y = 0


def test_lafan1_rotations_and_offsets_agree_with_positions(walk):
    """FK consistency after the unit and axis change: child - parent = R_parent offset, bone lengths constant."""
    sk = walk.skeleton
    q = walk.rotations
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)
    for j in range(1, sk.num_joints):
        p = sk.parents[j]
        rot = Rotation.from_quat(q[:, p].reshape(-1, 4), scalar_first=True)
        assert np.allclose(walk.positions[:, j] - walk.positions[:, p], rot.apply(sk.offsets[j]), atol=1e-9)
    lengths = np.linalg.norm(walk.positions[:, 1:] - walk.positions[:, sk.parents[1:]], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-9


def test_lafan1_pairs_with_unitree_g1_retargeting(walk, lafan1_dir):
    """G1 root xy of walk1_subject1 frames 0-1799 = 0.74 x BVH Hips xy, same heading, under 1 cm residual.

    This checks axes and handedness: under (x, y, z) -> (z, x, y) the fit has no rotation; the other common
    Y-to-Z-up choice would need a 90 degree turn, and a mirrored conversion would not fit at all."""
    g1 = np.loadtxt(lafan1_dir / "walk1_subject1.csv", delimiter=",")[:1800]
    hips = walk.positions[:, walk.joint("pelvis"), :2]
    a = (hips - hips[0]) @ np.array([1, 1j])
    b = (g1[:, :2] - g1[0, :2]) @ np.array([1, 1j])
    k = np.vdot(a, b) / np.vdot(a, a)  # least-squares similarity b = k a (complex: scale and rotation)
    assert abs(k) == pytest.approx(0.74, abs=0.01)
    assert abs(np.degrees(np.angle(k))) < 1.0
    assert np.abs(b - 0.74 * a).max() < 0.01


def test_all_lafan1_clips_read_fast(lafan1_bvh_dir):
    for name in ("walk", "run", "dance", "jumps", "fall_getup"):
        start = time.perf_counter()
        motion = read_mocap(lafan1_bvh_dir / f"{name}.bvh")
        elapsed = time.perf_counter() - start
        assert motion.num_frames == 1800 and motion.provenance["unit"] == "cm"
        assert elapsed < 2.0, f"{name}.bvh took {elapsed:.2f} s"  # ~0.05 s here; generous for a loaded machine


# --- synthetic files --------------------------------------------------------------------------------------------------


def test_channel_orders_six_channel_joint_metres_z_up(tmp_path):
    """XYZ / YXZ / ZXY orders, a non-root joint with 6 channels (positions listed after rotations), a 0-channel
    joint: positions match hand-computed values."""
    joints = [
        dict(name="root", parent=-1, offset=(0, 0, 0), channels=["Xposition", "Yposition", "Zposition",
             "Xrotation", "Yrotation", "Zrotation"], end=None),
        dict(name="a", parent=0, offset=(0, 0, 0.5), channels=["Yrotation", "Xrotation", "Zrotation",
             "Xposition", "Yposition", "Zposition"], end=None),
        dict(name="b", parent=1, offset=(0.3, 0, 0), channels=[], end=None),
        dict(name="c", parent=2, offset=(0, 0.2, 0), channels=["Zrotation", "Xrotation", "Yrotation"], end=(0, 0, 1)),
    ]  # fmt: skip
    frames = np.array(
        [
            [1, 2, 3, 90, 0, 0, 0, 0, 0, 0, 0, 0.4, 0, 0, 0],  # root turned 90 deg about x; a moved to z = 0.4
            [0, 0, 0, 0, 0, 90, 0, 90, 0, 0.1, 0, 0.5, 0, 0, 0],  # root 90 about z; a 90 about x, moved (0.1, 0, 0.5)
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 90, 0, 0],  # c turned 90 about z: only its end site would move
        ],
        dtype=float,
    )
    path = tmp_path / "orders.bvh"
    path.write_text(bvh_text(joints, frames))
    m = read_bvh(path, unit="m", up_axis="z", end_sites=True)
    assert m.joint_names == ("root", "a", "b", "c", "c_end")
    assert m.provenance["unit_source"] == "option" and m.provenance["up_axis"] == "z"
    # Frame 0: Rx(90) maps y -> z, z -> -y. a at root + Rx(90)(0, 0, 0.4) = (1, 2 - 0.4, 3).
    assert np.allclose(m.positions[0, 1], [1, 1.6, 3])
    assert np.allclose(m.positions[0, 2], [1.3, 1.6, 3])  # b: + (0.3, 0, 0), x unaffected by Rx
    assert np.allclose(m.positions[0, 3], [1.3, 1.6, 3.2])  # c: + Rx(90)(0, 0.2, 0) = (0, 0, 0.2)
    assert np.allclose(m.positions[0, 4], [1.3, 0.6, 3.2])  # c_end: + Rx(90)(0, 0, 1) = (0, -1, 0)
    # Frame 1: Rz(90) maps x -> y, y -> -x. a = Rz(90)(0.1, 0, 0.5) = (0, 0.1, 0.5); a's own Rx(90) then
    # b = a + Rz Rx (0.3, 0, 0) = a + (0, 0.3, 0); c = b + Rz Rx (0, 0.2, 0) = b + Rz (0, 0, 0.2).
    assert np.allclose(m.positions[1, 1], [0, 0.1, 0.5])
    assert np.allclose(m.positions[1, 2], [0, 0.4, 0.5])
    assert np.allclose(m.positions[1, 3], [0, 0.4, 0.7])
    # Frame 2: only c turns (about z): c stays where b and its offset put it.
    assert np.allclose(m.positions[2, 3], [0.3, 0.2, 0.5])
    assert np.allclose(m.positions, np.concatenate([reference_fk(joints, frames), m.positions[:, 4:]], axis=1))


@pytest.mark.parametrize("up_axis", ["z", None])
def test_round_trip_known_poses(tmp_path, up_axis):
    """A pose sequence written as BVH reads back as the same global positions (in Z-up axes for a Y-up file)."""
    joints = human()
    rng = np.random.default_rng(3)
    orders = ["ZYX", "XYZ", "YXZ", "ZXY", "YZX", "XZY"]
    for k, joint in enumerate(joints[1:]):  # every rotation order somewhere in the tree
        joint["channels"] = [f"{a}rotation" for a in orders[k % 6]]
    frames = motion_for(joints, 40, seed=1)
    frames[:, 3:] += rng.normal(0, 20, frames[:, 3:].shape)
    path = tmp_path / "round.bvh"
    path.write_text(bvh_text(joints, frames))
    with pytest.warns(MocapWarning, match="along y") if up_axis == "z" else contextlib.nullcontext():
        m = read_bvh(path, unit="m", up_axis=up_axis)  # a Y-up file forced Z-up: read as asked, with a warning
    expected = reference_fk(joints, frames)
    if up_axis is None:
        expected = expected @ Y_TO_Z.T
        assert m.provenance["up_axis_source"] == "bvh_convention"
    assert np.allclose(m.positions, expected, atol=1e-5)  # the file holds 6 decimals
    assert m.fps == 30.0 and m.provenance["fps_source"] == "file"


@pytest.mark.parametrize(("scale", "unit"), [(1.0, "m"), (100.0, "cm"), (1000.0, "mm"), (1 / 0.0254, "in")])
def test_unit_detected_from_body_size(tmp_path, scale, unit):
    joints = human(scale)
    frames = motion_for(joints, 10, scale=scale)
    path = tmp_path / f"{unit}.bvh"
    path.write_text(bvh_text(joints, frames))
    m = read_bvh(path)
    assert m.provenance["unit"] == unit and m.provenance["unit_source"] == "detected"
    in_metres = frames / np.r_[[scale] * 3, [1.0] * (frames.shape[1] - 3)]  # root position channels scale
    assert np.allclose(m.positions, reference_fk(human(1.0), in_metres) @ Y_TO_Z.T, atol=1e-5)


def test_crlf_tabs_spaces_and_fps_option(tmp_path):
    joints = human(100.0)
    frames = motion_for(joints, 12, scale=100.0)
    unix, dos = tmp_path / "unix.bvh", tmp_path / "dos.bvh"
    unix.write_text(bvh_text(joints, frames))
    dos.write_bytes(bvh_text(joints, frames, newline="\r\n").replace("\t", "  ").encode())
    a, b = read_bvh(unix), read_bvh(dos)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.rotations, b.rotations)
    c = read_bvh(unix, fps=120)
    assert c.fps == 120 and c.provenance["fps_source"] == "option"


def test_end_sites_head_top_and_y_up_check(tmp_path):
    joints = human()
    frames = motion_for(joints, 5)
    path = tmp_path / "h.bvh"
    path.write_text(bvh_text(joints, frames))
    m = read_bvh(path, end_sites=True, up_axis="auto")
    assert m.num_joints == 22 + 5 and "Head_end" in m.joint_names
    assert m.canonical[m.joint("Head_end")] == "head_top" and m.joint("head_top") == m.joint("Head_end")
    assert m.provenance["up_axis_source"] == "detected" and m.provenance["up_axis"] == "y"
    with pytest.warns(MocapWarning, match="head is above the feet along y"):
        read_bvh(path, up_axis="z")


def test_motion_helpers_slice_resample_joint(tmp_path):
    joints = human()
    frames = motion_for(joints, 31)
    path = tmp_path / "h.bvh"
    path.write_text(bvh_text(joints, frames))
    m = read_bvh(path)
    assert m.duration == pytest.approx(1.0)
    part = m.slice(10, 20)
    assert part.num_frames == 10 and np.array_equal(part.positions, m.positions[10:20])
    assert part.provenance["slice"] == [10, 20]
    fast = m.resample(60)
    assert fast.num_frames == 61 and fast.fps == 60 and fast.provenance["resampled_from_fps"] == 30
    assert np.allclose(fast.positions[::2], m.positions)
    assert np.allclose(np.abs(np.sum(fast.rotations[::2] * m.rotations, axis=-1)), 1.0)
    mid = Rotation.from_quat(fast.rotations[1], scalar_first=True)
    ends = Rotation.from_quat(m.rotations[:2].reshape(-1, 4), scalar_first=True)
    half = Rotation.from_quat(m.rotations[0], scalar_first=True).inv() * mid
    whole = ends[: m.num_joints].inv() * ends[m.num_joints :]
    assert np.allclose(half.magnitude(), whole.magnitude() / 2, atol=1e-9)  # slerp: half the way at t = 0.5
    assert m.resample(15).num_frames == 16
    with pytest.raises(KeyError, match="LeftUpLeg"):
        m.joint("tail")


# --- broken files ----------------------------------------------------------------------------------------------------


def _good(tmp_path) -> tuple[Path, list[str]]:
    joints = human(100.0)
    path = tmp_path / "broken.bvh"
    lines = bvh_text(joints, motion_for(joints, 6, scale=100.0)).splitlines()
    return path, lines


def _motion_line(lines: list[str]) -> int:
    return lines.index("MOTION")


def _corrupt(kind: str, lines: list[str]) -> tuple[list[str], str]:
    """The corrupted lines and a regular expression the error must match."""
    m = _motion_line(lines)
    first_row = m + 3
    if kind == "truncated":
        return lines[: first_row + 4], r"truncated: 'Frames: 6' but only 4 frame rows.*Frames: 4"
    if kind == "value_count":
        lines[first_row + 2] = lines[first_row + 2].rsplit(" ", 1)[0]
        return lines, rf"line {first_row + 3}: frame row has 68 values, expected 69"
    if kind == "non_numeric":
        lines[first_row + 1] = lines[first_row + 1].replace(" ", " abc ", 1).rsplit(" ", 1)[0]
        return lines, rf"line {first_row + 2}, value 2: 'abc' is not a number"
    if kind == "missing_channels":
        k = next(i for i, line in enumerate(lines) if "JOINT LeftLeg" in line)
        del lines[k + 3]
        return lines, rf"line {k + 1}: joint 'LeftLeg' has no CHANNELS line"
    if kind == "unknown_channel":
        k = next(i for i, line in enumerate(lines) if "CHANNELS" in line and i > 10)
        lines[k] = lines[k].replace("Yrotation", "Wrotation")
        return lines, rf"line {k + 1}: unknown channel 'Wrotation'"
    if kind == "nan":
        lines[first_row + 3] = lines[first_row + 3].replace(" ", " nan ", 1).rsplit(" ", 1)[0]
        return lines, rf"line {first_row + 4}, value 2: nan"
    if kind == "zero_frames":
        return lines[: m + 1] + ["Frames: 0", "Frame Time: 0.033333"], r"Frames: 0: the file has no motion"
    if kind == "frame_time_zero":
        lines[m + 2] = "Frame Time: 0"
        return lines, rf"line {m + 3}: Frame Time: '0' is not a positive number"
    if kind == "missing_motion":
        return lines[:m], r"no MOTION line found"
    if kind == "missing_hierarchy":
        return lines[1:], r"no HIERARCHY line found"
    if kind == "unbalanced":
        k = max(i for i in range(m) if lines[i].strip() == "}")
        del lines[k]
        return lines, r"unbalanced braces: the block of 'Hips' opened here is never closed"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "truncated",
        "value_count",
        "non_numeric",
        "missing_channels",
        "unknown_channel",
        "nan",
        "zero_frames",
        "frame_time_zero",
        "missing_motion",
        "missing_hierarchy",
        "unbalanced",
    ],
)
def test_broken_files_raise_clear_errors(tmp_path, kind):
    path, lines = _good(tmp_path)
    lines, pattern = _corrupt(kind, lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MocapFormatError, match=pattern) as info:
        read_bvh(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "Fix: " in message


def test_frame_time_zero_is_fine_with_fps_option(tmp_path):
    path, lines = _good(tmp_path)
    lines[_motion_line(lines) + 2] = "Frame Time: 0"
    path.write_text("\n".join(lines))
    assert read_bvh(path, fps=30).fps == 30


def test_extra_rows_warn_and_are_ignored(tmp_path):
    path, lines = _good(tmp_path)
    path.write_text("\n".join(lines + [lines[-1]]))
    with pytest.warns(MocapWarning, match="7 frame rows but 'Frames: 6'"):
        assert read_bvh(path).num_frames == 6
