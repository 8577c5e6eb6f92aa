"""Setup installs Isaac Lab 3.0 kit-less beside the core (the recipe in docs/architecture.md, "What runs where");
the task package builds on it."""

import importlib.metadata


def test_isaaclab_kitless_stack_imports():
    assert importlib.metadata.version("isaaclab") == "3.0.0"
    from isaaclab.envs import ManagerBasedRLEnvCfg  # noqa: F401
    from isaaclab_newton.physics import NewtonCfg  # noqa: F401
    from isaaclab_rl.rsl_rl import RslRlOnPolicyRunnerCfg  # noqa: F401

    assert importlib.metadata.version("rsl-rl-lib") == "5.5.1"
    assert importlib.metadata.version("torch").startswith("2.13.0")
