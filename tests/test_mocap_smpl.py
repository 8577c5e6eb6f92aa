"""AMASS-style SMPL parameter reader: a tiny synthetic SMPL body model (24 vertices at the joints, identity joint
regressor, one-hot skinning weights) written in smplx's format, and AMASS-style npz files posed by hand."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hostile_support import live_payload
from mocap_support import SMPL24_REST
from scipy.spatial.transform import Rotation

from humanoid_gpt.governance.mocap import PRESETS, MocapFormatError, MocapWarning, read_mocap, read_smpl

TEMPLATE = SMPL24_REST[:, [2, 0, 1]]  # the readers' (x, y, z) -> (z, x, y): Z up
PARENTS24 = np.array(PRESETS["smpl24"].parents)
RNG = np.random.default_rng(0)
SHAPEDIRS = RNG.normal(scale=0.01, size=(24, 3, 10))
BETAS = RNG.normal(size=10)
REST = TEMPLATE + SHAPEDIRS @ BETAS  # the joints of this shape at rest (J_regressor is the identity)
L_HIP, L_KNEE, L_ANKLE, L_FOOT = 1, 4, 7, 10
RIGHT_LEG = [2, 5, 8, 11]


def body_model_arrays() -> dict:
    kintree = np.stack([np.where(PARENTS24 < 0, 2**32 - 1, PARENTS24), np.arange(24)]).astype(np.int64)
    return dict(
        v_template=TEMPLATE,
        shapedirs=SHAPEDIRS,
        posedirs=RNG.normal(scale=0.01, size=(24, 3, 207)),  # moves vertices only, never the joints
        J_regressor=np.eye(24),
        weights=np.eye(24),
        kintree_table=kintree,
        f=np.array([[0, 1, 2], [0, 2, 3]]),
    )


def write_body_model(folder, gender: str = "NEUTRAL", **extra):
    path = folder / "smpl" / f"SMPL_{gender}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{**body_model_arrays(), **extra})
    return folder


def write_pkl_body_model(folder, content) -> Path:
    path = folder / "smpl" / "SMPL_NEUTRAL.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=2))
    return path


def rotvec(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_rotvec()


def amass_poses() -> tuple[np.ndarray, np.ndarray]:
    """Frames: 0 rest; 1 left knee 90 deg about x; 2 left hip 30 deg about y and knee 45 deg about x; 3 rest
    translated; 4 root turned 90 deg about z."""
    poses = np.zeros((5, 72))
    poses[1, 3 * L_KNEE : 3 * L_KNEE + 3] = rotvec("x", 90)
    poses[2, 3 * L_HIP : 3 * L_HIP + 3] = rotvec("y", 30)
    poses[2, 3 * L_KNEE : 3 * L_KNEE + 3] = rotvec("x", 45)
    poses[4, :3] = rotvec("z", 90)
    trans = np.zeros((5, 3))
    trans[3] = [0.5, -0.2, 0.1]
    return poses, trans


def write_amass(path, poses=None, trans=None, **extra):
    if poses is None:
        poses, trans = amass_poses()
    fields = dict(poses=poses, trans=trans, betas=BETAS, gender="neutral", mocap_framerate=60.0)
    fields.update(extra)
    np.savez(path, **fields)
    return path


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.delenv("HGPT_BODY_MODELS", raising=False)
    return write_body_model(tmp_path / "body_models")


def test_rest_pose_and_translation(tmp_path, models):
    m = read_smpl(write_amass(tmp_path / "clip.npz"), body_models=models)
    assert m.positions.shape == (5, 22, 3) and m.rotations.shape == (5, 22, 4)
    assert m.canonical == PRESETS["smpl22"].canonical and m.joint_names == PRESETS["smpl22"].joints
    np.testing.assert_allclose(m.positions[0], REST[:22], atol=1e-6)
    np.testing.assert_allclose(m.positions[3], REST[:22] + [0.5, -0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(m.rotations[0], np.tile([1.0, 0, 0, 0], (22, 1)), atol=1e-12)
    assert m.fps == 60.0 and m.provenance["fps_source"] == "file"
    assert m.provenance["model_type"] == "smpl" and m.provenance["gender"] == "neutral"
    assert m.provenance["up_axis"] == "z" and m.provenance["format"] == "smpl"


def test_knee_rotation_moves_only_the_left_lower_leg(tmp_path, models):
    m = read_smpl(write_amass(tmp_path / "clip.npz"), body_models=models)
    R = Rotation.from_euler("x", 90, degrees=True).as_matrix()
    knee = REST[L_KNEE]
    for j in (L_ANKLE, L_FOOT):
        np.testing.assert_allclose(m.positions[1, j], knee + R @ (REST[j] - knee), atol=1e-6)
    unchanged = [j for j in range(22) if j not in (L_ANKLE, L_FOOT)]
    np.testing.assert_allclose(m.positions[1, unchanged], REST[unchanged], atol=1e-6)
    np.testing.assert_allclose(m.positions[1, RIGHT_LEG], REST[RIGHT_LEG], atol=1e-6)
    q = Rotation.from_matrix(R).as_quat(scalar_first=True)
    for j in (L_KNEE, L_ANKLE, L_FOOT):  # the knee's rotation carries down the leg
        np.testing.assert_allclose(m.rotations[1, j], q, atol=1e-9)


def test_global_rotation_chains_parent_and_local(tmp_path, models):
    m = read_smpl(write_amass(tmp_path / "clip.npz"), body_models=models)
    hip = Rotation.from_quat(m.rotations[2, L_HIP], scalar_first=True)
    knee = Rotation.from_quat(m.rotations[2, L_KNEE], scalar_first=True)
    np.testing.assert_allclose(hip.as_matrix(), Rotation.from_euler("y", 30, degrees=True).as_matrix(), atol=1e-9)
    local = Rotation.from_euler("x", 45, degrees=True)
    np.testing.assert_allclose(knee.as_matrix(), (hip * local).as_matrix(), atol=1e-9)
    # Root turned 90 degrees about z: every joint turns about the pelvis.
    Rz = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    np.testing.assert_allclose(m.positions[4], REST[0] + (REST[:22] - REST[0]) @ Rz.T, atol=1e-6)


def test_forward_kinematics_of_skeleton_and_rotations_reproduce_positions(tmp_path, models):
    m = read_smpl(write_amass(tmp_path / "clip.npz"), body_models=models)
    sk = m.skeleton
    R = Rotation.from_quat(m.rotations.reshape(-1, 4), scalar_first=True).as_matrix().reshape(5, 22, 3, 3)
    fk = np.empty_like(m.positions)
    for j, p in enumerate(sk.parents):
        if p < 0:
            fk[:, j] = m.positions[:, j]  # the root as read
        else:
            fk[:, j] = fk[:, p] + np.einsum("tij,j->ti", R[:, p], sk.offsets[j])
    np.testing.assert_allclose(fk, m.positions, atol=1e-6)
    np.testing.assert_allclose(sk.offsets[0], REST[0], atol=1e-6)


def test_fps_option_env_var_and_gender(tmp_path, models, monkeypatch):
    poses, trans = amass_poses()
    path = tmp_path / "clip.npz"
    np.savez(path, poses=poses, trans=trans, betas=BETAS, gender="neutral", mocap_frame_rate=30.0)
    monkeypatch.setenv("HGPT_BODY_MODELS", str(models))
    m = read_smpl(path)
    assert m.fps == 30.0 and m.provenance["fps_source"] == "file"
    with pytest.warns(MocapWarning, match="file says 30.0 fps; using fps=25.0"):
        m = read_smpl(path, fps=25.0)
    assert m.fps == 25.0 and m.provenance["fps_source"] == "option"
    with pytest.raises(MocapFormatError, match=r"smpl male body model, not found.*SMPL_MALE\.npz.*HGPT_BODY_MODELS"):
        read_smpl(path, gender="male")
    write_body_model(models, "MALE")
    assert read_smpl(path, gender="male").provenance["body_model"].endswith("SMPL_MALE.npz")


def test_without_body_models_the_error_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("HGPT_BODY_MODELS", raising=False)
    path = write_amass(tmp_path / "clip.npz")
    for read in (read_smpl, read_mocap):
        with pytest.raises(MocapFormatError) as err:
            read(path)
        text = str(err.value)
        for needed in (str(path), "HGPT_BODY_MODELS", "smpl/SMPL_", "smpl.is.tue.mpg.de", "mano", "smpl-x", "Fix:"):
            assert needed in text
    with pytest.raises(MocapFormatError, match=r"does not exist.*HGPT_BODY_MODELS"):
        read_smpl(path, body_models=tmp_path / "nowhere")


def test_pose_width_that_fits_no_model(tmp_path, models):
    path = write_amass(tmp_path / "odd.npz", poses=np.zeros((3, 100)), trans=np.zeros((3, 3)))
    with pytest.raises(MocapFormatError, match=r"odd\.npz: poses: 100 pose values.*72 \(smpl\), 156 \(smplh\)"):
        read_smpl(path, body_models=models)
    path = write_amass(tmp_path / "smplh.npz", poses=np.zeros((3, 156)), trans=np.zeros((3, 3)))
    with pytest.raises(MocapFormatError, match=r"model_type= says smpl .* the poses have 156"):
        read_smpl(path, body_models=models, model_type="smpl")
    with pytest.raises(MocapFormatError, match=r"smplh neutral body model, not found"):
        read_smpl(path, body_models=models)


def test_read_mocap_dispatches_and_the_result_retargets(tmp_path, models):
    from humanoid_gpt.governance.retarget import retarget

    T = 12
    poses = np.zeros((T, 72))
    swing = np.sin(np.linspace(0, np.pi, T))
    poses[:, 3 * L_HIP : 3 * L_HIP + 3] = np.stack([rotvec("y", -20 * s) for s in swing])
    poses[:, 3 * L_KNEE : 3 * L_KNEE + 3] = np.stack([rotvec("y", 30 * s) for s in swing])
    trans = np.zeros((T, 3))
    trans[:, 0] = np.linspace(0, 0.3, T)
    path = write_amass(tmp_path / "walk.npz", poses=poses, trans=trans)
    motion = read_mocap(path, body_models=models)
    assert motion.provenance["format"] == "smpl" and motion.num_frames == T
    clip, report = retarget(motion, skeleton="smpl")
    assert clip.num_frames == T


def _hand_parents(wrist: int, first: int) -> list[int]:
    """15 finger joints (5 fingers x 3) from ``first`` on: each finger's first joint hangs from the wrist."""
    return [wrist if k % 3 == 0 else first + k - 1 for k in range(15)]


