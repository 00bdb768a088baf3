"""Kernel-cost extrapolation vs full command-level runs (pymodel.system.kernel_cost)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from pymodel.config import PRESETS
from pymodel.kernels import GemvKernel, QkKernel, SvKernel
from pymodel.sched import Mode, run_kernel
from pymodel.system.kernel_cost import NO_REFRESH_NREFI, KernelCache, KernelCost, obuf_for

CFG = PRESETS["aim-gddr6"]
NR = CFG.with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})


@pytest.fixture(scope="module")
def cache(kernel_cache_file: Path) -> Iterator[KernelCache]:
    kc = KernelCache(CFG, kernel_cache_file)
    yield kc
    kc.save()


# Shapes past the exact-run threshold (so the extrapolation is used), ragged tails included.
SWEEP = [
    ("qk", 2000, 1),
    ("qk", 2000, 4),
    ("qk", 1500, 2),
    ("sv", 4100, 1),
    ("sv", 7000, 1),
    ("gemv", 48, 4096),
    ("gemv", 304, 4096),
]


@pytest.mark.parametrize("mode", [Mode.STATIC, Mode.DCS])
@pytest.mark.parametrize("kind, a, b", SWEEP)
def test_extrapolation_equals_full_run(
    cache: KernelCache, mode: Mode, kind: str, a: int, b: int
) -> None:
    ob = obuf_for(mode, CFG)
    if kind == "qk":
        est, k = cache.qk(a, mode, group=b), QkKernel(a, NR, group=b, obuf=ob)
    elif kind == "sv":
        est, k = cache.sv(a, mode), SvKernel(-(-a // 64) * 64, NR, obuf=ob)
    else:
        est, k = cache.gemv(a, b, mode), GemvKernel(a, b, NR, obuf=ob)
    full = KernelCost.of(run_kernel(NR, mode, k.program()).stats.as_dict())
    # refresh-free: cycles, every command count and every cause are exact
    assert est.values == pytest.approx(full.values, rel=1e-9, abs=1e-6)


def test_refresh_model_within_one_percent(cache: KernelCache) -> None:
    """With refresh on, a single long run is within 1% (phase noise of one REF at most)."""
    for mode in (Mode.STATIC, Mode.DCS):
        k = QkKernel(9000, CFG, obuf=obuf_for(mode, CFG))
        full = run_kernel(CFG, mode, k.program()).stats
        assert full.commands["REF"] >= 2
        est = cache.qk(9000, mode).with_refresh(CFG.timing.nREFI, whole=True)
        assert est.refreshes == full.commands["REF"]
        assert abs(est.busy_cycles - full.cycles) / full.cycles < 0.01


def test_costs_add_and_scale() -> None:
    a = KernelCost((10.0,) + (1.0,) * 15, 100.0)
    b = KernelCost((30.0,) + (2.0,) * 15, 200.0)
    s = a + b.scale(2)
    assert s.cycles == 70.0
    assert s.refresh_penalty_cycles == pytest.approx((100 * 10 + 200 * 60) / 70)
    assert s.with_refresh(1000).refreshes == pytest.approx(
        70 / 1000 / (1 - s.refresh_penalty_cycles / 1000)
    )
