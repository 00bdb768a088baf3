"""cocotb bench of the shared cells ``rtl/common/peek_fifo.sv`` and ``since_counter.sv``.

* ``run_peek_fifo``: random legal pushes/pops (also push+pop when full) against a deque, checking
  count/empty/full/head and every slot's valid bit and content each cycle. With env
  ``FIFO_VIOLATE`` = ``overflow`` / ``underflow`` it ends by breaking the caller's rule (push
  when full / pop when empty): the RTL assertions must stop the simulation.
* ``run_since_counter``: random events against ``min(Max, cycles since the event)``;
  ``run_since_counter_misconfigured``: clock and events only, for a build whose Max does not fit.

The planted bugs (tests below): the two rule violations fire ``a_no_overflow`` /
``a_no_underflow``; a since_counter whose Max does not fit its Width fires ``a_max_fits``.
Drive after the rising edge, sample at the falling edge. Seed: env ``SEED`` (bench_seed).
"""

from __future__ import annotations

import os
import random
from collections import deque
from pathlib import Path
from typing import Any

import cocotb
import pytest
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

CYCLES = 3000
TIMEOUT_US = 200  # simulated; a run needs CYCLES * 10 ns = 30 us


async def _reset(dut: Any) -> None:
    Clock(dut.clk_i, 10, unit="ns").start()
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 2)
    dut.rst_ni.value = 1


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us", skip=os.environ.get("CELL") != "peek_fifo")
async def run_peek_fifo(dut: Any) -> None:
    rng = random.Random(bench_seed())
    depth, width = int(dut.Depth.value), int(dut.Width.value)
    dut.push_i.value = dut.pop_i.value = dut.data_i.value = 0
    await _reset(dut)
    model: deque[int] = deque()
    n_full = 0
    for _ in range(CYCLES):
        await RisingEdge(dut.clk_i)
        bias = rng.choice([0.3, 0.5, 0.7])  # phases that fill and drain
        push = rng.random() < bias and (len(model) < depth or rng.random() < 0.5)
        pop = bool(model) and rng.random() < 1 - bias
        if push and len(model) == depth and not pop:  # full: a push needs a pop with it
            pop = True
        data = rng.getrandbits(width)
        dut.push_i.value, dut.pop_i.value, dut.data_i.value = int(push), int(pop), data
        await FallingEdge(dut.clk_i)
        assert dut.count_o.value.to_unsigned() == len(model)
        assert bool(dut.empty_o.value) == (not model) and bool(dut.full_o.value) == (
            len(model) == depth
        )
        n_full += len(model) == depth
        head = dut.head_idx_o.value.to_unsigned()
        valid = dut.slot_valid_o.value.to_unsigned()
        slots = dut.slots_o.value.to_unsigned()
        for k, v in enumerate(model):
            slot = (head + k) % depth
            assert valid >> slot & 1, f"slot {slot} (entry {k}) not valid"
            assert (slots >> (slot * width)) & ((1 << width) - 1) == v, f"entry {k}"
        assert bin(valid).count("1") == len(model)
        if model:
            assert dut.head_o.value.to_unsigned() == model[0]
        if pop:
            model.popleft()
        if push:
            model.append(data)
    assert n_full > 0, "the FIFO was never full"
    violate = os.environ.get("FIFO_VIOLATE")
    if violate:
        await RisingEdge(dut.clk_i)
        for _ in range(depth + 1):  # fill (overflow) or drain (underflow), then one more
            dut.push_i.value, dut.pop_i.value = (
                int(violate == "overflow"),
                int(violate == "underflow"),
            )
            await RisingEdge(dut.clk_i)
        await ClockCycles(dut.clk_i, 3)
        raise AssertionError(f"{violate} went unnoticed by the RTL assertions")


@cocotb.test(
    timeout_time=TIMEOUT_US, timeout_unit="us", skip=os.environ.get("CELL") != "since_counter"
)
async def run_since_counter(dut: Any) -> None:
    rng = random.Random(bench_seed())
    mx = int(dut.Max.value)
    dut.event_i.value = 0
    await _reset(dut)
    since = mx
    events = 0
    for _ in range(CYCLES):
        await RisingEdge(dut.clk_i)
        ev = rng.random() < rng.choice([0.02, 0.3])
        dut.event_i.value = int(ev)
        await FallingEdge(dut.clk_i)
        assert dut.count_o.value.to_unsigned() == since, (since, dut.count_o.value)
        since = 1 if ev else min(mx, since + 1)
        events += ev
    assert events > 0, "no event was driven"


@cocotb.test(
    timeout_time=TIMEOUT_US,
    timeout_unit="us",
    skip=os.environ.get("CELL") != "since_counter_misconfigured",
)
async def run_since_counter_misconfigured(dut: Any) -> None:
    """Only clock and events (no model to compare with, the parameters are wrong on purpose):
    the RTL assertions must stop the simulation."""
    dut.event_i.value = 0
    await _reset(dut)
    for k in range(40):
        dut.event_i.value = int(k % 7 == 0)
        await RisingEdge(dut.clk_i)
    raise AssertionError("a Max that does not fit Width went unnoticed by the RTL assertions")


# ------------------------------------------------------------------------------------- pytest

FIFO_PARAMS = [{"Width": 8, "Depth": 4}, {"Width": 5, "Depth": 3}]


def _run(cell: str, params: dict[str, int], tmp_path: Path, **env: str) -> dict[str, Any]:
    """simlib.run arguments for one cell; env CELL (default: the cell) picks the cocotb test."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("the cells' `int unsigned` parameters are beyond Icarus 11")

    return dict(
        toplevel=cell,
        sources=simlib.rtl_sources(f"common/{cell}.sv"),
        test_file=__file__,
        test_dir=tmp_path,
        params=params,
        extra_env={"CELL": cell, **env},
    )


@pytest.mark.sim
@pytest.mark.parametrize("params", FIFO_PARAMS, ids=["d4", "d3"])
def test_peek_fifo_sim(params: dict[str, int], tmp_path: Path) -> None:
    import simlib

    simlib.run(**_run("peek_fifo", params, tmp_path))


@pytest.mark.sim
@pytest.mark.parametrize(
    "params", [{"Width": 8, "Max": 255}, {"Width": 6, "Max": 40}], ids=["full-range", "max40"]
)
def test_since_counter_sim(params: dict[str, int], tmp_path: Path) -> None:
    import simlib

    simlib.run(**_run("since_counter", params, tmp_path))


@pytest.mark.sim
@pytest.mark.parametrize("violate", ["overflow", "underflow"])
def test_peek_fifo_assertion_fires(violate: str, tmp_path: Path, capfd: Any) -> None:
    import simlib

    simlib.expect_assertion(
        capfd,
        {f"a_no_{violate}"},
        **_run("peek_fifo", FIFO_PARAMS[1], tmp_path, FIFO_VIOLATE=violate),
    )


@pytest.mark.sim
def test_since_counter_assertion_fires(tmp_path: Path, capfd: Any) -> None:
    """Max = 17 does not fit Width = 4: the counter saturates at 1 (17 mod 16) instead."""
    import simlib

    simlib.expect_assertion(
        capfd,
        {"a_max_fits", "a_count_range"},
        **_run(
            "since_counter", {"Width": 4, "Max": 17}, tmp_path, CELL="since_counter_misconfigured"
        ),
    )
