"""cocotb + pyuvm bench for ``rtl/sched/pim_sched.sv`` in lockstep with ``pymodel.sched``.

Interfaces and their pyuvm agents (one BFM owns the pins, see :class:`SchedBfm`):
* instruction stream - :class:`InstDriver` (random idle cycles) fed by :class:`ProgramSeq`, and an
  input monitor (what the DUT accepted, with the acceptance cycle);
* command bus - a monitor feeding :class:`scoreboards.cmd_sched.BusChannel` (the golden
  ``pymodel.channel.Channel`` as the memory: raises on any timing/state violation, computes data)
  whose RDMAC data goes back to the DUT through ``rd_valid_i/rd_data_i`` (random in-order latency);
* GPR - a Python GPR model answering the read port same-cycle and monitoring the write port.
The scoreboard component wraps :class:`SchedCycleScoreboard` (same commands at the same cycles as
``pymodel.sched.Scheduler.run(program, arrivals=<DUT acceptance cycles>)``; model cycle = bus
cycle - 1) and :class:`GprScoreboard` (bit-exact GPR results).

Cycle numbering: cycle 0 is the first clock cycle after reset. Inputs are driven just after the
rising edge and everything is sampled at the falling edge (same on Verilator and Icarus).
Seeds: env ``SEED`` or cocotb's RANDOM_SEED, logged; each scenario logs its own derived seed.
Config: env ``PIMPHONY_CONFIG`` (must match the DUT's pim_pkg).
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cocotb
import numpy as np
import pytest
import pyuvm
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from pyuvm import (
    ConfigDB,
    uvm_analysis_port,
    uvm_component,
    uvm_driver,
    uvm_env,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_subscriber,
    uvm_test,
)

from pymodel.bf16 import U16, random_bf16
from pymodel.config import PimConfig, resolve
from pymodel.isa import InstOp, Instruction, decode_inst, encode_inst
from pymodel.kernels import GemvKernel, QkKernel, SvKernel
from pymodel.sched import Mode
from scoreboards.cmd_sched import (
    BUS_OFFSET,
    MODE_CODE,
    BusChannel,
    GprScoreboard,
    SchedCycleScoreboard,
    SchedMismatch,
    int_to_lanes,
    lanes_to_int,
)

CLK_NS = 2



@dataclass
class Scenario:
    """One run: a program, its data and the expected GPR contents (None: from the reference)."""

    name: str
    program: list[Instruction]
    rows: dict[int, U16]
    gpr: dict[int, U16]
    expected: dict[int, U16] | None
    mode: Mode = Mode.DCS
    idle_prob: float = 0.0
    ret_lat: tuple[int, int] = (0, 3)
    seed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- BFM


class SchedBfm:
    """Owns the DUT pins. One coroutine per cycle: drive after the rising edge, sample at the
    falling edge, then answer the GPR read port and return RDMAC data."""

    def __init__(self, dut: Any, cfg: PimConfig) -> None:
        self.dut, self.cfg = dut, cfg
        self.lanes = cfg.geometry.lanes
        self.cycle = 0
        self.inst_q: deque[tuple[int, int]] = deque()  # (word, idle cycles before it)
        self.on_accept: Callable[[int, int], None] = lambda c, w: None
        self.on_cmd: Callable[[int, int, int], Any] = lambda c, w, d: None
        self.gpr_read: Callable[[int], int] = lambda a: 0
        self.on_gpr_write: Callable[[int, int], None] = lambda a, d: None
        self.returns: deque[tuple[int, int]] = deque()  # (cycle, data)
        self.rng = random.Random(0)
        self.ret_lat = (0, 3)
        self.stalls = 0
        self.error: BaseException | None = None
        self._task: Any = None

    async def reset(self) -> None:
        d = self.dut
        if self._task is not None:
            self._task.cancel()
            self._task = None
        d.rst_ni.value = 0
        d.inst_valid_i.value = 0
        d.inst_i.value = 0
        d.rd_valid_i.value = 0
        d.rd_data_i.value = 0
        d.gpr_rd_data_i.value = 0
        for _ in range(3):
            await RisingEdge(d.clk_i)
        d.rst_ni.value = 1
        self.cycle, self.stalls, self.error = 0, 0, None
        self.inst_q.clear()
        self.returns.clear()
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        d = self.dut
        cur: tuple[int, int] | None = None
        idle = 0
        while True:
            # ---- drive (start of cycle self.cycle)
            if cur is None and self.inst_q:
                cur = self.inst_q.popleft()
                idle = cur[1]
            valid = cur is not None and idle == 0
            if cur is not None and idle > 0:
                idle -= 1
            d.inst_valid_i.value = int(valid)
            if valid:
                assert cur is not None
                d.inst_i.value = cur[0]
            await FallingEdge(d.clk_i)
            # ---- sample
            try:
                if valid:
                    assert cur is not None
                    if int(d.inst_ready_o.value):
                        self.on_accept(self.cycle, cur[0])
                        cur = None
                    else:
                        self.stalls += 1
                if not int(d.cmd_valid_o.value):  # the bus is quiet between commands
                    quiet = (int(d.cmd_o.value), int(d.cmd_data_o.value))
                    assert quiet == (0, 0), (
                        f"cycle {self.cycle}: quiet rule broken: idle bus carries cmd "
                        f"{quiet[0]:#x} data {quiet[1]:#x} (cmd_valid_o = 0)"
                    )
                else:
                    word = int(d.cmd_o.value)
                    data = int(d.cmd_data_o.value)
                    rd = self.on_cmd(self.cycle - BUS_OFFSET, word, data)
                    if rd is not None:
                        at = self.cycle + self.rng.randint(*self.ret_lat)
                        if self.returns:
                            at = max(at, self.returns[-1][0] + 1)
                        self.returns.append((at, lanes_to_int(rd)))
                if int(d.gpr_wr_en_o.value):
                    self.on_gpr_write(int(d.gpr_wr_addr_o.value), int(d.gpr_wr_data_o.value))
                if int(d.gpr_rd_en_o.value):
                    d.gpr_rd_data_i.value = self.gpr_read(int(d.gpr_rd_addr_o.value))
                if self.returns and self.returns[0][0] <= self.cycle:
                    _, data = self.returns.popleft()
                    d.rd_valid_i.value = 1
                    d.rd_data_i.value = data
                else:
                    d.rd_valid_i.value = 0
            except BaseException as exc:  # noqa: B036 - recorded and re-raised by the test
                self.error = exc
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    @property
    def idle(self) -> bool:
        return not self.inst_q and not self.returns


# ------------------------------------------------------------------------------------- pyuvm


class InstItem(uvm_sequence_item):
    def __init__(self, name: str, inst: Instruction, idle: int) -> None:
        super().__init__(name)
        self.inst, self.idle = inst, idle


class ProgramSeq(uvm_sequence):
    """The program in order, with random idle cycles before each instruction."""

    def __init__(self, name: str, program: list[Instruction], idle_prob: float, seed: int):
        super().__init__(name)
        self.program, self.idle_prob, self.rng = program, idle_prob, random.Random(seed)

    async def body(self) -> None:
        for k, inst in enumerate(self.program):
            idle = 0
            if self.idle_prob and self.rng.random() < self.idle_prob:
                idle = self.rng.randint(1, 6)
            item = InstItem(f"i{k}", inst, idle)
            await self.start_item(item)
            await self.finish_item(item)


class InstDriver(uvm_driver):
    def start_of_simulation_phase(self) -> None:
        self.bfm: SchedBfm = ConfigDB().get(self, "", "BFM")

    async def run_phase(self) -> None:
        while True:
            item = await self.seq_item_port.get_next_item()
            while len(self.bfm.inst_q) >= 2:  # keep a short lookahead only
                await RisingEdge(self.bfm.dut.clk_i)
            self.bfm.inst_q.append((encode_inst(item.inst, self.bfm.cfg), item.idle))
            self.seq_item_port.item_done()


class InstMonitor(uvm_component):
    """Input monitor: (acceptance cycle, instruction) for every transfer."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: SchedBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_accept = lambda c, w: self.ap.write((c, decode_inst(w, bfm.cfg)))


