"""Sweep throughput with 1 and 2 Dask workers in the same run (``make bench-sweep``).

The spec is ``pimphony sweep --example``. Each worker count runs it twice on a fresh result
store: *cold* (an empty kernel-cost cache: every configuration's kernels are calibrated by
command-level runs, the usual case for a new design space) and *warm* (the cache that cold run
filled: only the decode-step model runs, so Dask's per-task overhead shows). Points/s counts the
sweep itself, from the first submission to the last stored row; cluster start-up is listed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from pymodel.dse.run import connect, run_sweep, store_path
from pymodel.dse.spec import EXAMPLE, parse_spec
from pymodel.dse.store import Store


def one(workers: int, cache: Path, scratch: Path) -> dict[str, float]:
    spec = parse_spec(EXAMPLE, "example")
    out: dict[str, float] = {"workers": workers, "points": len(spec.points)}
    t0 = time.perf_counter()
    with connect(None, workers) as client:
        out["startup_s"] = time.perf_counter() - t0
        for phase in ("cold", "warm"):
            d = scratch / f"{workers}-{phase}"
            d.mkdir()
            store = Store(store_path(d))
            s = run_sweep(spec, store, client, str(cache))
            store.close()
            assert s.ran == len(spec.points), s
            out[f"{phase}_s"] = s.wall_s
            out[f"{phase}_points_per_s"] = s.ran / s.wall_s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="build/sweep-bench.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            cache = Path(tmp) / f"cache-{workers}"  # each worker count starts cold
            rows.append(one(workers, cache, Path(tmp)))
    load = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"load_avg_1min": load, "rows": rows}, indent=1) + "\n")
    print("| workers | points | cold s | cold points/s | warm s | warm points/s | start s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['points']} | {r['cold_s']:.1f} | "
            f"{r['cold_points_per_s']:.2f} | {r['warm_s']:.2f} | {r['warm_points_per_s']:.1f} | "
            f"{r['startup_s']:.1f} |"
        )
    c1, c2 = rows[0]["cold_points_per_s"], rows[1]["cold_points_per_s"]
    w1, w2 = rows[0]["warm_points_per_s"], rows[1]["warm_points_per_s"]
    print(f"2 vs 1 worker: cold {c2 / c1:.2f}x, warm {w2 / w1:.2f}x (load average {load:.1f})")


if __name__ == "__main__":
    main()
