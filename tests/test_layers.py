"""Dependencies point one way (DESIGN.md): inventory imports nothing from pos or kiosks."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "inventory").rglob("*.py")), ids=lambda p: p.name)
def test_inventory_imports_neither_pos_nor_kiosks(path):
    assert not imported_packages(path) & {"pos", "kiosks"}
