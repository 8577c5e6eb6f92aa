"""ASF/AMC reader: CMU subject 02 from the shared data, a small synthetic skeleton with hand-computed kinematics, the
ASF lookup beside an AMC, and clear errors for broken motions."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from humanoid_gpt.governance.mocap import MocapFormatError, MocapWarning, read_amc, read_asf, read_mocap


@pytest.fixture(scope="module")
def walk(cmu_dir):
    return read_amc(cmu_dir / "02_01.amc")


def test_cmu_asf(cmu_dir):
    asf = read_asf(cmu_dir / "02.asf")
    assert asf.length == 0.45 and asf.angle == "deg" and asf.root_order == ("tx", "ty", "tz", "rx", "ry", "rz")
    assert len(asf.bones) == 30 and asf.parents["lfemur"] == "lhipjoint" and asf.parents["lhipjoint"] == "root"
    femur = asf.bones["lfemur"]
    assert femur.dof == ("rx", "ry", "rz") and femur.axis_order == "XYZ" and len(femur.limits) == 3
    assert np.allclose(np.degrees(femur.axis), [0, 0, 20])
    assert asf.bones["lhipjoint"].dof == ()
    assert asf.metres_per_unit * femur.length == pytest.approx(7.59371 / 0.45 * 0.0254)


def test_cmu_walk(cmu_dir, walk):
    numbers = [line.strip() for line in (cmu_dir / "02_01.amc").read_text().splitlines() if line.strip().isdigit()]
    assert walk.num_frames == int(numbers[-1]) == 343
    assert walk.fps == 120.0 and walk.provenance["fps_source"] == "cmu_default"
    assert walk.provenance["asf_path"].endswith("02.asf") and walk.provenance["scale_to_m"] == pytest.approx(
        0.0254 / 0.45
    )
    assert 1.4 < walk.height() < 2.0
    z = walk.positions[..., 2]
    assert np.mean(z[:, walk.joint("head")] > z[:, walk.joint("pelvis")]) > 0.95  # Z up
    feet = {j for j, n in enumerate(walk.joint_names) if n.startswith(("lfoot", "rfoot", "ltoes", "rtoes"))}
    assert np.mean([j in feet for j in z.argmin(axis=1)]) > 0.95  # the feet are the lowest joints
    assert walk.canonical[walk.joint("ltibia")] == "left_knee" and walk.joint("head_top") == walk.joint("head_end")
    # Right-handed, not mirrored: walking forward, the left hip is on the left of the direction of travel.
    velocity = np.gradient(walk.positions[:, 0], axis=0) * [1, 1, 0]
    left = np.cross([0, 0, 1], velocity)
    assert (
        np.mean(
            np.sum((walk.positions[:, walk.joint("lfemur")] - walk.positions[:, walk.joint("rfemur")]) * left, 1) > 0
        )
        > 0.95
    )


def test_cmu_kinematics_consistent(walk):
    """Bone lengths stay constant over time and positions follow from orientations and rest offsets."""
    sk = walk.skeleton
    child = np.arange(1, sk.num_joints)
    lengths = np.linalg.norm(walk.positions[:, child] - walk.positions[:, sk.parents[child]], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-9
    assert np.allclose(lengths[0], np.linalg.norm(sk.offsets[child], axis=-1))
    for j in child:
        p = sk.parents[j]
        rot = Rotation.from_quat(walk.rotations[:, p], scalar_first=True)
        assert np.allclose(walk.positions[:, j] - walk.positions[:, p], rot.apply(sk.offsets[j]), atol=1e-9)


def test_cmu_reads_fast(cmu_dir):
    start = time.perf_counter()
    motion = read_mocap(cmu_dir / "02_05.amc")
    assert motion.num_frames == 1854
    assert time.perf_counter() - start < 3.0  # ~0.2 s here; generous for a loaded machine


# --- synthetic files --------------------------------------------------------------------------------------------------

ASF = """# a two-bone test skeleton; length 0.0254 makes file units metres
:version 1.10
:name test
:units
  mass 1.0
  length 0.0254
  angle deg
