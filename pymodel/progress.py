"""A dependency-free progress bar on stderr (silent when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Progress:
    """``label [#####     ] 42%``, redrawn at most ten times a second."""

    def __init__(self, total: int, label: str, force: bool = False) -> None:
        self.total, self.label, self.done = total, label, 0
        self.show = force or sys.stderr.isatty()
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.show and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            frac = min(1.0, self.done / self.total) if self.total else 1.0
            sys.stderr.write(f"\r{self.label} [{'#' * int(30 * frac):<30}] {100 * frac:5.1f}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.show:
            sys.stderr.write("\n")
            sys.stderr.flush()


def progress(items: Iterable[T], total: int, label: str, force: bool = False) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar of ``total`` steps."""
    bar = Progress(total, label, force)
    for item in items:
        yield item
        bar.update()
    bar.close()
