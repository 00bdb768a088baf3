"""One sweep point, as a Dask task: build the configuration, system and workload, run the
decode-step model (best TP/PP split and batch) and return one result row.

Each worker process keeps one :class:`KernelCache` per configuration across its tasks (saved to
the cache directory after every point, so other workers and later sweeps reuse the runs).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from pymodel import __version__
from pymodel.codehash import code_hash
from pymodel.config import PimConfig
from pymodel.dse.spec import (
    Point,
    build_trace,
    build_workload,
    config_hash,
    point_config,
    point_key,
)
from pymodel.system.cli import simulate_one
from pymodel.system.kernel_cost import KernelCache
from pymodel.system.models import resolve_model
from pymodel.system.run_config import pim_system
from pymodel.system.serving import ServeOptions, ServingSim
from pymodel.system.simulate import SimError, StepModel
from pymodel.system.techniques import bundle

ACCUMULATOR_BYTES = 4  # one OBuf entry: the fp32 accumulator of a bank's MAC unit
METRICS = (
    "throughput_tokens_per_s",
    "token_latency_s",
    "batch",
    "tp",
    "pp",
    "mac_utilization",
    "capacity_utilization",
    "energy_j_per_token",
)  # of a decode step (StepResult)
SERVE_METRICS = (
    "throughput_tokens_per_s",
    "tp",
    "pp",
    "tpot_ms_p50",
    "tpot_ms_p99",
    "ttft_ms_p99",
    "completed",
    "rejected",
)  # of a serving simulation (its summary)
_caches: dict[tuple[str, str | None], KernelCache] = {}  # per worker process


def code_version() -> str:
    """Package version + content hash of every module a point's result depends on."""
    return f"{__version__}+{code_hash(__name__)}"


def channel_buffer_bytes(cfg: PimConfig) -> int:
    """On-chip buffer bytes of one channel: the GB (one column per entry) plus every bank's
    OBuf (one fp32 accumulator per entry)."""
    g, b = cfg.geometry, cfg.buffers
    return b.gb_entries * g.column_bytes + g.banks * b.obuf_entries * ACCUMULATOR_BYTES


def _cache(cfg: PimConfig, cache_dir: str | None) -> KernelCache:
    key = (config_hash(cfg), cache_dir)
    if key not in _caches:
        _caches[key] = KernelCache(cfg, None if cache_dir is None else Path(cache_dir))
    return _caches[key]


def _serve(p: Point, cache: KernelCache) -> dict[str, Any]:
    """Serving-simulation metrics of a serve point (as ``pimphony serve`` computes them)."""
    sm = StepModel(
        resolve_model(p["model"]),
        pim_system(p["system"], p["modules"], cache.cfg),
        bundle(p["technique"], p["system"]),
        cache,
    )
    summary = ServingSim(sm, ServeOptions(max_batch=p["max_batch"])).run(build_trace(p)).summary
    return {m: summary[m] for m in SERVE_METRICS}


def run_point(p: Point, cache_dir: str | None) -> dict[str, Any]:
    """The result row of point ``p``: its key, parameters, hashes and metrics; a configuration
    that cannot run (does not fit) is a row with ``status = "error"`` and the reason."""
    started = time.perf_counter()
    cfg = point_config(p)
    row: dict[str, Any] = {
        "key": point_key(p),
        "code_version": code_version(),
        "config_hash": config_hash(cfg),
        "params": p,
        "status": "ok",
        "error": None,
        "buffer_bytes": 0,
    }
    cache = _cache(cfg, cache_dir)
    try:
        if p["mode"] == "serve":
            row.update(_serve(p, cache))
        else:
            res = simulate_one(
                p["model"],
                p["system"],
                p["modules"],
                build_workload(p),
                p["technique"],
                cache,
                p["batch"],
            )
            row.update({m: getattr(res, m) for m in METRICS})
        if p["system"] != "gpu":
            system = pim_system(p["system"], p["modules"], cfg)
            row["buffer_bytes"] = channel_buffer_bytes(cfg) * system.channels * system.modules
    except SimError as exc:
        row.update({"status": "error", "error": str(exc)})
    cache.save()
    row["wall_s"] = time.perf_counter() - started
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return row
