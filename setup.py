"""Installs the Humanoid-GPT core (``humanoid_gpt`` from source/), the Isaac Lab task package (``humanoid_gpt_tasks``
from tasks/) and the native MuJoCo physics backend (``humanoid_gpt_mujoco`` from mujoco_backend/)."""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
EXTENSION = tomllib.loads((ROOT / "extension.toml").read_text())["package"]


def requirements(name: str) -> list[str]:
    lines = (ROOT / "requirements" / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


# Top-level folders laid out as the design card wants them, each installed under a distinct package name.
PACKAGE_DIRS = {
    "humanoid_gpt": "source/humanoid_gpt",
    "humanoid_gpt_tasks": "tasks",
    "humanoid_gpt_mujoco": "mujoco_backend",
}
packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    name="humanoid-gpt",
    version=EXTENSION["version"],
    description=EXTENSION["description"],
    python_requires=">=3.11",
    packages=packages,
    package_dir=PACKAGE_DIRS,
    package_data={"humanoid_gpt": ["data/*.json", "data/*.sha256"], "humanoid_gpt.jobs": ["presets/*.yaml"]},
    install_requires=["torch>=2.13,<2.15", *requirements("base.txt")],
    extras_require={"isaaclab": requirements("isaaclab.txt")},
    entry_points={
        "console_scripts": ["hgpt = humanoid_gpt.cli:main"],
        # Physics backends the core finds by name (humanoid_gpt.backends), never by import.
        "humanoid_gpt.backends": [
            "mujoco = humanoid_gpt_mujoco.backend:MujocoBackend",
            "isaaclab = humanoid_gpt_tasks.backend:IsaacLabBackend",
        ],
    },
)