:documentation
  free text
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 1 0 0
     length 1.0
     axis 0 0 90  XYZ
    dof rx
    limits (-180 180)
  end
  begin
     id 2
     name b
     direction 0 1 0
     length 0.5
     axis 0 0 0 XYZ
    dof rz l
    limits (-180.0 180.0)
           (-inf inf)
  end
:hierarchy
  begin
    root a
    a b
  end
"""


def amc(frames: list[dict[str, str]], header: str = ":FULLY-SPECIFIED\n:DEGREES\n", first: int = 1) -> str:
    out = [header.rstrip("\n")]
    for k, frame in enumerate(frames):
        out.append(str(first + k))
        out += [f"{bone} {values}" for bone, values in frame.items()]
    return "\n".join(out) + "\n"


FRAMES = [
    {"root": "0 0 0 0 0 0", "a": "90", "b": "0 0"},
    {"b": "90 0.5", "root": "1 2 3 0 90 0", "a": "0"},  # bones in any order
]


def _write(folder: Path, asf: str = ASF, frames=FRAMES, name: str = "01_01", **kw) -> Path:
    (folder / "01.asf").write_text(asf)
    path = folder / f"{name}.amc"
    path.write_text(amc(frames, **kw))
    return path


def test_synthetic_kinematics_by_hand(tmp_path):
    """Bone a: axis frame C = Rz(90), dof rx = 90 -> a quarter turn about C's x axis, which is world y: its
    direction (1, 0, 0) goes to (0, 0, -1). Bone b hangs off a's end along (0, 1, 0), 0.5 long (+ its l dof)."""
    m = read_amc(_write(tmp_path), up_axis="z")
    assert m.joint_names == ("root", "a", "b", "b_end") and list(m.skeleton.parents) == [-1, 0, 1, 2]
    assert m.provenance["fps_source"] == "cmu_default" and m.provenance["scale_to_m"] == pytest.approx(1.0)
    p = m.positions
    assert np.allclose(p[0], [[0, 0, 0], [0, 0, 0], [0, 0, -1], [0, 0.5, -1]])
    # Frame 1: root at (1, 2, 3) turned 90 deg about y (x -> -z); a unturned: its end at root + Ry(90)(1, 0, 0);
    # b turned 90 about z: (0, 1, 0) -> (-1, 0, 0), stretched by l = 0.5 to length 1, then Ry(90): (0, 0, 1).
    assert np.allclose(p[1], [[1, 2, 3], [1, 2, 3], [1, 2, 2], [1, 2, 3]])
    # The default reads the file as Y-up and turns it Z-up by (x, y, z) -> (z, x, y).
    y_up = read_amc(tmp_path / "01_01.amc", fps=60)
    assert np.allclose(y_up.positions, p[..., [2, 0, 1]]) and y_up.fps == 60
    assert y_up.provenance["fps_source"] == "option"


def test_radians_crlf_comments_and_missing_last_frame(tmp_path):
    frames = [{"root": "0 0 0 0 0 0", "a": f"{np.pi / 2}", "b": "0 0"}] * 3 + [{"root": "0 0 0 0 0 0", "a": "0"}]
    text = amc(frames, header="# made by hand\n:FULLY-SPECIFIED\n:RADIANS\n").replace("\n", "\r\n")
    (tmp_path / "01.asf").write_bytes(ASF.replace("\n", "\r\n").encode())
    path = tmp_path / "01_02.amc"
    path.write_bytes(text.encode())
    with pytest.warns(MocapWarning, match="last frame 4 is incomplete; dropped"):
        m = read_amc(path, up_axis="z")
    assert m.num_frames == 3 and m.provenance["angle_unit"] == "rad"
    assert np.allclose(m.positions[:, 2], [0, 0, -1])