def write_big_model(folder, kind: str, **hostile):
    """A synthetic SMPL-H (52 joints) or SMPL-X (55 joints) model: the SMPL body plus hand (and face) joints."""
    if kind == "smplh":
        parents = list(PARENTS24[:22]) + _hand_parents(20, 22) + _hand_parents(21, 37)
        path = folder / "smplh" / "neutral" / "model.npz"  # AMASS's own layout
        extra = dict(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45))
        extra.update(hands_meanl=np.full(45, 0.1), hands_meanr=np.full(45, 0.1))
    else:
        parents = list(PARENTS24[:22]) + [15, 15, 15] + _hand_parents(20, 25) + _hand_parents(21, 40)
        path = folder / "smplx" / "SMPLX_NEUTRAL.npz"
        extra = dict(lmk_faces_idx=np.zeros(5, np.int64), lmk_bary_coords=np.full((5, 3), 1 / 3))
        extra.update(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45))
        extra.update(hands_meanl=np.zeros(45), hands_meanr=np.zeros(45))
    J = len(parents)
    # Hand and face joints near their parents; where exactly does not matter to the body joints.
    template = TEMPLATE[:22].tolist()
    for p in parents[22:]:
        template.append(template[p] + RNG.normal(scale=0.03, size=3))
    template = np.array(template)
    shapedirs = np.concatenate([SHAPEDIRS[:22], np.zeros((J - 22, 3, 10))])
    if kind == "smplx":
        shapedirs = np.concatenate([shapedirs, np.zeros((J, 3, 10))], axis=2)  # 10 shape + 10 expression
    path.parent.mkdir(parents=True, exist_ok=True)
    kintree = np.stack([[2**32 - 1] + parents[1:], np.arange(J)]).astype(np.int64)
    np.savez(
        path,
        v_template=template,
        shapedirs=shapedirs,
        posedirs=RNG.normal(scale=0.01, size=(J, 3, 9 * (J - 1))),
        J_regressor=np.eye(J),
        weights=np.eye(J),
        kintree_table=kintree,
        f=np.array([[0, 1, 2]]),
        **extra,
        **hostile,
    )
    return folder


