"""Raw joint-position reader: a synthetic SMPL rest skeleton written in SMPL and PHC column orders (22, 24 and 52
joints), in other units and up axes, with mapping files, and the errors a user meets (no fps, bad mapping, AMASS)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mocap_support import SMPL24_REST
from scipy.spatial.transform import Rotation

from humanoid_gpt.governance.mocap import PRESETS, MocapFormatError, MocapWarning, read_mocap, read_positions

Y_TO_Z = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)  # the readers' (x, y, z) -> (z, x, y)


def fingers(wrist: np.ndarray, side: float) -> np.ndarray:
    """15 finger joints (index, middle, pinky, ring, thumb; 3 each) beyond a wrist; side +1 left, -1 right."""
    spread = {"index": 0.03, "middle": 0.01, "pinky": -0.03, "ring": -0.01, "thumb": 0.05}
    return np.array([wrist + [side * (0.09 + 0.025 * k), -0.01, spread[f]] for f in spread for k in range(3)])


def smplh52_rest() -> np.ndarray:
    return np.concatenate([SMPL24_REST[:22], fingers(SMPL24_REST[20], 1.0), fingers(SMPL24_REST[21], -1.0)])


def animate(rest: np.ndarray, T: int = 20) -> np.ndarray:
    """(T, J, 3): the rest pose turning about the vertical (y) and walking along z, rigidly."""
    yaw = Rotation.from_euler("y", np.linspace(0, 60, T)[:, None], degrees=True)
    moved = np.stack([r.apply(rest) for r in yaw])
    return moved + np.linspace(0, 1, T)[:, None, None] * [0, 0, 1]


def reorder(positions: np.ndarray, source: str, target: str) -> np.ndarray:
    """Columns of ``source``'s preset rearranged into ``target``'s order (matched by canonical name)."""
    index = {c: i for i, c in enumerate(PRESETS[source].canonical)}
    return positions[:, [index[c] for c in PRESETS[target].canonical]]


SMPL_REST = {"smpl24": SMPL24_REST, "smpl22": SMPL24_REST[:22], "smplh52": smplh52_rest()}
PHC = {"smpl24": "phc24", "smpl22": "phc22", "smplh52": "phc52"}


@pytest.mark.parametrize("smpl", ["smpl24", "smpl22", "smplh52"])
def test_smpl_and_phc_orders_detected(tmp_path, smpl):
    motion = animate(SMPL_REST[smpl])
    for preset in (smpl, PHC[smpl]):
        path = tmp_path / f"{preset}.npy"
        np.save(path, reorder(motion, smpl, preset))
        m = read_positions(path, fps=30)
        assert m.provenance["preset"] == preset and m.provenance["preset_source"].startswith("detected")
        assert m.joint_names == PRESETS[preset].joints and m.canonical == PRESETS[preset].canonical
        assert m.provenance["unit"] == "m" and m.provenance["up_axis"] == "y" and m.rotations is None
        expected = reorder(motion, smpl, preset) @ Y_TO_Z.T  # metres already; Y up -> Z up
        assert np.allclose(m.positions, expected)
        for name in ("left_knee", "right_ankle", "head", "left_wrist"):  # same joint whatever the order
            assert np.allclose(m.positions[:, m.joint(name)], motion[:, PRESETS[smpl].canonical.index(name)] @ Y_TO_Z.T)
        assert 1.4 < m.height() < 1.8
        sk = m.skeleton
        assert sk is not None and list(sk.parents) == list(PRESETS[preset].parents)
        lengths = np.linalg.norm(m.positions[:, 1:] - m.positions[:, sk.parents[1:]], axis=-1)
        assert np.allclose(np.linalg.norm(sk.offsets[1:], axis=-1), lengths[0])


@pytest.mark.parametrize(("scale", "unit"), [(100.0, "cm"), (1000.0, "mm"), (1.0, "m")])
@pytest.mark.parametrize("up", ["y", "z"])
def test_units_and_up_axis_converted(tmp_path, scale, unit, up):
    motion = animate(SMPL24_REST)
    stored = motion if up == "y" else motion @ Y_TO_Z.T
    path = tmp_path / "clip.npz"
    np.savez(path, joints=stored * scale, mocap_framerate=np.array(60.0))
    m = read_mocap(path)
    assert m.provenance["unit"] == unit and m.provenance["unit_source"] == "detected"
    assert m.provenance["up_axis"] == up and m.provenance["up_axis_source"] == "detected"
    assert m.fps == 60 and m.provenance["fps_source"] == "file" and m.provenance["key"] == "joints"
    assert np.allclose(m.positions, motion @ Y_TO_Z.T)
    head, feet = m.joint("head"), [m.joint("left_foot"), m.joint("right_foot")]
    assert (m.positions[:, head, 2] > m.positions[:, feet, 2].max(axis=1) + 1.0).all()


def test_options_override_detection(tmp_path):
    path = tmp_path / "clip.npy"
    np.save(path, animate(SMPL24_REST) * 100)
    m = read_positions(path, preset="smpl24", unit="cm", up_axis="y", fps=25)
    assert m.provenance["preset_source"] == "option" and m.provenance["unit_source"] == "option"
    assert m.provenance["fps_source"] == "option" and m.fps == 25
    with pytest.warns(MocapWarning, match="head is above the feet along y"):
        read_positions(path, unit=0.01, up_axis="z", fps=25)
    with pytest.raises(MocapFormatError, match="preset phc22 has 22"):
        read_positions(path, preset="phc22", fps=25)


def test_fps_never_guessed(tmp_path):
    path = tmp_path / "clip.npy"
    np.save(path, animate(SMPL24_REST))
    with pytest.raises(MocapFormatError, match=r"clip.npy: fps: no frame rate.*Fix: pass fps=") as info:
        read_positions(path)
    assert "never guessed" in str(info.value)
    npz = tmp_path / "clip.npz"
    np.savez(npz, positions=animate(SMPL24_REST), fps=np.array(30.0))
    with pytest.warns(MocapWarning, match="file says 30.0 fps; using fps=50"):
        assert read_positions(npz, fps=50).fps == 50


def test_npz_without_positions_lists_its_keys(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, xyz=animate(SMPL24_REST), rate=30)
    with pytest.raises(MocapFormatError, match=r"no key among positions.*the file has xyz, rate.*key="):
        read_positions(path, fps=30)
    assert read_positions(path, key="xyz", fps=30).num_joints == 24


@pytest.mark.parametrize(
    ("shape", "pattern"), [((10, 24), r"shape \(10, 24\), expected \(T, J, 3\)"), ((0, 24, 3), r"T > 0")]
)
def test_bad_arrays(tmp_path, shape, pattern):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros(shape))
    with pytest.raises(MocapFormatError, match=pattern):
        read_positions(path, fps=30)


def test_nan_and_unknown_joint_count(tmp_path):
    motion = animate(SMPL24_REST)
    motion[3, 5, 1] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, motion)
    with pytest.raises(MocapFormatError, match="NaN or inf at frame 3, column 5"):
        read_positions(path, fps=30)
    np.save(path, animate(SMPL24_REST)[:, :17])
    with pytest.raises(MocapFormatError, match=r"no preset has 17 joints.*Fix: pass a mapping file"):
        read_positions(path, fps=30)


def test_amass_parameter_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("HGPT_BODY_MODELS", raising=False)  # without body models even read_mocap cannot read them
    path = tmp_path / "amass.npz"
    np.savez(path, poses=np.zeros((5, 156)), trans=np.zeros((5, 3)), betas=np.zeros(16), mocap_framerate=120.0)
    for read in (read_mocap, read_positions):
        with pytest.raises(MocapFormatError, match=r"SMPL parameter file.*smplx package.*Fix:"):
            read(path)


# --- mapping files ----------------------------------------------------------------------------------------------------

# Seven columns of a small custom skeleton, children listed before parents on purpose.
MAPPED = ["knee_l", "hip_l", "root", "head", "ankle_l", "hip_r", "ankle_r"]
MAPPED_PARENTS = {"knee_l": "hip_l", "hip_l": "root", "root": None, "head": "root", "ankle_l": "knee_l",
                  "hip_r": "root", "ankle_r": "hip_r"}  # fmt: skip
CANON = {"root": "pelvis", "hip_l": "left_hip", "knee_l": "left_knee", "ankle_l": "left_ankle", "head": "head",
         "hip_r": "right_hip", "ankle_r": "right_ankle"}  # fmt: skip


def _mapped_motion() -> np.ndarray:
    canon = PRESETS["smpl24"].canonical
    cols = [canon.index(CANON[n]) for n in MAPPED]
    return animate(SMPL24_REST)[:, cols]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_mapping_file(tmp_path, fmt):
    np.save(tmp_path / "custom.npy", _mapped_motion() * 1000)
    mapping = {"joints": MAPPED, "parents": MAPPED_PARENTS, "canonical": CANON, "fps": 24, "up_axis": "y"}
    path = tmp_path / f"custom.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(mapping))
    else:
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(mapping))
    m = read_positions(tmp_path / "custom.npy", mapping=path)
    assert m.fps == 24 and m.provenance["fps_source"] == "mapping"
    assert m.provenance["up_axis_source"] == "mapping" and m.provenance["unit"] == "mm"
    # Reordered so parents come first; provenance keeps the file column of each joint.
    assert m.joint_names[0] == "root" and m.provenance["columns"][0] == MAPPED.index("root")
    assert m.skeleton is not None and all(p < j for j, p in enumerate(m.skeleton.parents))
    assert np.allclose(m.positions[:, m.joint("left_knee")], _mapped_motion()[:, 0] @ Y_TO_Z.T)
    assert m.canonical[m.joint("ankle_r")] == "right_ankle"


def test_mapping_without_parents(tmp_path):
    np.save(tmp_path / "c.npy", _mapped_motion())
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"joints": MAPPED, "canonical": CANON}))
    m = read_positions(tmp_path / "c.npy", mapping=path, fps=30)
    assert m.skeleton is None and m.joint_names == tuple(MAPPED) and m.provenance["up_axis"] == "y"
    path.write_text(json.dumps({"joints": MAPPED}))  # no head or feet known: the up axis must be given
    with pytest.raises(MocapFormatError, match=r"cannot tell the up axis.*Fix: pass up_axis="):
        read_positions(tmp_path / "c.npy", mapping=path, fps=30)
    assert read_positions(tmp_path / "c.npy", mapping=path, fps=30, up_axis="y").provenance["unit"] == "m"


@pytest.mark.parametrize(
    ("mapping", "pattern"),
    [
        ({"joints": MAPPED[:-1]}, r"joints: lists 6 joints but the positions have 7 columns.*Fix: list exactly 7"),
        ({"joints": MAPPED, "canonical": {"tail": "pelvis"}}, r"canonical: names joint 'tail'.*Fix: use one of"),
        ({"joints": MAPPED, "canonical": {"root": "hips"}}, r"'root: hips': unknown canonical name"),
        ({"joints": MAPPED, "parents": {**MAPPED_PARENTS, "head": "neck"}}, r"parents: names joint 'neck'"),
        ({"joints": MAPPED, "parents": {**MAPPED_PARENTS, "root": "head"}}, r"the parents form a cycle"),
        ({"joints": MAPPED + ["x"], "canonical": {}}, r"lists 8 joints"),
        ({"names": MAPPED}, r"joints: missing or not a list"),
    ],
)
def test_bad_mapping_files(tmp_path, mapping, pattern):
    np.save(tmp_path / "c.npy", _mapped_motion())
    path = tmp_path / "map.json"
    path.write_text(json.dumps(mapping))
    with pytest.raises(MocapFormatError, match=pattern) as info:
        read_positions(tmp_path / "c.npy", mapping=path, fps=30, up_axis="y")
    assert str(info.value).startswith(str(path)) and "Fix: " in str(info.value)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "clip.fbx"
    path.write_text("")
    with pytest.raises(MocapFormatError, match=r"unknown mocap file type '.fbx'.*\.bvh, \.amc, \.npy, \.npz"):
        read_mocap(path)
