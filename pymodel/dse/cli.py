"""``pimphony sweep SPEC.toml --out DIR``: a design-space sweep on Dask (docs/sweep.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pymodel.errors import PimphonyError
from pymodel.system.cli import add_cache_argument, cache_dir
from pymodel.ui.args import positive
from pymodel.ui.outputs import check_output_dir

DEFAULT_WORKERS = 2


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every point of a sweep spec not yet in DIR/results.sqlite (one row per point, with its
    configuration hash and the code version), then write DIR/pareto.png."""
    from pymodel.dse.spec import EXAMPLE

    if args.example:
        sys.stdout.write(EXAMPLE)
        return 0
    if not args.spec or not args.out:
        raise PimphonyError("sweep: SPEC.toml and --out DIR are required (or --example)")
    from pymodel.dse import pareto
    from pymodel.dse.point import code_version
    from pymodel.dse.run import connect, run_sweep, store_path
    from pymodel.dse.spec import load_spec, point_key
    from pymodel.dse.store import Store

    spec = load_spec(args.spec)  # every point checked before anything starts
    out = check_output_dir(args.out, "--out")
    cache = cache_dir(args.kernel_cache)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(store_path(out))
    try:
        where = args.scheduler or f"a LocalCluster of {args.workers} worker processes"
        msg = f"sweep {spec.name}: {len(spec.points)} points on {where}"
        print(msg, file=sys.stderr, flush=True)
        with connect(args.scheduler, args.workers) as client:
            s = run_sweep(spec, store, client, None if cache is None else str(cache))
        rows = store.rows(code_version())
    finally:
        store.close()
    keys = {point_key(p) for p in spec.points}
    mine = [r for r in rows if r["key"] in keys]  # this spec's points only
    png = out / "pareto.png"
    pareto.plot(mine, png, f"sweep {spec.name}")
    print(
        f"sweep {spec.name}: {s.points} points, {s.skipped} already done, {s.ran} run "
        f"({s.errors} cannot run, reason stored) in {s.wall_s:.1f} s on {s.workers} workers "
        f"({s.ran / s.wall_s if s.wall_s else 0:.2f} points/s)"
    )
    print(f"  store  {store_path(out)}  (table points, code version {code_version()})")
    for mode, group in sorted(pareto.by_mode(mine).items()):
        best = pareto.front(group)
        print(f"  Pareto front ({mode} points) in {png}: {len(best)} points")
        for r in best:
            print(
                f"    {r['buffer_bytes'] / 2**20:>9.2f} MiB  {r['throughput_tokens_per_s']:>10,.1f}"
                f" tokens/s  {pareto.label(r)}"
            )
    return 0


def add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="design-space sweep on Dask (SQLite store, resumable, Pareto plot)",
        description=cmd_sweep.__doc__,
    )
    p.add_argument("spec", metavar="SPEC.toml", nargs="?", help="the grid (see --example)")
    p.add_argument("--out", metavar="DIR", help="results.sqlite and pareto.png go here")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler, e.g. tcp://host:8786 (default: a LocalCluster)",
    )
    p.add_argument(
        "--workers",
        type=positive,
        default=DEFAULT_WORKERS,
        help=f"LocalCluster worker processes (default {DEFAULT_WORKERS})",
    )
    p.add_argument("--example", action="store_true", help="print a small ready-to-run spec")
    add_cache_argument(p)
    p.set_defaults(func=cmd_sweep)
