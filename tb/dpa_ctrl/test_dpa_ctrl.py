"""cocotb bench for ``rtl/dpa/dpa_ctrl.sv`` against ``pymodel.dpa`` (via ``scoreboards.dpa``).

cocotb tests (``run_*``):
- ``run_directed_errors``: every host error code and every instruction-path error, each asserted
  explicitly as well as by the scoreboard; templates (QK^T, SV, KV write) over a grown request.
- ``run_churn``: >= 10,000 random OPEN/GROW/CLOSE/TRANSLATE commands (env ``DPA_CHURN``) mixed
  with random DYN_LOOP programs, idle cycles and output backpressure; the reference's invariants
  are checked after every command, the DUT's free-chunk count whenever it is idle, and every
  translation it answers enters a one-to-one ownership map.
- ``run_reset_mid_traffic``: reset asserted while commands and loops are in flight; traffic
  continues afterwards against a fresh reference.
- ``run_planted_bug`` (only on the ``PlantBug=1`` build): the scoreboard must report a mismatch.

Monitors sample at the falling edge: inputs accepted (valid && ready) feed the scoreboard, then
outputs delivered are compared. Drivers drive just after the rising edge. Seed: env ``SEED`` or
cocotb's RANDOM_SEED (logged). Config: env ``PIMPHONY_CONFIG`` = the config the DUT's pim_pkg was
generated from. Verilator only (the DUT uses constructs Icarus 11 lacks).
"""

from __future__ import annotations

import os
import random
from collections import deque
from pathlib import Path
from typing import Any

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from pymodel.config import PimConfig, resolve
from pymodel.dpa import DpaLayout, HostOp, kv_write_template, qk_template, sv_template
from pymodel.isa import InstOp, Instruction, ModiField, encode_inst, inst_width
from scoreboards.dpa import DpaMismatch, DpaScoreboard

CLK_NS = 10


def _seed() -> int:
    env = os.environ.get("SEED")
    return int(env, 0) if env else int(getattr(cocotb, "RANDOM_SEED", 0) or 0)