class InstAgent(uvm_component):
    def build_phase(self) -> None:
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = InstDriver("driver", self)
        self.monitor = InstMonitor("monitor", self)

    def connect_phase(self) -> None:
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)


class BusAgent(uvm_component):
    """Command-bus monitor + the golden channel as the memory (RDMAC data back to the DUT)."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)
        self.memory: BusChannel | None = None

    def start_of_simulation_phase(self) -> None:
        bfm: SchedBfm = ConfigDB().get(self, "", "BFM")

        def on_cmd(cycle: int, word: int, data: int) -> U16 | None:
            assert self.memory is not None
            cmd, rd = self.memory.command(cycle, word, data)
            self.ap.write((cycle, cmd))
            return rd

        bfm.on_cmd = on_cmd


class GprAgent(uvm_component):
    """GPR model: same-cycle read port for WRGB/WR data, write-port monitor."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)
        self.mem: dict[int, U16] = {}

    def start_of_simulation_phase(self) -> None:
        bfm: SchedBfm = ConfigDB().get(self, "", "BFM")
        lanes = bfm.lanes

        def read(addr: int) -> int:
            v = self.mem.get(addr)
            return 0 if v is None else lanes_to_int(v)

        def write(addr: int, data: int) -> None:
            v = np.asarray(int_to_lanes(data, lanes), dtype=np.uint16)
            self.mem[addr] = v
            self.ap.write((addr, v))

        bfm.gpr_read, bfm.on_gpr_write = read, write


class _Export(uvm_subscriber):
    def __init__(self, name: str, parent: Any, fn: Callable[[Any], None]) -> None:
        super().__init__(name, parent)
        self.fn = fn

    def write(self, t: Any) -> None:
        self.fn(t)


