"""Content hashes of the code behind a result, so caches and result stores can tell when the
code that produced an entry has changed (no hand-bumped version numbers).

:func:`code_hash` hashes the source of a module and of every ``pymodel`` module it imports,
directly or through others (found by reading the ``import`` statements, also those inside
functions), so a new module the timing code starts to import is covered without a list to keep.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

ROOT_PACKAGE = "pymodel"


def _file_of(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(path: Path, module: str) -> set[str]:
    """``pymodel`` modules named by the import statements of ``path``."""
    tree = ast.parse(path.read_bytes(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in out if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")}


@cache
def source_closure(module: str) -> tuple[tuple[str, Path], ...]:
    """(module, file) of ``module`` and every ``pymodel`` module it imports, sorted by name."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        path = _file_of(m)
        if path is None:  # a name imported from a module, not a module
            continue
        seen[m] = path
        todo.extend(_imports(path, m) - seen.keys())
    return tuple(sorted(seen.items()))


def code_hash(module: str, length: int = 16) -> str:
    """SHA-256 over the names and contents of :func:`source_closure` (hex, ``length`` digits)."""
    h = hashlib.sha256()
    for name, path in source_closure(module):
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:length]
