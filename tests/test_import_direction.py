"""The packages form one stack: infra -> training -> hwmodel -> netlists -> energy -> ttfs.

A module may import its own package and any package below it, never one above; infra imports
nothing of the project. The test parses every module's imports (no module is executed).
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACK = ("infra", "training", "hwmodel", "netlists", "energy", "ttfs")


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level project package, line) of every import in `path`, including function-level ones."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update((n.split(".")[0], node.lineno) for n in names if n.split(".")[0] in STACK)
    return found


def test_no_package_imports_one_above_it():
    upward = []
    for rank, package in enumerate(STACK):
        for path in sorted((REPO / package).rglob("*.py")):
            for name, line in imported_packages(path):
                if STACK.index(name) > rank:
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not upward, "imports that run up the stack:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from energy.model import x\nimport numpy\n")
    assert imported_packages(bad) == {("energy", 2)}
