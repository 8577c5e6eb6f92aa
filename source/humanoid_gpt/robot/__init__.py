"""The Unitree G1 29-DoF: names, gains, limits, model building and USD conversion."""

from humanoid_gpt.robot.g1 import G1, G1_JOINT_NAMES, G1_KEYPOINT_NAMES, load_g1, resolve_g1_xml

__all__ = ["G1", "G1_JOINT_NAMES", "G1_KEYPOINT_NAMES", "load_g1", "resolve_g1_xml"]
