"""Shared fixtures. Real data comes from the settings (HGPT_DATA_ROOT, MENAGERIE_ROOT), which the test command points
at ../shared; tests that need a dataset skip with the reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from humanoid_gpt import settings
from humanoid_gpt.robot import load_g1


@pytest.fixture(scope="session")
def g1():
    return load_g1()


def _dataset(name: str) -> Path:
    path = settings.g1_motions_dir(name)
    if not path.is_dir():
        pytest.skip(f"{path} missing: set HGPT_DATA_ROOT to a folder holding g1_motions/{name}")
    return path


@pytest.fixture(scope="session")
def lafan1_dir() -> Path:
    return _dataset("lafan1")


@pytest.fixture(scope="session")
def g1_moves_dir() -> Path:
    return _dataset("g1_moves")


@pytest.fixture(scope="session")
def g1_moves_npz_dir() -> Path:
    return _dataset("g1_moves_npz")


@pytest.fixture(scope="session")
def walk_clip(lafan1_dir, g1):
    from humanoid_gpt.motion import load_clip

    return load_clip(lafan1_dir / "walk1_subject1.csv", g1=g1)


@pytest.fixture
def walk_manifest(tmp_path, monkeypatch, lafan1_dir):
    """A cluster manifest with one cluster (900) of one LAFAN1 walk clip, made active through the setting."""
    import json

    path = tmp_path / "clusters.json"
    path.write_text(json.dumps({"schema_version": 1, "clusters": {"900": ["g1_motions/lafan1/walk1_subject1.csv"]}}))
    monkeypatch.setenv("HGPT_CLUSTER_MANIFEST", str(path))
    return path