@pytest.mark.parametrize("kind", ["smplh", "smplx"])
def test_smplh_and_smplx_body_joints(tmp_path, kind):
    models = write_big_model(tmp_path / "body_models", kind)
    width = {"smplh": 156, "smplx": 165}[kind]
    poses = np.zeros((3, width))
    poses[1, 3 * L_KNEE : 3 * L_KNEE + 3] = rotvec("x", 90)
    poses[2, 66:] = RNG.normal(scale=0.3, size=width - 66)  # hands (and face): the body joints do not move
    trans = np.zeros((3, 3))
    extra = {"surface_model_type": kind} if kind == "smplx" else {}
    path = write_amass(tmp_path / f"{kind}.npz", poses=poses, trans=trans, **extra)
    m = read_mocap(path, body_models=models)
    assert m.provenance["model_type"] == kind and m.positions.shape == (3, 22, 3)
    np.testing.assert_allclose(m.positions[0], REST[:22], atol=1e-6)
    np.testing.assert_allclose(m.positions[2], REST[:22], atol=1e-6)
    R = Rotation.from_euler("x", 90, degrees=True).as_matrix()
    np.testing.assert_allclose(m.positions[1, L_ANKLE], REST[L_KNEE] + R @ (REST[L_ANKLE] - REST[L_KNEE]), atol=1e-6)