class SchedScoreboard(uvm_component):
    """Wraps the plain-Python checkers of scoreboards.cmd_sched."""

    def build_phase(self) -> None:
        self.acc_export = _Export("acc", self, lambda t: self.cycle_sb.accept(*t))
        self.cmd_export = _Export("cmd", self, lambda t: self.cycle_sb.observe(*t))
        self.gpr_export = _Export("gpr", self, lambda t: self.gpr_writes.append(t))
        self.cycle_sb: SchedCycleScoreboard | None = None
        self.gpr_writes: list[tuple[int, U16]] = []

    def start(self, cfg: PimConfig, sc: Scenario) -> None:
        self.cycle_sb = SchedCycleScoreboard(cfg, sc.mode, dict(sc.rows), dict(sc.gpr))
        self.gpr_writes = []

    def check(self, sc: Scenario) -> tuple[SchedCycleScoreboard, GprScoreboard]:
        assert self.cycle_sb is not None
        res = self.cycle_sb.check()
        expected = sc.expected
        if expected is None:  # random programs: the reference's results
            reads = (InstOp.RD_OUT, InstOp.RD_MAC)
            outs = {i.gpr + k for i in sc.program if i.op in reads for k in range(i.op_size)}
            expected = {a: v for a, v in res.gpr.items() if a in outs}
        gsb = GprScoreboard(expected)
        for addr, v in self.gpr_writes:
            gsb.write(addr, v)
        gsb.check()
        return self.cycle_sb, gsb


class SchedEnv(uvm_env):
    def build_phase(self) -> None:
        self.inst = InstAgent("inst", self)
        self.bus = BusAgent("bus", self)
        self.gpr = GprAgent("gpr", self)
        self.sb = SchedScoreboard("sb", self)

    def connect_phase(self) -> None:
        self.inst.monitor.ap.connect(self.sb.acc_export.analysis_export)
        self.bus.ap.connect(self.sb.cmd_export.analysis_export)
        self.gpr.ap.connect(self.sb.gpr_export.analysis_export)


class SchedTest(uvm_test):
    """Base: subclasses list scenarios; each runs after a reset and ends with drain checks."""

    def build_phase(self) -> None:
        self.dut = cocotb.top
        self.cfg: PimConfig = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
        self.seed = bench_seed()
        self.bfm = SchedBfm(self.dut, self.cfg)
        ConfigDB().set(None, "*", "BFM", self.bfm)
        self.env = SchedEnv("env", self)
        self.results: list[Scenario] = []

    def scenarios(self) -> list[Scenario]:
        raise NotImplementedError

    async def run_phase(self) -> None:
        self.raise_objection()
        log = self.dut._log
        log.info("config %s, seed %d (rerun with SEED=%d)", self.cfg.name, self.seed, self.seed)
        Clock(self.dut.clk_i, CLK_NS, unit="ns").start()
        for sc in self.scenarios():
            await self.run_scenario(sc)
        self.bfm.stop()
        out = os.environ.get("SCHED_RESULTS")
        if out:  # make bench: the RTL's cycles next to the reference's
            rows = [{"name": sc.name, "schedule": sc.mode.value, **sc.stats} for sc in self.results]
            Path(out).write_text(json.dumps(rows, indent=1))
        self.drop_objection()

    async def run_scenario(self, sc: Scenario, expect_fail: bool = False) -> None:
        log = self.dut._log
        env, bfm = self.env, self.bfm
        self.dut.mode_i.value = MODE_CODE[sc.mode]
        env.bus.memory = BusChannel(self.cfg, sc.rows)
        env.gpr.mem = {a: np.asarray(v, dtype=np.uint16) for a, v in sc.gpr.items()}
        env.sb.start(self.cfg, sc)
        bfm.rng, bfm.ret_lat = random.Random(sc.seed), sc.ret_lat
        await bfm.reset()
        seq = ProgramSeq("seq", sc.program, sc.idle_prob, sc.seed)
        seq_task = cocotb.start_soon(seq.start(env.inst.seqr))
        budget = (
            20 * sum(i.op_size for i in sc.program)
            + 400 * len(sc.program)
            + 3 * self.cfg.timing.nREFI
        )
        n = 0
        while bfm.error is None and (
            not bfm.idle
            or int(self.dut.busy_o.value)
            or len(env.sb.cycle_sb.program) < len(sc.program)
        ):
            await RisingEdge(self.dut.clk_i)
            n += 1
            if n > budget:
                break
        for _ in range(4):  # the last decided command reaches the bus
            await RisingEdge(self.dut.clk_i)
        await Timer(1, unit="ns")
        if bfm.error is not None:
            raise bfm.error
        if n > budget:  # name the first difference from the reference if there is one
            seq_task.cancel()
            try:
                env.sb.cycle_sb.check()
            except SchedMismatch as exc:
                raise SchedMismatch(f"{sc.name}: DUT hung; {exc}") from None
            raise AssertionError(f"{sc.name}: DUT did not drain within {budget} cycles")
        # ---- drain checks
        assert len(env.sb.cycle_sb.program) == len(sc.program), "not every instruction accepted"
        assert not int(self.dut.busy_o.value), f"{sc.name}: DUT still busy"
        assert not int(self.dut.err_o.value), f"{sc.name}: DUT flagged an error"
        assert not bfm.returns, f"{sc.name}: RDMAC data still pending"
        csb, gsb = env.sb.check(sc)
        res = csb.result
        assert res is not None
        sc.stats = {
            "cycles": res.stats.cycles,
            "first_accept": res.accepted[0] if res.accepted else 0,
            "commands": len(res.trace),
            "stalls": bfm.stalls,
            "refs": env.bus.memory.counts.get("REF", 0),
            "binding": dict(env.bus.memory.binding),
        }
        log.info(
            "%s [%s, seed %d, idle %.1f]: %s; %d GPR entries bit-exact; %d input stalls; REF %d",
            sc.name,
            sc.mode.value,
            sc.seed,
            sc.idle_prob,
            csb.summary(),
            len(gsb.expected),
            bfm.stalls,
            sc.stats["refs"],
        )
        self.results.append(sc)