class TB:
    """Clock, reset, host driver, instruction driver, one monitor for every port, scoreboard."""

    def __init__(self, dut: Any, expect_mismatch: bool = False) -> None:
        self.dut = dut
        self.log = dut._log
        self.cfg: PimConfig = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
        self.lay = DpaLayout.of(self.cfg)
        self.seed = _seed()
        self.rng = random.Random(self.seed)
        self.log.info("config %s, seed %d (rerun with SEED=%d)", self.cfg.name, self.seed,
                      self.seed)
        assert len(dut.inst_i) == inst_width(self.cfg), "pim_pkg from another config"
        self.sb = DpaScoreboard(self.cfg)
        self.expect_mismatch = expect_mismatch
        self.mismatch: DpaMismatch | None = None
        self.host_q: deque[tuple[int, int, int]] = deque()
        self.inst_q: deque[int] = deque()
        self.idle_prob = 0.2
        self.ready_prob = 0.7
        self.resp_ready_prob = 0.8
        self.out_stalls = 0
        self.in_reset = False
        Clock(dut.clk_i, CLK_NS, unit="ns").start()

    def cycle(self) -> int:
        return int(get_sim_time("ns")) // CLK_NS

    async def reset(self, cycles: int = 3) -> None:
        d = self.dut
        self.in_reset = True
        d.rst_ni.value = 0
        d.host_valid_i.value = 0
        d.inst_valid_i.value = 0
        await ClockCycles(d.clk_i, cycles)
        self.host_q.clear()
        self.inst_q.clear()
        self.sb.reset()
        d.rst_ni.value = 1
        self.in_reset = False
        await RisingEdge(d.clk_i)

    def start(self) -> None:
        for coro in (self._host_driver(), self._inst_driver(), self._readies(), self._monitor()):
            cocotb.start_soon(coro)

    async def _host_driver(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            if self.in_reset or not self.host_q or self.rng.random() < self.idle_prob:
                d.host_valid_i.value = 0
                continue
            op, req, arg = self.host_q[0]
            d.host_valid_i.value = 1
            d.host_op_i.value, d.host_req_i.value, d.host_arg_i.value = op, req, arg
            while True:
                await FallingEdge(d.clk_i)
                done = bool(d.host_ready_o.value) or self.in_reset
                await RisingEdge(d.clk_i)
                if done:
                    break
            if self.host_q:
                self.host_q.popleft()
            d.host_valid_i.value = 0

    async def _inst_driver(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            if self.in_reset or not self.inst_q or self.rng.random() < self.idle_prob:
                d.inst_valid_i.value = 0
                continue
            d.inst_valid_i.value = 1
            d.inst_i.value = self.inst_q[0]
            while True:
                await FallingEdge(d.clk_i)
                done = bool(d.inst_ready_o.value) or self.in_reset
                await RisingEdge(d.clk_i)
                if done:
                    break
            if self.inst_q:
                self.inst_q.popleft()
            d.inst_valid_i.value = 0

    async def _readies(self) -> None:
        d = self.dut
        while True:
            d.out_ready_i.value = int(self.rng.random() < self.ready_prob)
            d.resp_ready_i.value = int(self.rng.random() < self.resp_ready_prob)
            await RisingEdge(d.clk_i)

    async def _monitor(self) -> None:
        d, sb = self.dut, self.sb
        held_out: int | None = None
        while True:
            await FallingEdge(d.clk_i)
            if self.in_reset or not d.rst_ni.value:
                held_out = None
                continue
            c = self.cycle()
            try:
                if d.host_ready_o.value:
                    sb.free_chunks(d.free_chunks_o.value.to_unsigned(), c)
                if d.host_valid_i.value and d.host_ready_o.value:
                    sb.host_cmd(
                        d.host_op_i.value.to_unsigned(), d.host_req_i.value.to_unsigned(),
                        d.host_arg_i.value.to_unsigned(), c,
                    )
                if d.inst_valid_i.value and d.inst_ready_o.value:
                    sb.inst_in(d.inst_i.value.to_unsigned(), c)
                if d.resp_valid_o.value and d.resp_ready_i.value:
                    sb.host_resp(
                        d.resp_status_o.value.to_unsigned(), d.resp_chan_o.value.to_unsigned(),
                        d.resp_row_o.value.to_unsigned(), c,
                    )
                if d.out_valid_o.value:
                    word = d.out_o.value.to_unsigned()
                    assert held_out is None or held_out == word, f"cycle {c}: out_o changed"
                    if d.out_ready_i.value:
                        held_out = None
                        sb.out_word(word, c)
                    else:
                        held_out = word
                        self.out_stalls += 1
                else:
                    assert held_out is None, f"cycle {c}: out_valid_o dropped before acceptance"
                if d.err_valid_o.value:
                    sb.error(d.err_code_o.value.to_unsigned(), c)
            except DpaMismatch as exc:
                if not self.expect_mismatch:
                    raise
                if self.mismatch is None:
                    self.mismatch = exc
                    self.log.info("mismatch: %s", exc)

    async def wait_drained(self, max_cycles: int = 200_000) -> None:
        for _ in range(max_cycles):
            await RisingEdge(self.dut.clk_i)
            if not self.host_q and not self.inst_q and self.sb.idle and self.dut.host_ready_o.value:
                await ClockCycles(self.dut.clk_i, 3)
                if self.sb.idle:
                    return
        raise AssertionError(f"not drained after {max_cycles} cycles: {self.sb.summary()}")

    # ---------------------------------------------------------------- stimulus
    def words(self, prog: list[Instruction]) -> list[int]:
        return [encode_inst(i, self.cfg) for i in prog]

    def random_program(self) -> list[int]:
        rng, cfg = self.rng, self.cfg
        req = rng.randrange(cfg.dpa.max_requests)
        kind = rng.random()
        if kind < 0.15:
            return self.words(qk_template(cfg, req))
        if kind < 0.3:
            return self.words(sv_template(cfg, req))
        if kind < 0.4:
            return self.words(kv_write_template(cfg, req, rng.random() < 0.5, range(4)))
        if kind < 0.5:  # a plain instruction
            return self.words([Instruction(InstOp.MAC, ch_mask=1, op_size=2, row=3, col=4)])
        n = rng.randrange(1, cfg.dpa.max_body_len + 1)
        body: list[Instruction] = []
        lim = {"row": 3, "col": cfg.geometry.columns_per_row - 1, "gb": cfg.buffers.gb_entries - 1,
               "out": cfg.buffers.obuf_entries - 1, "gpr": 100}
        for _ in range(n):
            r = rng.random()
            if r < 0.3:
                f = rng.choice(list(ModiField))
                body.append(Instruction(InstOp.DYN_MODI, field=f, stride=rng.randint(-3, 3)))
            elif r < 0.6:
                body.append(Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=rng.randint(0, 3),
                                        col=rng.randint(0, lim["col"]),
                                        gb=rng.randint(0, lim["gb"]),
                                        out=rng.randint(0, lim["out"])))
            elif r < 0.75:
                body.append(Instruction(InstOp.WR_INP, ch_mask=1, op_size=1,
                                        gpr=rng.randint(0, 100), gb=rng.randint(0, lim["gb"])))
            elif r < 0.9:
                body.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=1,
                                        gpr=rng.randint(0, 100), out=rng.randint(0, lim["out"])))
            else:
                body.append(Instruction(InstOp.WR_BANK, ch_mask=1, op_size=1, bank=1,
                                        row=rng.randint(0, 3), col=2, gpr=5))
        return self.words([Instruction(InstOp.DYN_LOOP, req=req, body_len=n), *body])

    def random_host(self) -> tuple[int, int, int]:
        rng, lay = self.rng, self.lay
        op = rng.choices(list(HostOp), weights=[4, 6, 1, 4])[0]
        req = rng.randrange(min(self.cfg.dpa.max_requests + 1, 1 << len(self.dut.host_req_i)))
        if op is HostOp.OPEN:
            arg = rng.randrange(0, lay.chunk_tokens * 3)
        elif op is HostOp.GROW:
            arg = rng.choice([1, 1, 1, rng.randrange(lay.chunk_tokens * 2)])
        else:
            arg = rng.randrange(0, 2 * lay.chunk_rows)
        return int(op), req, arg


