"""Humanoid-GPT core: simulator-agnostic robot, motion data, kinematics and learning code."""