# ------------------------------------------------------------------------------------- scenarios


def kernel_scenario(kern: Any, mode: Mode, seed: int, idle: float, name: str) -> Scenario:
    d = kern.data(np.random.default_rng(seed))
    return Scenario(name, kern.program(), d.rows, d.gpr, d.expected, mode, idle, seed=seed)


def _rand_rows(cfg: PimConfig, rng: np.random.Generator, rows: list[int]) -> dict[int, U16]:
    g = cfg.geometry
    return {r: random_bf16(rng, (g.banks, g.columns_per_row, g.lanes)) for r in rows}


def random_program(cfg: PimConfig, seed: int, n: int = 50) -> tuple[list[Instruction], dict, dict]:
    """A random legal instruction stream over a few rows, GB/OBuf entries and GPR entries."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    g, b = cfg.geometry, cfg.buffers
    rows = rng.sample(range(8), 3)
    gpr_in = {a: random_bf16(nrng, (g.lanes,)) for a in range(64)}
    prog: list[Instruction] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:
            sz = rng.randint(1, 8)
            prog.append(
                Instruction(
                    InstOp.WR_INP,
                    ch_mask=1,
                    op_size=sz,
                    gpr=rng.randint(0, 64 - sz),
                    gb=rng.randint(0, b.gb_entries - sz),
                )
            )
        elif kind < 0.7:
            sz = rng.randint(1, 8)
            prog.append(
                Instruction(
                    InstOp.MAC,
                    ch_mask=1,
                    op_size=sz,
                    gb=rng.randint(0, b.gb_entries - sz),
                    row=rng.choice(rows),
                    col=rng.randint(0, g.columns_per_row - sz),
                    out=rng.randrange(b.obuf_entries),
                )
            )
        elif kind < 0.92:
            sz = rng.randint(1, b.obuf_entries)
            op = rng.choice([InstOp.RD_OUT, InstOp.RD_MAC, InstOp.WR_BIAS])
            base = 0 if op is InstOp.WR_BIAS else 64  # biases read inputs, read-outs write 64+
            prog.append(
                Instruction(
                    op,
                    ch_mask=1,
                    op_size=sz,
                    gpr=base + rng.randint(0, 64 - sz),
                    out=rng.randint(0, b.obuf_entries - sz),
                )
            )
        else:
            sz = rng.randint(1, 4)
            prog.append(
                Instruction(
                    InstOp.WR_BANK,
                    ch_mask=1,
                    op_size=sz,
                    gpr=rng.randint(0, 64 - sz),
                    bank=rng.randrange(g.banks),
                    row=rng.choice(rows),
                    col=rng.randint(0, g.columns_per_row - sz),
                )
            )
    prog.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=b.obuf_entries, gpr=200, out=0))
    return prog, _rand_rows(cfg, nrng, rows), gpr_in


def directed_programs(cfg: PimConfig) -> dict[str, list[Instruction]]:
    """Each dependency kind and the row / bus / mode-switch timing rules."""
    b = cfg.buffers
    n = min(8, b.gb_entries)

    def wr(gb: int, sz: int = n, gpr: int = 0) -> Instruction:
        return Instruction(InstOp.WR_INP, ch_mask=1, op_size=sz, gpr=gpr, gb=gb)

    def mac(gb: int, row: int, out: int, sz: int = n, col: int = 0) -> Instruction:
        return Instruction(InstOp.MAC, ch_mask=1, op_size=sz, gb=gb, row=row, col=col, out=out)

    def rd(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.RD_OUT, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def bias(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.WR_BIAS, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def rdm(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.RD_MAC, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def wrb(bank: int, row: int, col: int, sz: int = 2) -> Instruction:
        return Instruction(
            InstOp.WR_BANK, ch_mask=1, op_size=sz, gpr=0, bank=bank, row=row, col=col
        )

    o = min(1, b.obuf_entries - 1)
    return {
        # RAW on the GB: WRGB -> MAC of the same entries (gb:WRGB->MAC16), row already open
        "wrgb_to_mac": [
            mac(0, 1, 0, 1),
            wr(0),
            mac(0, 1, 0),
            wr(5, 1, gpr=3),
            mac(5, 1, 0, 1, col=9),
            rd(0, 100),
        ],
        # WAR on the GB: a younger WR_INP may not overwrite entries an older MAC still reads
        "mac_to_wrgb": [wr(0), mac(0, 1, 0), wr(0, gpr=16), mac(0, 1, o, col=8), rd(0, 100, 2)],
        # RAW on the OBuf: RDMAC after the MACs into that entry (out:MAC16->RDMAC)
        "mac_to_rdmac": [wr(0), mac(0, 2, o), rd(o, 100), mac(0, 2, 0, col=16), rd(0, 101)],
        # WAR on the OBuf: a younger MAC waits for RDMAC/CLRMAC (out:RDMAC->CLRMAC)
        "rdmac_to_mac": [wr(0), mac(0, 3, 0), rd(0, 100), mac(0, 3, 0, col=8), rd(0, 101)],
        # rows: ACT16/PREA/ACT16 (nRCD_MAC, nRAS, nRTP, nRP, nRC), single-bank WR (nMODCH,
        # nRCD_WR, nWR, nCCDL_WR via two banks of a group), FAW via ACT after ACT16
        "rows_and_modes": [
            wr(0),
            mac(0, 4, 0, 2),
            mac(0, 5, 0, 2),
            mac(0, 4, 0, 2),
            wrb(3, 6, 0),
            wrb(3, 6, 2),
            wrb(7, 5, 0),
            mac(0, 6, 0, 2),
            rd(0, 100),
            wrb(0, 6, 4),
            mac(0, 6, o, 4),
            rd(o, 101),
        ],
        # AiM I/O: WR_BIAS per output, RD_MAC; register-mode turnarounds WRGB <-> RDMAC,
        # WRBIAS <-> RDMAC, back-to-back WRBIAS; WRBIAS -> MAC of its entry; TMOD on each switch
        "aim_io": [
            bias(0, 1),
            wr(0),
            mac(0, 1, 0),
            rdm(0, 100),
            wr(8, 4, 8),
            rdm(0, 101),
            bias(0, 2, 2),
            rdm(1, 102),
            bias(1, 3),
            mac(0, 1, 1, 4),
            mac(0, 1, 0, 4, col=8),
            rdm(0, 103, 2),
        ],
        # the data bus: WRGB <-> RDMAC turnarounds, back-to-back RDMACs
        "bus_turnaround": [
            wr(0),
            mac(0, 1, 0),
            mac(0, 1, o, col=8),
            rd(0, 100),
            wr(8, 4, 8),
            rd(o, 101),
            wr(16, 4),
            mac(16, 1, 0, 4),
            rd(0, 102, 1),
        ],
    }


def directed_need(policy: str) -> set[str]:
    """Timing rules the directed programs must bind (ties count) under each mode policy.

    nRAS and nRC are always dominated on aim-gddr6 (nRCD_MAC + nRTP > nRAS, nRP after that >
    nRC); they are checked on every ACT/PREA by the bus channel but never bind. Under
    "aim-register" a TMOD (nMODCH) separates every register command from every MAC/row command,
    so the rules between those classes bind only under the other policies."""
    common = {
        "nRCD_MAC", "nRP", "nRTP", "nCCDL_MAC", "nRCD_WR", "out:RDMAC->CLRMAC",
        "bus:WRGB->RDMAC", "bus:RDMAC->WRGB", "bus:WRBIAS->RDMAC", "bus:RDMAC->WRBIAS",
        "nCCDS_WR", "nCCDL_BIAS",
    }
    if policy == "aim-register":
        return common | {"nMODCH", "nWR"}
    if policy == "pim-normal":  # WR -> PREA crosses modes: the TMOD hides nWR
        return common | {"nMODCH", "gb:WRGB->MAC16", "out:WRBIAS->MAC16"}
    return common | {"nWR", "gb:WRGB->MAC16", "out:WRBIAS->MAC16", "nCCDS_RD"}


def _directed_data(cfg: PimConfig, seed: int) -> tuple[dict, dict]:
    nrng = np.random.default_rng(seed)
    g = cfg.geometry
    return (
        _rand_rows(cfg, nrng, list(range(8))),
        {a: random_bf16(nrng, (g.lanes,)) for a in range(64)},
    )


# ------------------------------------------------------------------------------------- tests

MODES = (Mode.DCS, Mode.STATIC, Mode.PINGPONG)


def _mode_env() -> list[Mode]:
    return [Mode(m) for m in os.environ.get("SCHED_MODES", "dcs,static,pingpong").split(",") if m]


@pyuvm.test()
class run_kernels(SchedTest):  # noqa: N801 - cocotb test naming (run_*)
    """GEMV, QK^T (GQA 1 and 4) and SV at several sizes, bit-exact, lockstep, per mode."""

    def scenarios(self) -> list[Scenario]:
        cfg, out = self.cfg, []
        big = os.environ.get("SCHED_BIG", "1") == "1"
        for mi, mode in enumerate(_mode_env()):
            kerns: list[tuple[str, Any]] = [
                ("gemv128", GemvKernel(128, 128, cfg)),
                ("gemv128_clear", GemvKernel(128, 128, cfg, acc_init="clear")),
                ("gemv32x2048", GemvKernel(32, 2048, cfg)),
                ("qk300_g1", QkKernel(300, cfg, group=1)),
                ("qk512_g4", QkKernel(512, cfg, group=4)),
                ("qk512_g4_clear", QkKernel(512, cfg, group=4, acc_init="clear")),
                ("sv300", SvKernel(300, cfg)),
                ("sv512_obuf4", SvKernel(512, cfg, obuf=4)),
            ]
            if mode is Mode.PINGPONG:  # the ping-pong kernels: alternating buffer halves
                kerns += [
                    ("gemv128_halves", GemvKernel(128, 1024, cfg, halves=True)),
                    ("qk512_g2_halves", QkKernel(512, cfg, group=2, halves=True)),
                    ("sv1024_halves", SvKernel(1024, cfg, halves=True)),
                ]
            if big:
                kerns += [
                    ("gemv1024", GemvKernel(1024, 1024, cfg)),
                    ("qk4096_g1", QkKernel(4096, cfg, group=1)),
                    ("sv4096", SvKernel(4096, cfg)),
                ]
            for j, (name, k) in enumerate(kerns):
                idle = 0.3 if (j + mi) % 2 else 0.0
                out.append(kernel_scenario(k, mode, self.seed + 17 * j + mi, idle, name))
        return out


@pyuvm.test()
class run_bench(SchedTest):  # noqa: N801
    """The `make bench` kernels the RTL runs (pymodel.kernel_study shapes, STATIC with one
    accumulator), in lockstep; with SCHED_RESULTS the cycles are written for the bench table."""

    def scenarios(self) -> list[Scenario]:
        from pymodel.kernel_study import RTL_BENCH, build_kernel

        out = []
        for op, shape in RTL_BENCH:
            for mode in Mode:
                name = f"{op}-{shape.get('dim', shape.get('tokens'))}"
                out.append(kernel_scenario(build_kernel(op, self.cfg, mode, **shape), mode,
                                           self.seed, 0.0, name))
        return out


@pyuvm.test()
class run_directed(SchedTest):  # noqa: N801
    """Each dependency kind, row/mode/bus timing rules; all modes; binding-rule coverage."""

    def scenarios(self) -> list[Scenario]:
        out = []
        for mode in MODES:
            for j, (name, prog) in enumerate(directed_programs(self.cfg).items()):
                rows, gpr = _directed_data(self.cfg, self.seed + j)
                out.append(Scenario(name, prog, rows, gpr, None, mode, 0.0, seed=self.seed + j))
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        covered: set[str] = set()
        for sc in self.results:
            covered |= set(sc.stats["binding"])
        need = directed_need(self.cfg.timing.mode_switch)
        self.dut._log.info("binding timing rules seen: %s", sorted(covered))
        missing = need - covered
        assert not missing, f"timing rules never binding in the directed tests: {sorted(missing)}"


@pyuvm.test()
class run_random(SchedTest):  # noqa: N801
    """Constrained-random instruction streams, many seeds, all modes, idle on/off."""

    def scenarios(self) -> list[Scenario]:
        out = []
        n_seeds = int(os.environ.get("SCHED_SEEDS", "8"))
        for s in range(n_seeds):
            seed = self.seed * 1000 + s
            prog, rows, gpr = random_program(self.cfg, seed)
            mode = MODES[s % 3]
            out.append(
                Scenario(
                    f"random{s}", prog, rows, gpr, None, mode, 0.3 if s % 2 else 0.0, (0, 4), seed
                )
            )
        return out


@pyuvm.test()
class run_refresh_and_full(SchedTest):  # noqa: N801
    """(small-nREFI config) refresh colliding with MAC bursts; full queues (input stalls)."""

    def scenarios(self) -> list[Scenario]:
        cfg, out = self.cfg, []
        for mi, mode in enumerate(MODES):
            out.append(
                kernel_scenario(
                    GemvKernel(256, 256, cfg), mode, self.seed + mi, 0.0, "gemv256_refresh"
                )
            )
            out.append(
                kernel_scenario(
                    QkKernel(512, cfg, group=4), mode, self.seed + mi, 0.2, "qk512_g4_refresh"
                )
            )
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        refs = sum(sc.stats["refs"] for sc in self.results)
        stalls = sum(sc.stats["stalls"] for sc in self.results)
        assert refs > 0, "no REF issued"
        assert stalls > 0, "queues never filled (no input stall)"
        assert any("nRFC" in sc.stats["binding"] for sc in self.results), "nRFC never binding"


@pyuvm.test()
class run_faw(SchedTest):  # noqa: N801
    """(config with nFAW > nRAS + nRP) kernels that switch rows often: the nFAW window binds."""

    def scenarios(self) -> list[Scenario]:
        out = []
        # one MAC per row, rows alternating: an ACT16 every row cycle (nRC = 89 < nFAW)
        prog = [Instruction(InstOp.WR_INP, ch_mask=1, op_size=2, gpr=0, gb=0)]
        for i, row in enumerate((0, 1, 2, 0, 3, 1)):
            prog.append(
                Instruction(InstOp.MAC, ch_mask=1, op_size=2, gb=0, row=row, col=2 * i, out=i % 2)
            )
        prog.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=2, gpr=100, out=0))
        for mi, mode in enumerate(MODES):
            rows, gpr = _directed_data(self.cfg, self.seed + mi)
            out.append(Scenario("faw_rows", prog, rows, gpr, None, mode, 0.0, seed=self.seed))
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        assert any("nFAW" in sc.stats["binding"] for sc in self.results), "nFAW never binding"


@pyuvm.test()
class run_planted_bug(SchedTest):  # noqa: N801
    """DUT built with PlantBug=1 (dependency check ignores GB entries) or 2 (TMOD does not flip
    the mode register), or (PLANT=3) from the single-ported OBuf package while the reference
    has a dual-ported OBuf: must be caught by the cycle scoreboard; PlantBug=4 (the GPR read
    without an issue) by the bus monitor's quiet-bus check."""

    def scenarios(self) -> list[Scenario]:
        # PlantBug=1 needs the dependency check (DCS); 2 shows in any mode: STATIC's in-order
        # TMOD sequence; 3: RD_OUT between MACs, which a single-ported OBuf brackets by TMODs.
        plant = os.environ.get("PLANT", "1")
        if plant == "3":
            kern = QkKernel(512, self.cfg, group=4, acc_init="clear")
            return [kernel_scenario(kern, Mode.DCS, self.seed, 0.0, "bug")]
        mode = Mode.DCS if plant == "1" else Mode.STATIC  # 4: any mode with write data
        return [kernel_scenario(GemvKernel(32, 2048, self.cfg), mode, self.seed, 0.0, "bug")]

    async def run_phase(self) -> None:
        self.raise_objection()
        Clock(self.dut.clk_i, CLK_NS, unit="ns").start()
        sc = self.scenarios()[0]
        caught: BaseException | None = None
        try:
            await self.run_scenario(sc)
        except (SchedMismatch, AssertionError) as exc:
            caught = exc
        except Exception as exc:  # the golden channel's TimingViolation, IllegalCommand, ...
            caught = exc
        # The bench samples the bus at the falling edge, the RTL assertions at the next rising
        # edge: keep clocking so that a planted bug's assertion (if any) gets to fire.
        for _ in range(8):
            await RisingEdge(self.dut.clk_i)
        self.bfm.stop()
        if os.environ.get("PLANT") == "4":  # the GPR read without an issue: data on a quiet bus
            assert isinstance(caught, AssertionError) and "quiet" in str(caught), (
                f"planted bug not caught by the bus monitor's quiet check: {caught!r}"
            )
        else:
            assert isinstance(caught, SchedMismatch), (
                f"planted bug not caught by the cycle SB: {caught!r}"
            )
        self.dut._log.info("planted bug caught as expected: %s", caught)
        self.drop_objection()