def test_an_official_style_pkl_body_model_reads_like_its_npz(tmp_path, models):
    """SMPL's own .pkl files are Python 2 pickles holding the joint regressor as a scipy CSC matrix."""
    import scipy.sparse

    clip = write_amass(tmp_path / "clip.npz")
    arrays = {**body_model_arrays(), "bs_style": "lbs", "pose_training_info": {"ok": 1}}
    arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    write_pkl_body_model(tmp_path / "pkl", arrays)
    from_pkl = read_smpl(clip, body_models=tmp_path / "pkl")
    assert from_pkl.provenance["body_model"].endswith("SMPL_NEUTRAL.pkl")
    np.testing.assert_allclose(from_pkl.positions, read_smpl(clip, body_models=models).positions, atol=1e-12)


def test_a_body_model_that_would_run_code_is_refused_unread(tmp_path):
    clip = write_amass(tmp_path / "clip.npz")
    marker = tmp_path / "MARKER"
    pkl = write_pkl_body_model(tmp_path / "pkl", {**body_model_arrays(), "v_template": live_payload(marker)})
    with pytest.raises(MocapFormatError, match=rf"{pkl}: the pickle asks for .*refused rather than run"):
        read_smpl(clip, body_models=tmp_path / "pkl")
    folder = write_body_model(tmp_path / "npz", shapedirs=np.array([live_payload(marker)], dtype=object))
    with pytest.raises(MocapFormatError, match=r"SMPL_NEUTRAL\.npz: 'shapedirs' holds pickled Python objects"):
        read_smpl(clip, body_models=folder)
    assert not marker.exists(), "the body model's payload ran"


@pytest.mark.parametrize("kind", ["smpl", "smplx"])
def test_pickled_objects_a_body_model_does_not_need_are_never_unpickled(tmp_path, kind):
    """smplx itself reads SMPL-X files with pickles allowed: it is given a copy of the arrays read safely."""
    marker = tmp_path / "MARKER"
    notes = np.array([live_payload(marker)], dtype=object)  # official SMPL-X .npz files hold dicts like this
    if kind == "smpl":
        folder, poses = write_body_model(tmp_path / "models", notes=notes), amass_poses()[0]
    else:
        folder, poses = write_big_model(tmp_path / "models", "smplx", notes=notes), np.zeros((2, 165))
    read_smpl(write_amass(tmp_path / "clip.npz", poses=poses, trans=np.zeros((len(poses), 3))), body_models=folder)
    assert not marker.exists(), "the body model's payload ran"


def test_a_chumpy_pkl_body_model_is_refused_with_the_conversion(tmp_path):
    """Older SMPL .pkl files hold chumpy arrays, objects a safe reader does not build: the fix converts them."""
    chumpy = b"\x80\x02}X\x0a\x00\x00\x00v_templatecchumpy.ch\nCh\n)\x81s."  # {"v_template": chumpy.ch.Ch()}
    pkl = write_pkl_body_model(tmp_path / "pkl", chumpy)
    with pytest.raises(MocapFormatError) as refused:
        read_smpl(write_amass(tmp_path / "clip.npz"), body_models=tmp_path / "pkl")
    for needed in (str(pkl), "chumpy.ch.Ch", "refused rather than run", "convert the model to .npz", "np.savez("):
        assert needed in str(refused.value)