def _status(tb: TB, name: str) -> int:
    assert tb.sb.n.by_status is not None
    return tb.sb.n.by_status[name]


@cocotb.test()
async def run_directed_errors(dut: Any) -> None:
    tb = TB(dut)
    await tb.reset()
    tb.start()
    lay, cfg = tb.lay, tb.cfg
    nr = cfg.dpa.max_requests
    O, G, C, T = (int(op) for op in HostOp)  # noqa: E741
    too_many = nr < 1 << len(dut.host_req_i)  # an id beyond the table fits the port
    cmds = [(O, nr, 0)] if too_many else []  # TOO_MANY_REQUESTS
    cmds += [
        (O, 0, 300), (O, 0, 5),  # ALREADY_OPEN
        (G, 1, 3), (C, 1, 0), (T, 1, 0),  # UNKNOWN_REQUEST (never opened)
        (O, 1, lay.max_tokens + 1),  # TOO_LONG
        (G, 0, lay.max_tokens),  # TOO_LONG
        (T, 0, 5), (T, 0, 6),  # rows 0..5 exist (300 tokens = 3 blocks); 6 is OUT_OF_RANGE
        (O, 2, 0), (C, 2, 0), (C, 2, 0),  # closed request: UNKNOWN_REQUEST
    ]
    tb.host_q.extend(cmds)
    await tb.wait_drained()
    for name, n in (("TOO_MANY_REQUESTS", int(too_many)), ("ALREADY_OPEN", 1),
                    ("UNKNOWN_REQUEST", 4), ("TOO_LONG", 2), ("OUT_OF_RANGE", 1)):
        assert _status(tb, name) == n, (name, tb.sb.summary())
    # fill the pool: NO_MEMORY, and the failing request is unchanged
    if lay.num_chunks <= 1024:  # (at the default 16384 chunks filling takes too long)
        tb.host_q.extend([(O, r, lay.max_tokens) for r in range(1, nr)] + [(T, 0, 5)])
        await tb.wait_drained()
        assert _status(tb, "NO_MEMORY") >= 1, tb.sb.summary()
    # instruction-path errors
    mac = Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=1)
    modi = Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=2)
    progs = [
        [modi],  # stray DYN_MODI
        [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), mac,
         Instruction(InstOp.DYN_LOOP, req=0, body_len=1)],  # nested -> BAD_PROGRAM
        [Instruction(InstOp.DYN_LOOP, req=nr - 1 if nr > 3 else 2, body_len=1), mac],
        [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), modi, mac],  # row 1,3,5: fine
        [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), modi,
         Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=2)],  # row 6 -> OUT_OF_RANGE
    ]
    tb.host_q.append((C, nr - 1 if nr > 3 else 2, 0))
    await tb.wait_drained()
    for p in progs:
        tb.inst_q.extend(tb.words(p))
    tb.inst_q.append(7)  # unknown opcode
    for tmpl in (qk_template(cfg, 0), sv_template(cfg, 0),
                 kv_write_template(cfg, 0, True, range(cfg.dpa.max_body_len - 2))):
        tb.inst_q.extend(tb.words(tmpl))
    await tb.wait_drained()
    tb.sb.drain()
    assert tb.sb.n.err >= 5 and tb.sb.n.out > 20, tb.sb.summary()
    tb.log.info("%s", tb.sb.summary())


