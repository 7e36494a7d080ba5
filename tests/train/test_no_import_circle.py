"""train/ reads top-down: no module of it imports, even inside a function, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import cnnlab.train

TRAIN = Path(cnnlab.train.__file__).parent


def imported_train_modules(path: Path) -> set[str]:
    """The cnnlab.train modules a file imports anywhere (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "cnnlab.train":
                names.update(f"cnnlab.train.{alias.name}" for alias in node.names)
            elif node.module.startswith("cnnlab.train."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("cnnlab.train."))
    return {name for name in names if (TRAIN / f"{name.rsplit('.', 1)[1]}.py").is_file()}


def test_train_has_no_import_circle():
    graph = {f"cnnlab.train.{path.stem}": imported_train_modules(path) for path in TRAIN.glob("*.py") if path.stem != "__init__"}
    assert graph["cnnlab.train.run"] >= {"cnnlab.train.loop", "cnnlab.train.settings", "cnnlab.train.data",
                                         "cnnlab.train.transfer", "cnnlab.train.phases"}
    assert graph["cnnlab.train.loop"] >= {"cnnlab.train.distributed", "cnnlab.train.transfer", "cnnlab.train.phases"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ()))

    circles = sorted(module for module in graph if reaches(module, module, {module}))
    assert circles == [], f"modules on an import circle: {circles}"


def test_the_resolved_settings_cannot_change():
    import dataclasses

    import pytest

    from cnnlab.train import TrainConfig

    config = TrainConfig(model="resnet20")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.1  # train/settings.py resolves a new config once; nothing sets one in place


def test_no_module_of_train_sets_a_setting_in_place():
    for path in TRAIN.glob("*.py"):
        assert "setattr(config" not in path.read_text(), path.name