# ------------------------------------------------------------------------------------- pytest

#: Extra configs generated on the fly (like tb/cmd_decoder): small nREFI and shallow queues.
SIM_CONFIGS: dict[str, str | None] = {
    "aim-gddr6": None,
    "stress": (
        'preset = "aim-gddr6"\nname = "stress"\n\n'
        "[timing]\nnREFI = 600\n\n[buffers]\nqueue_depth = 3\n"
    ),
    "pim-normal": (
        'preset = "aim-gddr6"\nname = "pim-normal"\n\n[timing]\nmode_switch = "pim-normal"\n'
    ),
    "no-mode": 'preset = "aim-gddr6"\nname = "no-mode"\n\n[timing]\nmode_switch = "none"\n',
    "dual-port": 'preset = "aim-gddr6"\nname = "dual-port"\n\n[buffers]\nobuf_dual_port = true\n',
    # nFAW above nRAS + nRP (86): with one open row at a time the window binds between ACT16s
    "faw": 'preset = "aim-gddr6"\nname = "faw"\n\n[timing]\nnFAW = 200\n',
}

RUNS = [
    # (id, config, cocotb test, PlantBug, extra env)
    ("kernels-dcs", "aim-gddr6", "run_kernels", 0, {"SCHED_MODES": "dcs"}),
    ("kernels-static", "aim-gddr6", "run_kernels", 0, {"SCHED_MODES": "static", "SCHED_BIG": "0"}),
    (
        "kernels-pingpong",
        "aim-gddr6",
        "run_kernels",
        0,
        {"SCHED_MODES": "pingpong", "SCHED_BIG": "0"},
    ),
    ("directed", "aim-gddr6", "run_directed", 0, {}),
    ("directed-pim-normal", "pim-normal", "run_directed", 0, {}),
    ("directed-no-mode", "no-mode", "run_directed", 0, {}),
    ("random", "aim-gddr6", "run_random", 0, {"SCHED_SEEDS": "30"}),
    ("refresh-full", "stress", "run_refresh_and_full", 0, {}),
    ("faw", "faw", "run_faw", 0, {}),
    ("planted-bug", "aim-gddr6", "run_planted_bug", 1, {"PLANT": "1"}),
    ("planted-mode-bug", "aim-gddr6", "run_planted_bug", 2, {"PLANT": "2"}),
    # the GPR read without an issue (the scheduler header: cmd_data_o is 0 on an idle bus)
    ("planted-quiet-bug", "aim-gddr6", "run_planted_bug", 4, {"PLANT": "4"}),
    # dual-ported OBuf (buffers.obuf_dual_port): read-outs need no TMOD, no column spacing
    ("kernels-dual-port", "dual-port", "run_kernels", 0, {"SCHED_MODES": "dcs", "SCHED_BIG": "0"}),
    ("random-dual-port", "dual-port", "run_random", 0, {"SCHED_SEEDS": "10"}),
    # the DUT from the single-ported package, the reference dual-ported: must mismatch
    ("planted-dual-port-bug", "dual-port", "run_planted_bug", 0, {"PLANT": "3"}),
]
#: Runs whose DUT is built from another config's package than the reference runs (planted).
DUT_CONFIG = {"planted-dual-port-bug": "aim-gddr6"}