def test_asf_found_beside_the_amc(tmp_path):
    path = _write(tmp_path)
    assert read_amc(path).provenance["asf_path"] == str(tmp_path / "01.asf")  # subject prefix
    other = _write(tmp_path, name="walk")  # no prefix match, but the only .asf in the folder
    assert read_amc(other).provenance["asf_path"] == str(tmp_path / "01.asf")


def test_amc_without_asf(tmp_path):
    path = tmp_path / "05_01.amc"
    path.write_text(amc(FRAMES))
    with pytest.raises(MocapFormatError, match=r"an AMC needs its ASF skeleton.*Fix: pass asf_path="):
        read_amc(path)
    (tmp_path / "x.asf").write_text(ASF)
    (tmp_path / "y.asf").write_text(ASF)
    with pytest.raises(MocapFormatError, match=r"found x.asf, y.asf"):
        read_amc(path)
    assert read_amc(path, tmp_path / "y.asf").num_frames == 2


def _bad(frames_text: str) -> str:
    return ":FULLY-SPECIFIED\n:DEGREES\n" + frames_text


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (_bad("1\nroot 0 0 0 0 0 0\na\nb 0 0\n"), r"line 5 \(frame 1\): bone 'a' has 0 values, expected 1 \(rx\)"),
        (_bad("1\nroot 0 0 0 0 0 0\na 1 2\nb 0 0\n"), r"line 5 \(frame 1\): bone 'a' has 2 values, expected 1"),
        (_bad("1\nroot 0 0 0 0 0\na 1\nb 0 0\n"), r"line 4 \(frame 1\): bone 'root' has 5 values, expected 6"),
        (_bad("1\nroot 0 0 0 0 0 0\nzz 1\na 1\nb 0 0\n"), r"line 5: 'zz' is not a bone of the ASF"),
        (_bad("1\nroot 0 0 0 0 0 0\na x\nb 0 0\n"), r"line 5: non-numeric value in 'x'"),
        (_bad("1\nroot 0 0 0 0 0 0\na nan\nb 0 0\n"), r"line 5: NaN or inf"),
        (
            _bad("1\nroot 0 0 0 0 0 0\nb 0 0\n2\nroot 0 0 0 0 0 0\na 1\nb 0 0\n"),
            r"frame 1 \(line 3\): bone 'a' missing",
        ),
        (_bad("1\nroot 0 0 0 0 0 0\na 1\nb 0 0\n3\n"), r"line 7: frame 3 follows frame 1"),
        (_bad("root 0 0 0 0 0 0\n"), r"line 3: 'root' before the first frame number"),
        (_bad(""), r"no complete frame"),
    ],
)
def test_broken_amc(tmp_path, text, pattern):
    (tmp_path / "01.asf").write_text(ASF)
    path = tmp_path / "01_09.amc"
    path.write_text(text)
    with pytest.raises(MocapFormatError, match=pattern) as info:
        read_amc(path)
    assert str(info.value).startswith(str(path)) and "Fix: " in str(info.value)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda s: s.replace(":hierarchy", ":nothing"), r":hierarchy: section missing"),
        (lambda s: s.replace("    a b\n", ""), r"bones \['b'\] have no parent"),
        (lambda s: s.replace("    a b\n", "    a c\n"), r"line \d+: hierarchy names unknown bone 'c'"),
        (lambda s: s.replace("dof rz l", "dof rz q"), r"line 31: unknown dof \['q'\]"),
        (lambda s: s.replace("     length 0.5\n", ""), r"bone at line 25: no length"),
    ],
)
def test_broken_asf(tmp_path, edit, pattern):
    path = tmp_path / "01.asf"
    path.write_text(edit(ASF))
    with pytest.raises(MocapFormatError, match=pattern) as info:
        read_asf(path)
    assert str(info.value).startswith(str(path)) and "Fix: " in str(info.value)
