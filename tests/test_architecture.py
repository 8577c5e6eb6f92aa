"""The layers hold (docs/architecture.md): the core never imports a physics backend, Isaac Lab or the CLI, and
backends are found by name through entry points."""

import ast
from pathlib import Path

import pytest

import humanoid_gpt
from humanoid_gpt.backends import available_backends, load_backend
from humanoid_gpt.errors import HGPTError

CORE = Path(humanoid_gpt.__file__).parent
FORBIDDEN = ("humanoid_gpt_mujoco", "humanoid_gpt_tasks", "isaaclab", "isaaclab_rl", "isaaclab_tasks")


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


LAYERS = (
    ("errors", "settings", "rotations", "state", "ui", "io_utils", "typed_config", "flags", "runs"),
    ("robot", "data"),
    ("motion", "mdp", "metrics", "render"),
    ("catalog",),
    ("governance",),
    ("hme",),
    ("backends",),
    ("experts",),
    ("students",),
    ("deploy",),
    ("jobs",),
    ("cli",),
)
"""The core's packages from the foundation up (docs/architecture.md): a package imports only its own layer and the
ones below."""


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_import_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports (a ``from package import name`` counts the submodule ``name`` when one
    exists, else the package)."""
    modules = {module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                subs = {f"{base}.{a.name}" for a in node.names} & modules.keys()
                found |= subs or {base}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "humanoid_gpt"


def test_no_import_cycles_in_the_core():
    """Tarjan's strongly connected components over the module graph: every component is one module."""
    graph, index, low, stack, on_stack, cycles = core_import_graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "modules that import each other (directly or around a loop):\n" + "\n".join(map(str, cycles))


def test_packages_import_only_their_layer_and_below():
    layer = {package: i for i, packages in enumerate(LAYERS) for package in packages}
    layer["humanoid_gpt"] = 0  # the package's __init__: process settings only
    graph = core_import_graph()
    unplaced = {package_of(m) for m in graph} - layer.keys()
    assert not unplaced, f"packages with no layer in LAYERS: {sorted(unplaced)}"
    upward = sorted(
        f"{a} imports {b}"
        for a, targets in graph.items()
        for b in targets
        if layer[package_of(b)] > layer[package_of(a)]
    )
    assert not upward, "upward imports (a lower layer must not know a higher one):\n" + "\n".join(upward)


def test_backends_are_found_by_name():
    assert {"mujoco", "isaaclab"} <= set(available_backends())
    backend = load_backend("mujoco")
    assert backend.name == "mujoco"
    with pytest.raises(HGPTError, match="no backend 'bullet'.*installed: .*mujoco"):
        load_backend("bullet")
