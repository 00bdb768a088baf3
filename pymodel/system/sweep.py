"""Kernel-cost extrapolation vs full command-level runs over a sweep of shapes
(``python -m pymodel.system.sweep``; docs/system.md quotes its maximum error).

Each shape is run in full twice by :func:`pymodel.golden.sched.run_kernel` — refresh-free and with
refresh at the config's nREFI from cycle 0 — and compared with :class:`KernelCache`: the
refresh-free extrapolation (cycles, every command count and cycle cause) and the single-run estimate
with refresh (``start=0``: the REFs the run meets, each charged the penalty measured at its phase).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pymodel.config import PRESETS, PimConfig
from pymodel.golden.kernels import GemvKernel, QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import Mode, run_kernel
from pymodel.system.kernel_cost import (
    NO_REFRESH_NREFI,
    SV_TOKEN_QUANTUM,
    KernelCache,
    KernelCost,
)

Shape = tuple[str, int, int]  # (kind, a, b): qk (tokens, group), sv (tokens, -), gemv (d_out, d_in)

SWEEP: list[Shape] = (
    [("qk", t, g) for t in (1000, 2000, 4100, 7000, 12000, 20000) for g in (1, 4, 8)]
    + [("sv", t, 1) for t in (1000, 4100, 7000, 12000, 20000, 33000, 60000)]
    + [("gemv", o, i) for o in (48, 128, 304, 512) for i in (1024, 4096, 11264)]
)


def full_run(cfg: PimConfig, mode: Mode, shape: Shape, acc_init: str = "bias") -> KernelCost:
    kind, a, b = shape
    kw = buffer_args(mode, cfg) | {"acc_init": acc_init}
    kernel: Any
    if kind == "qk":
        kernel = QkKernel(a, cfg, group=b, **kw)
    elif kind == "sv":
        kernel = SvKernel(-(-a // SV_TOKEN_QUANTUM) * SV_TOKEN_QUANTUM, cfg, **kw)
    else:
        kernel = GemvKernel(a, b, cfg, **kw)
    return KernelCost.of(run_kernel(cfg, mode, kernel.program()).stats.as_dict())


def estimate(cache: KernelCache, mode: Mode, shape: Shape, start: int | None) -> KernelCost:
    kind, a, b = shape
    if kind == "qk":
        return cache.qk(a, mode, group=b, start=start)
    if kind == "sv":
        return cache.sv(a, mode, start=start)
    return cache.gemv(a, b, mode, start=start)


def compare(cache: KernelCache, mode: Mode, shape: Shape) -> dict[str, Any]:
    """One shape: refresh-free max relative field error, refresh error, REF counts."""
    cfg = cache.cfg
    nr_cfg = cfg.with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})
    nr = full_run(nr_cfg, mode, shape, cache.acc_init)
    rf = full_run(cfg, mode, shape, cache.acc_init)
    est_nr = estimate(cache, mode, shape, None)
    est_rf = estimate(cache, mode, shape, 0)
    nr_err = max(
        abs(x - y) / max(1.0, abs(y)) for x, y in zip(est_nr.values, nr.values, strict=True)
    )
    return {
        "mode": mode.value,
        "shape": shape,
        "cycles": rf.cycles,
        "refs": rf.command("REF"),
        "est_refs": est_rf.refreshes,
        "nr_err": nr_err,
        "ref_err": (est_rf.busy_cycles - rf.cycles) / rf.cycles,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="aim-gddr6", choices=list(PRESETS))
    args = ap.parse_args(argv)
    cache = KernelCache(PRESETS[args.config])
    worst = 0.0
    t0 = time.perf_counter()
    n = 0
    for mode in (Mode.STATIC, Mode.PINGPONG, Mode.DCS):
        for shape in SWEEP:
            r = compare(cache, mode, shape)
            n += 1
            worst = max(worst, abs(r["ref_err"]))
            print(
                f"{r['mode']:<8} {str(r['shape']):<22} cycles {r['cycles']:>8.0f} "
                f"REF {r['refs']:>3.0f}/{r['est_refs']:<3.0f} refresh-free err {r['nr_err']:.1e} "
                f"with refresh {100 * r['ref_err']:+.3f}%",
                flush=True,
            )
    print(
        f"{n} shapes in {time.perf_counter() - t0:.0f} s: max error with refresh {100 * worst:.3f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
