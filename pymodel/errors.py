"""The root of every error a user can fix, and the file helpers that raise it.

``pymodel.cli.main`` catches :class:`PimphonyError` once, prints ``pimphony: error: <message>``
(one line; the message names the file, field, line or limit) and exits with code 2. Modules raise a
subclass of their own (``SystemSimError``, ``CompileError``, ...) so tests can tell them apart.
"""

from __future__ import annotations

from pathlib import Path


class PimphonyError(Exception):
    """Bad input or a request that cannot be carried out; the message says which and why."""


class InputFileError(PimphonyError):
    """An input file that cannot be read or is not UTF-8 text."""


class OutputError(PimphonyError):
    """An output path that cannot be written (checked before the work starts)."""


class LimitError(PimphonyError):
    """An input that would run far longer than a command is meant to (names the estimate)."""


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; unreadable or undecodable files raise :class:`InputFileError`
    naming the file (and the first bad byte)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {what} {p}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(
            f"{p}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None


def check_text_file(path: str | Path, what: str = "file") -> None:
    """Raise :class:`InputFileError` unless ``path`` is readable UTF-8 text."""
    read_text(path, what)
