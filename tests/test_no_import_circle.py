"""The package is layered: no module imports, even inside a function, one that imports it back.

An import of `a.b.c` also runs the packages `a` and `a.b` (their __init__), so those count as
imported too, except the importing module's own packages (already running when it runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import cnnlab

ROOT = Path(cnnlab.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("cnnlab", *path.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The cnnlab modules that importing `name` runs: what it names, and their packages."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnlab":
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
            named.update(submodules)
            if len(submodules) < len(node.names):  # it takes names the module itself defines
                named.add(node.module)
        elif isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names if alias.name.split(".")[0] == "cnnlab")
    own = set(parents(name)) | ({name} if path.name == "__init__.py" else set())
    runs = set()
    for target in named & set(modules):
        runs.add(target)
        runs.update(package for package in parents(target) if package not in own)
    return runs - {name}


def circles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    modules = module_names()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_package_has_no_import_circle():
    assert circles() == []


def test_the_floors_below_models_import_nothing_above_them():
    modules = module_names()
    for low in ("cnnlab.errors", "cnnlab.version", "cnnlab.checkpoint", "cnnlab.weights"):
        above = {m for m in imports_of(low, modules[low], modules)
                 if m.split(".")[1] in ("models", "analysis", "train", "deploy", "viz", "experiments", "cli", "data")}
        assert above == set(), (low, above)


def test_no_command_module_imports_another():
    """cli/ is thin: each command module calls the library; only the shared option helpers are shared."""
    modules = module_names()
    for name, path in modules.items():
        if name.startswith("cnnlab.cli.") and name != "cnnlab.cli.options":
            others = {m for m in imports_of(name, path, modules) if m.startswith("cnnlab.cli.")} - {"cnnlab.cli.options"}
            assert others == set(), (name, others)
