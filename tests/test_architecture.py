"""The layers hold (docs/architecture.md): the core never imports a physics backend, Isaac Lab or the CLI, and
backends are found by name through entry points."""

import ast
from pathlib import Path

import pytest

import humanoid_gpt
from humanoid_gpt.backends import available_backends, load_backend
from humanoid_gpt.errors import HGPTError

CORE = Path(humanoid_gpt.__file__).parent
FORBIDDEN = ("humanoid_gpt_sim2sim", "humanoid_gpt_tasks", "isaaclab", "isaaclab_rl", "isaaclab_tasks")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_never_imports_its_backends_or_the_cli():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in FORBIDDEN or (module == "humanoid_gpt.cli" and path.name != "cli.py"):
                offenders.append(f"{path.relative_to(CORE)} imports {module}")
    assert not offenders, "the core must reach backends through humanoid_gpt.backends:\n" + "\n".join(offenders)


def test_stage_packages_depend_only_on_earlier_stages():
    """motion/ and mdp/ are the foundation: they import no training stage."""
    later = ("humanoid_gpt.experts", "humanoid_gpt.students", "humanoid_gpt.deploy", "humanoid_gpt.hme")
    for package in ("motion", "mdp", "robot"):
        for path in (CORE / package).rglob("*.py"):
            bad = [m for m in imported_modules(path) if m.startswith(later)]
            assert not bad, f"{path.relative_to(CORE)} imports {bad}"


def test_backends_are_found_by_name():
    assert {"mujoco", "isaaclab"} <= set(available_backends())
    backend = load_backend("mujoco")
    assert backend.name == "mujoco"
    with pytest.raises(HGPTError, match="no backend 'bullet'.*installed: .*mujoco"):
        load_backend("bullet")
