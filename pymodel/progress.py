"""A dependency-free progress bar on stderr (silent when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int, label: str, force: bool = False) -> Iterator[T]:
    """Yield ``items`` while drawing ``label [#####     ] 42%`` at most ten times a second."""
    show = force or sys.stderr.isatty()
    last = 0.0
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if show and (now - last > 0.1 or done == total):
            last = now
            frac = min(1.0, done / total) if total else 1.0
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r{label} [{bar:<30}] {100 * frac:5.1f}%")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
