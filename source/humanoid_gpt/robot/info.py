"""The robot model as a person reads it: every joint's limits, default pose, armature, gains, effort limit and action
scale, and the keypoints the metrics track (``hgpt robot info``)."""

from __future__ import annotations

from humanoid_gpt.robot.g1 import G1


def print_robot(g1: G1) -> None:
    """Print the joint table and the keypoints of ``g1``."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"Unitree G1 29-DoF ({g1.xml_path})")
    for col in ("joint", "lower", "upper", "default", "armature", "kp", "kd", "effort", "action scale"):
        table.add_column(col)
    for i, name in enumerate(g1.joint_names):
        lo, hi = g1.joint_limits[i]
        row = (
            lo,
            hi,
            g1.default_joint_pos[i],
            g1.armature[i],
            g1.kp[i],
            g1.kd[i],
            g1.effort_limit[i],
            g1.action_scale[i],
        )
        table.add_row(name, *(f"{v:.4g}" for v in row))
    console().print(table)
    print("keypoints:", ", ".join(g1.keypoint_names))
