import mujoco
import numpy as np
import pytest

from humanoid_gpt.errors import AssetError
from humanoid_gpt.robot import G1_JOINT_NAMES, G1_KEYPOINT_NAMES, load_g1
from humanoid_gpt.robot.g1 import ACTION_SCALE_FRACTION


def test_joints_and_bodies_resolve_by_name(g1):
    model = g1.model()
    assert len(G1_JOINT_NAMES) == 29
    # The G1 order is MuJoCo's depth-first order for this model: qpos addresses rise one by one after the free joint.
    np.testing.assert_array_equal(g1.qpos_joint_addresses(model), np.arange(7, 36))
    assert len(g1.body_names) == 30 and g1.body_names[0] == "pelvis"
    assert [g1.body_names[i] for i in g1.keypoint_indices()] == list(G1_KEYPOINT_NAMES)


def test_gains_follow_the_armature_formula(g1):
    w = 2 * np.pi * 10
    i = G1_JOINT_NAMES.index("left_hip_pitch_joint")
    assert g1.kp[i] == pytest.approx(0.010177520 * w**2)
    assert g1.kd[i] == pytest.approx(2 * 2.0 * 0.010177520 * w)
    ankle = G1_JOINT_NAMES.index("right_ankle_roll_joint")
    assert g1.armature[ankle] == pytest.approx(2 * 0.003609725)  # two 5020 motors in parallel
    wrist = G1_JOINT_NAMES.index("left_wrist_yaw_joint")
    assert g1.effort_limit[wrist] == 5.0 and g1.armature[wrist] == pytest.approx(0.00425)
    np.testing.assert_allclose(g1.action_scale, ACTION_SCALE_FRACTION * g1.effort_limit / g1.kp)


def test_default_pose_is_within_limits(g1):
    lo, hi = g1.joint_limits.T
    assert np.all(g1.default_joint_pos >= lo) and np.all(g1.default_joint_pos <= hi)
    assert g1.default_joint_pos[G1_JOINT_NAMES.index("left_elbow_joint")] == pytest.approx(1.28)
    assert g1.default_joint_pos[G1_JOINT_NAMES.index("right_shoulder_roll_joint")] == pytest.approx(-0.3)


def test_position_actuators_carry_the_pd_gains(g1):
    model = g1.model(actuators="position", timestep=0.002)
    assert model.nu == 29 and model.opt.timestep == 0.002
    for i, name in enumerate(G1_JOINT_NAMES):
        a = model.actuator(name)
        assert a.gainprm[0] == pytest.approx(g1.kp[i])
        assert a.biasprm[1] == pytest.approx(-g1.kp[i]) and a.biasprm[2] == pytest.approx(-g1.kd[i])
        assert a.forcerange[1] == pytest.approx(g1.effort_limit[i])
        assert model.dof_armature[model.joint(name).dofadr[0]] == pytest.approx(g1.armature[i])


def test_position_servo_reaches_its_target_without_gravity(g1):
    model = g1.model(actuators="position", floor=False)
    model.opt.gravity[:] = 0
    data = mujoco.MjData(model)
    data.qpos[:] = g1.default_qpos()
    target = g1.default_joint_pos + 0.1
    data.ctrl[:] = target
    for _ in range(int(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
    # Free-floating, the servo torques also spin the base, so compare joint angles only.
    np.testing.assert_allclose(data.qpos[7:], target, atol=0.02)


def test_torque_actuators_clip_to_the_effort_limit(g1):
    model = g1.model(actuators="torque")
    np.testing.assert_allclose(model.actuator_ctrlrange[:, 1], g1.effort_limit)


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(AssetError, match="does not exist"):
        load_g1(tmp_path / "nope.xml")


def test_wrong_robot_is_rejected(tmp_path):
    xml = tmp_path / "arm.xml"
    xml.write_text('<mujoco><worldbody><body name="a"><freejoint/><geom size=".1"/></body></worldbody></mujoco>')
    with pytest.raises(AssetError, match="not a G1 29-DoF model"):
        load_g1(xml)


def test_missing_menagerie_root_names_the_fix(monkeypatch, tmp_path):
    from humanoid_gpt.robot.g1 import resolve_g1_xml

    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    with pytest.raises(AssetError, match="MENAGERIE_ROOT"):
        resolve_g1_xml()


def test_simulation_model_without_visual_meshes_simulates_the_same(g1):
    """Every randomized env owns a model copy: the simulation-only model must be small and physically identical."""
    from humanoid_gpt_mujoco.worlds import ARENA_BYTES

    full = g1.model(actuators="position", floor=True)
    lean = g1.model(actuators="position", floor=True, visuals=False, arena_bytes=ARENA_BYTES)
    assert lean.nbuffer < full.nbuffer / 20  # 72 MB of visual meshes dropped
    assert lean.narena == ARENA_BYTES < full.narena / 7
    np.testing.assert_array_equal(lean.body_mass, full.body_mass)
    np.testing.assert_array_equal(lean.body_inertia, full.body_inertia)
    paths = []
    for m in (full, lean):
        d, rng = mujoco.MjData(m), np.random.default_rng(0)
        d.qpos[:] = g1.default_qpos()
        d.qpos[2] += 0.05  # drop onto the floor and flail until fallen: contacts must match too
        for _ in range(1000):
            d.ctrl[:] = g1.default_joint_pos + rng.normal(0.0, 0.8, 29)
            mujoco.mj_step(m, d)
        paths.append(d.qpos.copy())
        full_arena = (mujoco.mjtWarning.mjWARN_CONTACTFULL, mujoco.mjtWarning.mjWARN_CNSTRFULL)
        assert all(d.warning[w].number == 0 for w in full_arena) and d.maxuse_arena < m.narena / 4
    np.testing.assert_allclose(paths[1], paths[0], atol=1e-9)
