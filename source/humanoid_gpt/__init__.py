"""Humanoid-GPT core: simulator-agnostic robot, motion data, kinematics and learning code."""

import os

# MuJoCo picks its OpenGL backend when first imported: without a display, use EGL (Mesa renders in software when
# there is no GPU) so offscreen rendering works headless.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
