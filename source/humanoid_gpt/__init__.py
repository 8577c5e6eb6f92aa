"""Humanoid-GPT core: simulator-agnostic robot, motion data, kinematics and learning code.

Importing it changes nothing in the process; entry points (the ``hgpt`` command, the scripts, the tests) call
:func:`configure_process` first.
"""

from __future__ import annotations

import logging
import os
import sys

__version__ = "0.1.0"


def configure_process() -> None:
    """Process-wide setup, explicit rather than an import side effect:

    - without a display, MuJoCo renders offscreen through EGL (Mesa in software where there is no GPU). MuJoCo reads
      ``MUJOCO_GL`` when it is first imported, so this must run before anything imports ``mujoco``;
    - MuJoCo's warnings go to the ``mujoco`` logger instead of a ``MUJOCO_LOG.TXT`` in the working directory.
    """
    if not os.environ.get("DISPLAY") and "mujoco" not in sys.modules:
        os.environ.setdefault("MUJOCO_GL", "egl")
    import mujoco

    log = logging.getLogger("mujoco")
    mujoco.set_mju_user_warning(lambda msg: log.warning(msg.strip()))