@cocotb.test()
async def run_churn(dut: Any) -> None:
    tb = TB(dut)
    await tb.reset()
    tb.start()
    n = int(os.environ.get("DPA_CHURN", "10000"))
    t0 = tb.cycle()
    done = 0
    while done < n:
        batch = min(500, n - done)
        tb.host_q.extend(tb.random_host() for _ in range(batch))
        for _ in range(batch // 25):
            tb.inst_q.extend(tb.random_program())
        tb.idle_prob = tb.rng.choice([0.0, 0.3])
        tb.ready_prob = tb.rng.choice([1.0, 0.5])
        await tb.wait_drained()
        done += batch
    tb.sb.drain()
    s = tb.sb.n.by_status or {}
    assert tb.sb.n.host >= n and s["NO_MEMORY"] > 0 and tb.sb.n.translate_ok > n // 20
    assert tb.out_stalls > 0, "output backpressure never happened"
    tb.log.info("churn: %s in %d cycles", tb.sb.summary(), tb.cycle() - t0)


@cocotb.test()
async def run_reset_mid_traffic(dut: Any) -> None:
    tb = TB(dut)
    await tb.reset()
    tb.start()
    for round_ in range(3):
        tb.host_q.extend(tb.random_host() for _ in range(300))
        for _ in range(20):
            tb.inst_q.extend(tb.random_program())
        await ClockCycles(dut.clk_i, tb.rng.randrange(200, 800))
        assert tb.host_q, "traffic finished before the reset"
        await tb.reset(cycles=2)
        assert dut.resp_valid_o.value == 0 and dut.out_valid_o.value == 0
        assert dut.free_chunks_o.value.to_unsigned() == tb.lay.num_chunks, round_
    tb.host_q.extend(tb.random_host() for _ in range(500))
    for _ in range(20):
        tb.inst_q.extend(tb.random_program())
    await tb.wait_drained()
    tb.sb.drain()
    tb.log.info("after resets: %s", tb.sb.summary())


@cocotb.test(skip=os.environ.get("DPA_PLANT_BUG", "0") != "1")
async def run_planted_bug(dut: Any) -> None:
    tb = TB(dut, expect_mismatch=True)
    await tb.reset()
    tb.start()
    tb.host_q.extend(tb.random_host() for _ in range(2000))
    for _ in range(40):
        tb.inst_q.extend(tb.random_program())
    for _ in range(100_000):
        await RisingEdge(dut.clk_i)
        if tb.mismatch is not None or (not tb.host_q and not tb.inst_q and tb.sb.idle):
            break
    assert tb.mismatch is not None, f"PlantBug=1 went unnoticed: {tb.sb.summary()}"
    tb.log.info("planted bug caught: %s", tb.mismatch)


# ---------------------------------------------------------------------------------- pytest side

SMALL_TOML = (
    'preset = "aim-gddr6"\nname = "dpa-small"\n\n'
    "[geometry]\nrows_per_bank = 32\n\n[module]\nchannels = 3\n\n"
    "[dpa]\nmax_requests = 6\nmax_chunks_per_request = 8\nchunk_rows = 4\n"
)


def _small_pkg() -> tuple[list[Path], str]:
    import simlib
    from pymodel.gen_sv import write

    gen_dir = simlib.BUILD_ROOT / "gen" / "dpa-small"
    gen_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = gen_dir / "config.toml"
    if not cfg_file.is_file() or cfg_file.read_text() != SMALL_TOML:
        cfg_file.write_text(SMALL_TOML)
    write(gen_dir, resolve(cfg_file))
    return [gen_dir / "pim_pkg.sv"], str(cfg_file)


@pytest.mark.sim
@pytest.mark.parametrize("plant", [0, 1])
def test_dpa_ctrl_sim(plant: int, tmp_path: Path) -> None:
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("dpa_ctrl bench runs on Verilator only")
    pkg, cfg = _small_pkg()
    sources = pkg + [simlib.RTL / "common" / "dpa_ram.sv", simlib.RTL / "dpa" / "dpa_ctrl.sv"]
    seed = os.environ.get("SEED")
    simlib.run(
        toplevel="dpa_ctrl",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase="run_planted_bug" if plant else None,
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_PLANT_BUG": str(plant)},
        seed=int(seed, 0) if seed else None,
    )


@pytest.mark.sim
def test_dpa_ctrl_default_sizes_sim(tmp_path: Path) -> None:
    """The committed package (64 requests x 1024 chunks, 32 channels): directed tests."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("dpa_ctrl bench runs on Verilator only")
    simlib.run(
        toplevel="dpa_ctrl",
        sources=simlib.rtl_sources("common/dpa_ram.sv", "dpa/dpa_ctrl.sv"),
        test_file=__file__,
        test_dir=tmp_path,
        testcase="run_directed_errors",
        extra_env={"PIMPHONY_CONFIG": "aim-gddr6"},
    )
