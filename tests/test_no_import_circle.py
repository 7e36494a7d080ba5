"""The package is layered: no module imports, even inside a function, one that imports it back,
and no package (train/, viz/, analysis/, ...) imports one that imports it back, whichever of
their modules do it.

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
    """Strongly connected groups of more than one module."""
    modules = module_names()
    return strongly_connected({name: imports_of(name, path, modules) for name, path in modules.items()})


def package_of(name: str) -> str:
    """cnnlab.train for cnnlab.train.run; a module at the top (cnnlab.rendering) is its own."""
    return ".".join(name.split(".")[:2])


def package_imports() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(package, package it imports) -> the (module, imported module) pairs that make the edge."""
    modules = module_names()
    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name, path in modules.items():
        for target in imports_of(name, path, modules):
            if package_of(name) != package_of(target) and target != "cnnlab":
                edges.setdefault((package_of(name), package_of(target)), []).append((name, target))
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan)."""
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

    for node in list(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_package_has_no_import_circle():
    assert circles() == []


def test_no_two_packages_import_each_other_at_any_level():
    """A circle between packages passes the module test when different modules make its two
    halves (train/records.py drew with viz/, viz/model_report.py evaluated with train/): the
    packages are one floor each, and what needs two of them composes them from above."""
    edges = package_imports()
    graph: dict[str, set[str]] = {}
    for (source, target) in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    groups = strongly_connected(graph)
    assert groups == [], [(a, b, edges[(a, b)][:2]) for group in groups for a in group for b in group if (a, b) in edges]


def test_training_and_pictures_keep_to_their_sides():
    edges = package_imports()
    assert edges.get(("cnnlab.train", "cnnlab.viz"), []) == []  # train/ writes data
    assert edges.get(("cnnlab.viz", "cnnlab.train"), []) == []  # viz/ draws data it is given
    # what needs both composes them from a floor above: the CLI, the public API, the report
    composers = {source for (source, target) in edges if target == "cnnlab.train"} & \
                {source for (source, target) in edges if target == "cnnlab.viz"}
    assert composers == {"cnnlab.cli", "cnnlab.runs", "cnnlab.model_report", "cnnlab.experiments"}


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
