"""Unit bench of ``tb/common/stream.py`` (the stream driver and monitor) on ``stream_slice.sv``.

A :class:`stream.StreamDriver` feeds the slice's input (random idle cycles, random bits on the
payload while idle), a :class:`stream.StreamMonitor` with the quiet rule watches its output under
random backpressure, and every word must come out once, in order.

* ``run_traffic``: the clean slice must pass; with env ``STREAM_EXPECT`` = a rule name, the slice
  is built with a planted bug (``PlantBug``, see ``stream_slice.sv``) and the output monitor must
  raise :class:`stream.StreamProtocolError` for exactly that rule.
* ``run_driver_violation``: a driver told to break the rule (env ``STREAM_VIOLATE`` =
  ``withdraw`` / ``change``) against a stalled slice: the driver's own monitor must catch it.

Seed: env ``SEED`` (bench_seed), logged.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import cocotb
import pytest
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from stream import StreamDriver, StreamMonitor, StreamPort, StreamProtocolError

WORDS = 2000
TIMEOUT_US = 500  # simulated; a run needs about 2 * WORDS * 10 ns = 40 us


async def _reset(dut: Any) -> None:
    Clock(dut.clk_i, 10, unit="ns").start()
    dut.in_valid_i.value = dut.in_data_i.value = dut.out_ready_i.value = 0
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 2)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)


def _ports(dut: Any) -> tuple[StreamPort, StreamPort]:
    return (
        StreamPort("in", dut.in_valid_i, dut.in_data_i, dut.in_ready_o),
        StreamPort("out", dut.out_valid_o, dut.out_data_o, dut.out_ready_i),
    )


async def _traffic(dut: Any, rng: random.Random) -> tuple[int, int]:
    """WORDS words through the slice; returns (words out, output stall cycles)."""
    width = len(dut.in_data_i)
    src, dst = _ports(dut)
    drv = StreamDriver(src, idle_fill=lambda: rng.getrandbits(width))
    mon = StreamMonitor(dst, quiet=True)
    sent = [rng.getrandbits(width) for _ in range(WORDS)]
    for w in sent:
        drv.send(w, rng.randint(1, 3) if rng.random() < 0.3 else 0)
    got: list[int] = []
    cycle = 0
    while drv.busy or len(got) < drv.monitor.transfers:  # until the slice is empty
        drv.drive()
        dut.out_ready_i.value = int(rng.random() < rng.choice([0.3, 0.9]))
        await FallingEdge(dut.clk_i)
        drv.sample(cycle)
        out = mon.sample(cycle)
        if out is not None:
            got.append(out)
        await RisingEdge(dut.clk_i)
        cycle += 1
    assert got == sent, f"{len(got)} words out of {len(sent)}, or not in order"
    return len(got), mon.stalls


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us", skip="STREAM_VIOLATE" in os.environ)
async def run_traffic(dut: Any) -> None:
    expect = os.environ.get("STREAM_EXPECT")
    await _reset(dut)
    rng = random.Random(bench_seed())
    try:
        n, stalls = await _traffic(dut, rng)
    except StreamProtocolError as exc:
        if expect is None:
            raise
        assert exc.port == "out" and exc.rule == expect, f"expected the {expect} rule: {exc}"
        dut._log.info("planted violation caught as expected: %s", exc)
        return
    assert expect is None, f"the planted {expect} violation went unnoticed"
    assert stalls > 0, "the output never stalled"
    dut._log.info("%d words in order, %d output stall cycles", n, stalls)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us", skip="STREAM_VIOLATE" not in os.environ)
async def run_driver_violation(dut: Any) -> None:
    violate = os.environ["STREAM_VIOLATE"]
    await _reset(dut)
    src, _ = _ports(dut)
    drv = StreamDriver(src, violate=violate)
    drv.send(0x11)
    drv.send(0x22)  # the slice holds 0x11 (output not ready): 0x22 stalls
    for cycle in range(10):
        drv.drive()
        await FallingEdge(dut.clk_i)
        try:
            drv.sample(cycle)
        except StreamProtocolError as exc:
            want = {"withdraw": "hold", "change": "stable"}[violate]
            assert exc.port == "in" and exc.rule == want, exc
            dut._log.info("driver's violation caught as expected: %s", exc)
            return
        await RisingEdge(dut.clk_i)
    raise AssertionError(f"driver violation {violate!r} went unnoticed")


# ------------------------------------------------------------------------------------- pytest

#: PlantBug of stream_slice.sv -> the rule the output monitor must report.
PLANTED = {1: "stable", 2: "hold", 3: "quiet"}


def _run(tmp_path: Path, params: dict[str, int], **env: str) -> None:
    import simlib

    simlib.run(
        toplevel="stream_slice",
        sources=[Path(__file__).parent / "stream_slice.sv"],
        test_file=__file__,
        test_dir=tmp_path,
        params=params,
        extra_env=env,
    )


@pytest.mark.sim
@pytest.mark.parametrize("width", [16, 5])
def test_stream_protocol_sim(width: int, tmp_path: Path) -> None:
    _run(tmp_path, {"Width": width})


@pytest.mark.sim
@pytest.mark.parametrize("plant", sorted(PLANTED), ids=[PLANTED[p] for p in sorted(PLANTED)])
def test_stream_monitor_fires(plant: int, tmp_path: Path) -> None:
    """Each planted protocol bug of the slice is reported by the output monitor, by rule."""
    _run(tmp_path, {"PlantBug": plant}, STREAM_EXPECT=PLANTED[plant])


@pytest.mark.sim
@pytest.mark.parametrize("violate", ["withdraw", "change"])
def test_stream_driver_check_fires(violate: str, tmp_path: Path) -> None:
    _run(tmp_path, {}, STREAM_VIOLATE=violate)
