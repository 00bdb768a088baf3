"""Run a sweep on Dask distributed: a LocalCluster of ``workers`` processes by default, or an
existing cluster by its scheduler address (one code path: both give a ``Client``).

A task is a batch of points of one configuration (:func:`batches`). Results are stored as they
arrive (``as_completed``), one committed row each, so an interrupted sweep loses at most the
points in flight. A worker that dies mid-task is replaced by its nanny
and the scheduler reruns the tasks it held on another worker (a task whose workers die
``distributed.scheduler.allowed-failures`` times, default 3, fails with ``KilledWorker``); the
store's primary key keeps every point exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodel.dse.point import code_version, run_point
from pymodel.dse.spec import Point, Spec, config_hash, point_config, point_key
from pymodel.dse.store import Store
from pymodel.errors import PimphonyError
from pymodel.ui.progress import Progress


class ClusterError(PimphonyError):
    """The scheduler address cannot be reached."""


@dataclass
class Summary:
    points: int
    skipped: int  # done by an earlier run of the same code version
    ran: int
    errors: int  # points that cannot run (e.g. do not fit), stored with the reason
    wall_s: float
    workers: int


@contextmanager
def connect(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask ``Client``: to ``scheduler`` if given, else to a new LocalCluster."""
    try:
        from dask.distributed import Client, LocalCluster
    except ModuleNotFoundError as exc:
        raise ClusterError(
            f"sweep needs {exc.name}: pip install 'dask[distributed]' (a pimphony dependency)"
        ) from None

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: several clusters may run at once
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_sweep(
    spec: Spec,
    store: Store,
    client: Any,
    cache_dir: str | None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Run the points of ``spec`` not yet in ``store`` for this code version."""
    from dask.distributed import as_completed

    version = code_version()
    done = store.done(version)
    todo = [p for p in spec.points if point_key(p) not in done]
    started = time.perf_counter()
    ran = errors = 0
    tasks = batches(todo, max(1, len(client.scheduler_info()["workers"])))
    futures = client.map(
        run_points,
        tasks,
        cache_dir=cache_dir,
        key=[f"points-{point_key({'keys': [point_key(p) for p in b]})}" for b in tasks],
        pure=False,
    )
    with Progress(len(todo), f"sweep {spec.name}", "points") as bar:
        for fut in as_completed(futures):
            for row in _result(fut):
                if store.add(row):
                    ran += 1
                    errors += row["status"] != "ok"
                bar.update()
                if on_row is not None:
                    on_row(row)
    workers = len(client.scheduler_info()["workers"])
    return Summary(
        len(spec.points),
        len(spec.points) - len(todo),
        ran,
        errors,
        time.perf_counter() - started,
        workers,
    )


def batches(points: list[Point], workers: int) -> list[list[Point]]:
    """Tasks: the points of one configuration together (one worker calibrates its kernels once,
    instead of every worker that meets the configuration), split while there are fewer than
    two tasks per worker (so every worker has work and a slow task does not end the sweep
    alone)."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(config_hash(point_config(p)), []).append(p)
    out = list(groups.values())
    while len(out) < 2 * workers and any(len(b) > 1 for b in out):
        big = max(out, key=len)
        out.remove(big)
        out += [big[: len(big) // 2], big[len(big) // 2 :]]
    return out


def run_points(points: list[Point], cache_dir: str | None) -> list[dict[str, Any]]:
    """One task: the rows of ``points`` (run in order, sharing the worker's kernel cache)."""
    return [run_point(p, cache_dir) for p in points]


def _result(fut: Any) -> list[dict[str, Any]]:
    """A task's rows; a cluster that cannot run pimphony (not installed on a worker, workers
    dying on every try) is one error line, not a traceback."""
    from distributed.scheduler import KilledWorker

    try:
        rows: list[dict[str, Any]] = fut.result()
    except (ImportError, KilledWorker) as exc:
        raise ClusterError(f"task {fut.key}: {type(exc).__name__}: {exc}") from None
    return rows


def store_path(out: Path) -> Path:
    return out / "results.sqlite"
