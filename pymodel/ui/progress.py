"""Progress for anything that takes more than a few seconds, on stderr.

On a terminal: a rich progress bar (count, percentage, elapsed, remaining). Otherwise (CI, pipes,
logs): one plain line every ``interval`` seconds and a closing line if any was printed, so a long
run is never silent and a short one adds nothing. ``PIMPHONY_PROGRESS=off`` disables both,
``=lines`` forces the plain lines (``PIMPHONY_PROGRESS_INTERVAL`` sets their period).

:class:`Progress` counts steps towards a known total (``total=None``: an open-ended count);
:func:`activity` shows the elapsed time of one opaque call against an estimate.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_INTERVAL_S = 10.0
TIMER_UNIT = "s (elapsed)"  # the unit of an activity's steps


def _mode() -> str:
    env = os.environ.get("PIMPHONY_PROGRESS", "").lower()
    if env in ("off", "lines", "bar"):
        return env
    return "bar" if sys.stderr.isatty() else "lines"


def fmt_seconds(s: float) -> str:
    """``42 s``, ``3.5 min`` or ``2.1 h``."""
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


class Progress:
    """``label``: ``done``/``total`` ``unit``; use as a context manager or call :meth:`close`."""

    def __init__(
        self, total: int | None, label: str, unit: str = "", interval: float | None = None
    ) -> None:
        self.total, self.label, self.unit, self.done = total, label, unit, 0
        self.mode = _mode()
        env_interval = os.environ.get("PIMPHONY_PROGRESS_INTERVAL")
        self.interval = interval or (float(env_interval) if env_interval else DEFAULT_INTERVAL_S)
        self.started = self._last_line = time.monotonic()
        self._lines = 0
        self._lock = threading.Lock()
        self._bar: Any = None
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def _line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self.started
        if self.unit == TIMER_UNIT:  # an activity: the steps are its seconds
            est = f" of about {fmt_seconds(self.total)} (estimate)" if self.total else ""
            return f"{self.label}: {fmt_seconds(elapsed)}{est}"
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            frac = self.done / self.total
            left = elapsed / frac - elapsed if 0 < frac < 1 else 0.0
            eta = "" if final or not frac else f", about {fmt_seconds(left)} left"
            return (
                f"{self.label}: {self.done}/{self.total}{unit} ({100 * frac:.0f}%), "
                f"{fmt_seconds(elapsed)}{eta}"
            )
        return f"{self.label}: {self.done}{unit}, {fmt_seconds(elapsed)}"

    def _maybe_line(self) -> None:
        now = time.monotonic()
        if self.mode == "lines" and now - self._last_line >= self.interval:
            self._last_line = now
            self._lines += 1
            print(self._line(), file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(self._task, advance=n)
            self._maybe_line()

    def tick(self) -> None:
        """Re-evaluate the periodic line without new steps (for :func:`activity`)."""
        with self._lock:
            self._maybe_line()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            elif self._lines:
                self._lines = 0
                print(self._line(final=True) + " (done)", file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress(items: Iterable[T], total: int, label: str, unit: str = "") -> Iterator[T]:
    """Yield ``items`` while showing progress over ``total`` steps."""
    with Progress(total, label, unit) as bar:
        for item in items:
            yield item
            bar.update()


@contextmanager
def activity(label: str, estimate_s: float | None = None) -> Iterator[Progress]:
    """Progress of one call that cannot report steps: elapsed seconds against ``estimate_s``
    (the bar stops at the estimate if the call runs longer), updated once a second."""
    total = max(1, round(estimate_s)) if estimate_s else None
    bar = Progress(total, label, TIMER_UNIT)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            if bar.total is None or bar.done < bar.total - 1:
                bar.update()
            else:
                bar.tick()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
        bar.close()
