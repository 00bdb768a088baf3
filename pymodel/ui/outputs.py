"""Output paths checked before the work starts, and written atomically (temporary file + rename).

A command that produces a result validates every path it will write first (so a bad ``--out``
costs nothing), then writes each file to a temporary name in the same directory and renames it
into place, so a reader never sees half a file. If writing still fails (disk full, permissions
changed mid-run), :func:`write_or_print` puts the result on stdout before raising, so the work is
never lost.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pymodel.errors import OutputError


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_creatable_dir(d: Path, what: str) -> None:
    """``d`` exists as a writable directory, or can be created (its nearest existing ancestor is
    a writable directory)."""
    base = _nearest_existing(d)
    if not base.is_dir():
        raise OutputError(f"{what} {d}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {d}: directory {base} is not writable")


def check_output_file(
    path: str | Path, what: str = "output", suffixes: tuple[str, ...] = (), create_dirs: bool = True
) -> Path:
    """Validate a file the command will write: not a directory, the right suffix, and a parent
    that exists (or, with ``create_dirs``, can be created) and is writable."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{what} {p} is a directory, not a file")
    if suffixes and p.suffix.lower() not in suffixes:
        raise OutputError(f"{what} {p}: must end in {' or '.join(suffixes)} (got '{p.suffix}')")
    parent = p.parent
    if not create_dirs and not parent.is_dir():
        raise OutputError(f"{what} {p}: directory {parent} does not exist")
    _check_creatable_dir(parent, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{what} {p} is not writable")
    return p


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Validate a directory the command will fill: a directory (or creatable), never a file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} exists and is a file, not a directory")
    _check_creatable_dir(p, what)
    return p


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + p.suffix, dir=p.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror}") from None
    t = Path(tmp)
    try:
        yield t
        os.replace(t, p)
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {exc.strerror}") from None
    finally:
        t.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as t:
        t.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as t:
        t.write_bytes(data)


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """``writer(tmp)`` writes the file (e.g. ``fig.savefig``); renamed into place after."""
    with atomic_path(path) as t:
        writer(t)


def write_or_print(path: str | Path, text: str) -> None:
    """Write ``text`` atomically; if that fails, print it on stdout first, then raise (exit 2)."""
    try:
        write_text(path, text)
    except OutputError:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        raise
