"""The G1 MJCF converts to USD for Isaac Lab, once per model content."""

import pytest

from humanoid_gpt.robot.usd import g1_usd


def test_usd_has_the_g1_joints_and_is_cached(g1, tmp_path):
    pxr = pytest.importorskip("pxr", reason="usd-core comes with the Isaac Lab dependencies of scripts/setup_env.sh")
    path = g1_usd(g1, cache=tmp_path)
    stage = pxr.Usd.Stage.Open(str(path))
    joints = {p.GetName() for p in stage.Traverse() if p.IsA(pxr.UsdPhysics.RevoluteJoint)}
    assert set(g1.joint_names) <= joints
    mtime = path.stat().st_mtime_ns
    assert g1_usd(g1, cache=tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".usd-")]