def _config_sources(config: str) -> tuple[list[Path], str]:
    import simlib

    top = [
        "common/since_counter.sv",
        "common/peek_fifo.sv",
        "sched/sched_intake.sv",
        "sched/sched_cmd_gen.sv",
        "sched/sched_dep_check.sv",
        "sched/sched_timing.sv",
        "sched/sched_timing_check.sv",
        "sched/sched_refresh.sv",
        "sched/sched_issue.sv",
        "sched/pim_sched.sv",
    ]
    pkg, spec = simlib.config_package(config, SIM_CONFIGS[config])
    return pkg + [simlib.RTL / t for t in top], spec


#: Planted bugs each assertion family of rtl/sched must catch: (PlantBug, config, labels).
# (a_timing_safe's planted bug, PlantBug=3, is the formal proof's: formal/proofs.toml)
ASSERTION_BUGS = [
    (2, "aim-gddr6", {"a_tmod_needed"}),  # the mode register never flips
    (4, "aim-gddr6", {"a_gpr_read_for_data", "a_quiet_bus"}),  # GPR read without an issue
    (5, "aim-gddr6", {"a_quiet_bus"}),  # data on an idle bus
]


@pytest.mark.sim
@pytest.mark.parametrize(
    "plant, config, labels", ASSERTION_BUGS, ids=[f"bug{b[0]}" for b in ASSERTION_BUGS]
)
def test_cmd_sched_assertion_sim(
    plant: int, config: str, labels: set[str], tmp_path: Path, capfd: Any
) -> None:
    import simlib

    sources, cfg_spec = _config_sources(config)
    simlib.expect_assertion(
        capfd,
        labels,
        toplevel="pim_sched",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase="run_planted_bug",
        extra_env={"PIMPHONY_CONFIG": cfg_spec, "PLANT": "1" if plant == 3 else "2"},
    )


@pytest.mark.sim
@pytest.mark.parametrize("run_id, config, testcase, plant, env", RUNS, ids=[r[0] for r in RUNS])
def test_cmd_sched_sim(
    run_id: str, config: str, testcase: str, plant: int, env: dict[str, str], tmp_path: Path
) -> None:
    import simlib

    if simlib.SIM != "verilator":  # README "Simulators": int unsigned params, package structs
        pytest.skip("pim_sched needs Verilator (Icarus 11 rejects its package structs)")
    sources, cfg_spec = _config_sources(config)
    if run_id in DUT_CONFIG:
        sources = _config_sources(DUT_CONFIG[run_id])[0]
    simlib.run(
        toplevel="pim_sched",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant} if plant else {},
        testcase=testcase,
        extra_env={"PIMPHONY_CONFIG": cfg_spec, **env},
        assertions=not plant,  # a planted bug here is the scoreboard's to catch, not an assertion
    )
