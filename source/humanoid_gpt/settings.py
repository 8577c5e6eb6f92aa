"""Where data, the robot model and caches come from: environment variables with documented defaults.

- ``HGPT_DATA_ROOT``: the motion data root. It holds ``g1_motions/<dataset>/`` folders of G1 clips (and later
  ``mocap/``). Default: ``$XDG_DATA_HOME/humanoid_gpt`` (``~/.local/share/humanoid_gpt``), where ``hgpt data fetch``
  downloads the default motions.
- ``MENAGERIE_ROOT``: a folder laid out as mujoco-menagerie expects (``unitree_g1/g1_mjlab.xml``). Unset, the
  ``mujoco-menagerie`` package downloads the G1 into its own cache.
- ``HGPT_CACHE_DIR``: derived artefacts (USD conversions, FK caches). Default ``$XDG_CACHE_HOME/humanoid_gpt``.
- ``HGPT_OUTPUT_ROOT``: where jobs write reports and runs. Default ``./outputs``.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATASET = "lafan1"
"""The default motions: Unitree's LAFAN1 retargeting to the G1 (``g1_motions/lafan1``)."""


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def data_root() -> Path:
    home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return _env_path("HGPT_DATA_ROOT", home / "humanoid_gpt")


def g1_motions_dir(dataset: str = DEFAULT_DATASET) -> Path:
    """The folder of one G1 motion dataset under the data root."""
    return data_root() / "g1_motions" / dataset


def cache_dir() -> Path:
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return _env_path("HGPT_CACHE_DIR", home / "humanoid_gpt")


def output_root() -> Path:
    return _env_path("HGPT_OUTPUT_ROOT", Path.cwd() / "outputs")


def menagerie_root() -> Path | None:
    value = os.environ.get("MENAGERIE_ROOT")
    return Path(value).expanduser() if value else None
