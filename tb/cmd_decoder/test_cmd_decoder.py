"""cocotb bench for ``rtl/isa/cmd_decoder.sv`` against ``pymodel.isa.decode``.

cocotb tests (``run_*``):
- ``run_random_traffic``: >= 5000 words (random bits mixed with encoded legal ``Command``s and
  near-legal words), random idle cycles on the input and random backpressure on the output.
- ``run_full_throughput``: no idle, no backpressure: one word per cycle in and out.
- ``run_planted_bug``: the scoreboard's expected values are corrupted (one field flipped, env
  ``CMD_DECODER_CORRUPT``, default ``row``); the test passes only if the scoreboard reports it.

A stream driver (``tb/common/stream.py``) offers the words (random bits on ``word_i`` while idle);
what the DUT accepted (valid && ready) goes to the scoreboard, and a stream monitor on the output
compares every delivered result in order; both check that valid and the payload hold until
accepted.
Signals are driven just after the rising edge and sampled at the falling edge (same behaviour on
Verilator and Icarus). Seed: cocotb's RANDOM_SEED, or env ``SEED``; it is logged.
Config: env ``PIMPHONY_CONFIG`` (preset name or TOML/JSON file; default aim-gddr6) must be the one
the DUT's ``pim_pkg`` was generated from (checked on the word width).

``test_cmd_decoder_sim`` (pytest, marked ``sim``) builds and runs this module through simlib, on the
committed package (aim-gddr6) and on a generated package with non-power-of-two buffer sizes (so the
decoder's range checks are exercised). Simulator: env ``SIM`` (verilator or icarus).
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
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb.utils import get_sim_time
from stream import StreamDriver, StreamMonitor, StreamPort

from pymodel.config import PimConfig, resolve
from pymodel.isa import CmdLayout
from scoreboards.cmd_decode import (
    CmdDecodeMismatch,
    CmdDecodeScoreboard,
    DecodeResult,
    random_word,
    reference,
)

CLK_NS = 10
#: Simulated-time limit of each cocotb test (the longest, 6000 words at ~40 % transfer rate, needs
#: ~150 us): a DUT that stops taking or giving words fails instead of hanging the run.
TIMEOUT_US = float(os.environ.get("DECODER_TIMEOUT_US", "5000"))


class TB:
    """Clock, reset, word driver, output backpressure, input/output monitors, scoreboard."""

    def __init__(self, dut: Any, corrupt: str | None = None, expect_mismatch: bool = False):
        self.dut = dut
        self.log = dut._log
        self.cfg: PimConfig = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
        self.seed = bench_seed()
        self.rng = random.Random(self.seed)
        self.log.info(
            "config %s, seed %d (rerun with SEED=%d)", self.cfg.name, self.seed, self.seed
        )
        width = CmdLayout.of(self.cfg).width
        assert len(dut.word_i) == width, (
            f"DUT word_i has {len(dut.word_i)} bits but config '{self.cfg.name}' needs {width}: "
            "pim_pkg was generated from another config (run `make gen`)"
        )
        self.sb = CmdDecodeScoreboard(self.cfg, corrupt=corrupt)
        self.expect_mismatch = expect_mismatch
        self.mismatch: CmdDecodeMismatch | None = None
        self.words = StreamDriver(
            StreamPort("word", dut.word_valid_i, dut.word_i, dut.word_ready_o),
            idle_fill=lambda: self.rng.getrandbits(width),  # garbage while idle
        )
        self.results = StreamMonitor(
            StreamPort(
                "cmd",
                dut.cmd_valid_o,
                [dut.cmd_o, dut.illegal_o, dut.err_o, dut.err_field_o],
                dut.cmd_ready_i,
            )
        )
        Clock(dut.clk_i, CLK_NS, unit="ns").start()

    def cycle(self) -> int:
        return int(get_sim_time("ns")) // CLK_NS

    async def reset(self) -> None:
        d = self.dut
        d.rst_ni.value = 0
        d.word_valid_i.value = 0
        d.word_i.value = 0
        d.cmd_ready_i.value = 0
        for _ in range(3):
            await RisingEdge(d.clk_i)
        d.rst_ni.value = 1
        await RisingEdge(d.clk_i)
        await FallingEdge(d.clk_i)
        assert d.cmd_valid_o.value == 0, "cmd_valid_o must be low after reset"

    def start(self, ready_prob: float) -> None:
        cocotb.start_soon(self._run(ready_prob))

    async def drive(self, words: list[int], idle_prob: float) -> None:
        """Queue ``words`` (each after a random number of idle cycles) and wait until the DUT
        has accepted the last one."""
        for word in words:
            idle = 0
            while self.rng.random() < idle_prob:
                idle += 1
            self.words.send(word, idle)
        while self.words.busy:
            await RisingEdge(self.dut.clk_i)

    async def _run(self, ready_prob: float) -> None:
        """One cycle per iteration: drive the input word and the output ready after the rising
        edge; at the falling edge, the accepted word goes to the scoreboard, the delivered
        result is compared."""
        d = self.dut
        await RisingEdge(d.clk_i)  # drive just after a rising edge
        while True:
            self.words.drive()
            d.cmd_ready_i.value = int(self.rng.random() < ready_prob)
            await FallingEdge(d.clk_i)
            word = self.words.sample(self.cycle())
            if word is not None:
                self.sb.expect(word)
            payload = self.results.sample(self.cycle())
            if payload is not None:
                self._observe(payload)
            await RisingEdge(d.clk_i)

    @property
    def stalls(self) -> int:
        """Cycles with word_valid_i && !word_ready_o."""
        return self.words.monitor.stalls

    def _observe(self, payload: tuple[int, int, int, int]) -> None:
        got = DecodeResult.from_bits(*payload, cfg=self.cfg)
        try:
            self.sb.observe(got, cycle=self.cycle())
        except CmdDecodeMismatch as exc:
            if not self.expect_mismatch:
                raise
            if self.mismatch is None:
                self.mismatch = exc

    async def wait_drained(self, max_cycles: int = 1000) -> None:
        for _ in range(max_cycles):
            await RisingEdge(self.dut.clk_i)
            if self.sb.n_observed == self.sb.n_expected and not self.dut.cmd_valid_o.value:
                return
        raise AssertionError(f"not drained after {max_cycles} cycles: {self.sb.summary()}")


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def run_random_traffic(dut: Any) -> None:
    """>= 5000 random words with idle cycles and backpressure, each checked against decode."""
    tb = TB(dut)
    await tb.reset()
    n = int(os.environ.get("CMD_DECODER_WORDS", "6000"))
    words = [random_word(tb.rng, tb.cfg) for _ in range(n)]
    tb.start(ready_prob=0.6)
    t0 = tb.cycle()
    await tb.drive(words, idle_prob=0.3)
    await tb.wait_drained()
    tb.sb.drain()
    assert tb.sb.n_expected == tb.sb.n_observed == n > 0
    assert tb.stalls > 0, "backpressure never stalled the input"
    n_legal = tb.sb.n_observed - tb.sb.n_illegal
    assert n_legal > n // 4 and tb.sb.n_illegal > n // 4, tb.sb.summary()
    tb.log.info("%s in %d cycles, %d input stalls", tb.sb.summary(), tb.cycle() - t0, tb.stalls)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def run_full_throughput(dut: Any) -> None:
    """No idle, always ready: one word accepted and one result delivered every cycle."""
    tb = TB(dut)
    await tb.reset()
    n = 1000
    words = [random_word(tb.rng, tb.cfg) for _ in range(n)]
    tb.start(ready_prob=1.0)
    t0 = tb.cycle()
    await tb.drive(words, idle_prob=0.0)
    await tb.wait_drained()
    tb.sb.drain()
    assert tb.sb.n_observed == n
    assert tb.stalls == 0, f"{tb.stalls} stall cycles with the output always ready"
    cycles = tb.cycle() - t0
    assert cycles <= n + 4, f"{n} words took {cycles} cycles"
    tb.log.info("%s in %d cycles", tb.sb.summary(), cycles)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def run_planted_bug(dut: Any) -> None:
    """Corrupt the reference (one field flipped): the scoreboard must report a mismatch."""
    field = os.environ.get("CMD_DECODER_CORRUPT", "row")
    tb = TB(dut, corrupt=field, expect_mismatch=True)
    await tb.reset()
    words: list[int] = []
    while len(words) < 200:  # legal words: every field of the result is compared
        w = random_word(tb.rng, tb.cfg)
        if not reference(w, tb.cfg).illegal:
            words.append(w)
    tb.start(ready_prob=0.7)
    await tb.drive(words, idle_prob=0.2)
    await tb.wait_drained()
    assert tb.mismatch is not None, f"corrupting '{field}' went unnoticed: {tb.sb.summary()}"
    assert f"{field}: got" in str(tb.mismatch), str(tb.mismatch)
    tb.log.info("planted bug caught as expected: %s", tb.mismatch)


# ---------------------------------------------------------------------------------- pytest side

#: Configs the RTL is simulated with: the committed package, and one generated on the fly whose
#: buffer sizes are not powers of two (the only way to reach the decoder's range checks).
SIM_CONFIGS: dict[str, str | None] = {
    "aim-gddr6": None,
    "odd-buffers": (
        'preset = "aim-gddr6"\nname = "odd-buffers"\n\n'
        "[buffers]\ngb_entries = 48\nobuf_entries = 6\n"
    ),
}


@pytest.mark.sim
@pytest.mark.parametrize("config", sorted(SIM_CONFIGS))
def test_cmd_decoder_sim(config: str, tmp_path: Path) -> None:
    import simlib

    pkg, cfg_spec = simlib.config_package(config, SIM_CONFIGS[config])
    sources = pkg + [simlib.RTL / "isa" / "cmd_decoder.sv"]
    simlib.run(
        toplevel="cmd_decoder",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        extra_env={"PIMPHONY_CONFIG": cfg_spec},
    )


@pytest.mark.sim
def test_cmd_decoder_timeout_fires(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A run longer than its time limit fails (the limit is what stops a hung DUT)."""
    import simlib

    pkg, cfg_spec = simlib.config_package("aim-gddr6", None)
    with pytest.raises(AssertionError, match="failed"):
        simlib.run(
            toplevel="cmd_decoder",
            sources=pkg + [simlib.RTL / "isa" / "cmd_decoder.sv"],
            test_file=__file__,
            test_dir=tmp_path,
            testcase="run_random_traffic",
            extra_env={"PIMPHONY_CONFIG": cfg_spec, "DECODER_TIMEOUT_US": "20"},
        )
    assert "SimTimeoutError" in capfd.readouterr().out, "the test failed, but not on its timeout"
