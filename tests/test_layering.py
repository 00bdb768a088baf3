"""pymodel's imports are one-way: each group may import only the groups listed below it.

Groups are the root modules and subpackages of ``pymodel`` (docs/architecture.md draws them).
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pymodel"

#: group -> the groups it may import. ``(pkg)`` is ``pymodel/__init__.py`` (the version only).
FOUNDATION = {"(pkg)", "errors", "codehash"}
ALLOWED: dict[str, set[str]] = {
    "(pkg)": set(),
    "errors": set(),
    "codehash": set(),
    "config": {"errors"},
    "isa": {"errors", "config"},
    "timing": {"errors", "config", "isa"},
    "golden": FOUNDATION | {"config", "isa", "timing"},
    "gen": FOUNDATION | {"config", "isa", "timing", "golden"},
    "ui": FOUNDATION,
    "system": FOUNDATION | {"config", "isa", "timing", "golden", "ui"},
    "compiler": FOUNDATION | {"config", "isa", "timing", "golden", "ui", "system"},
    "dse": FOUNDATION | {"config", "isa", "timing", "golden", "ui", "system"},
    "studies": FOUNDATION | {"config", "isa", "timing", "golden", "ui", "system"},
    "cli": FOUNDATION
    | {"config", "isa", "timing", "golden", "ui", "system", "compiler", "dse", "studies"},
}


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(pkg)"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute ``pymodel`` modules named by every import statement of ``path``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (pymodel uses absolute imports)"
            out.add(node.module or "")
    return {m for m in out if m == "pymodel" or m.startswith("pymodel.")}


def violations(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        src = group(mod)
        if src not in ALLOWED:
            bad.append(f"{mod}: group '{src}' is not in the layer table (add it to ALLOWED)")
            continue
        for dep in sorted(imported(path)):
            dst = group(dep)
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{mod} imports {dep}: '{src}' may not import '{dst}'")
    return bad


def test_imports_are_one_way() -> None:
    assert violations() == []


def test_layer_table_is_acyclic() -> None:
    state: dict[str, int] = {}

    def visit(g: str) -> None:
        assert state.get(g) != 1, f"layer table has a cycle through '{g}'"
        if state.get(g) == 2:
            return
        state[g] = 1
        for dep in ALLOWED[g]:
            visit(dep)
        state[g] = 2

    for g in ALLOWED:
        visit(g)


@pytest.mark.parametrize(
    ("where", "line", "expect"),
    [
        ("golden/channel.py", "from pymodel.system import models\n", "may not import 'system'"),
        ("ui/progress.py", "def f():\n    import pymodel.golden\n", "may not import 'golden'"),
        ("extra.py", "", "group 'extra' is not in the layer table"),
    ],
)
def test_a_backward_import_is_caught(tmp_path: Path, where: str, line: str, expect: str) -> None:
    """The checker fires on a planted upward import (also inside a function) and on a new group."""
    copy = tmp_path / "pymodel"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / where
    target.write_text((target.read_text() if target.exists() else "") + line, encoding="utf-8")
    found = violations(copy)
    assert any(expect in v for v in found), found
