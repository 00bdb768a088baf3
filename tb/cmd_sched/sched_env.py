"""The environment of the cocotb + pyuvm bench for ``rtl/sched/pim_sched.sv`` (lockstep with
``pymodel.golden.sched``).

Interfaces and their pyuvm agents (one BFM owns the pins, see :class:`SchedBfm`):
* instruction stream - :class:`InstDriver` (random idle cycles) fed by :class:`ProgramSeq`, and an
  input monitor (what the DUT accepted, with the acceptance cycle);
* command bus - a monitor feeding :class:`scoreboards.cmd_sched.BusChannel` (the golden
  ``pymodel.golden.channel.Channel`` as the memory: raises on any timing/state violation, computes
  data) whose RDMAC data goes back to the DUT through ``rd_valid_i/rd_data_i`` (random in-order
  latency);
* GPR - a Python GPR model answering the read port same-cycle and monitoring the write port.
The scoreboard component wraps :class:`SchedCycleScoreboard` (same commands at the same cycles as
``pymodel.golden.sched.Scheduler.run(program, arrivals=<DUT acceptance cycles>)``; model cycle = bus
cycle - 1) and :class:`GprScoreboard` (bit-exact GPR results).

Cycle numbering: cycle 0 is the first clock cycle after reset. Inputs are driven just after the
rising edge and everything is sampled at the falling edge (same on Verilator and Icarus).
Seeds: env ``SEED`` or cocotb's RANDOM_SEED, logged; each scenario logs its own derived seed.
Config: env ``PIMPHONY_CONFIG`` (must match the DUT's pim_pkg).

The tests are in ``test_cmd_sched.py``, their programs in ``sched_stimulus.py``; functional
coverage (``sched_coverage.py``) is sampled in every run, ``make coverage`` exports it (env
``PIMPHONY_COVERAGE``).
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
import sched_coverage
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from pyuvm import (
    ConfigDB,
    uvm_analysis_port,
    uvm_component,
    uvm_env,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_subscriber,
    uvm_test,
)
from sched_coverage import SchedCoverage
from stream import StreamDriver, StreamMonitor, StreamPort, StreamSeqDriver

from pymodel.config import PimConfig, resolve
from pymodel.golden.bf16 import U16
from pymodel.golden.sched import MODE_CODE, Mode
from pymodel.isa import InstOp, Instruction, decode_inst, encode_inst
from scoreboards.cmd_sched import (
    BUS_OFFSET,
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
        self.inst = StreamDriver(StreamPort("inst", dut.inst_valid_i, dut.inst_i, dut.inst_ready_o))
        # the command bus: no backpressure, quiet while idle (no word, no data without valid)
        self.bus = StreamMonitor(
            StreamPort("cmd", dut.cmd_valid_o, [dut.cmd_o, dut.cmd_data_o]), quiet=True
        )
        self.on_accept: Callable[[int, int], None] = lambda c, w: None
        self.on_cmd: Callable[[int, int, int], Any] = lambda c, w, d: None
        self.gpr_read: Callable[[int], int] = lambda a: 0
        self.on_gpr_write: Callable[[int, int], None] = lambda a, d: None
        # every cycle (coverage): the queues' full and empty flags, the word held at the input
        self.on_cycle: Callable[[int, int, int | None], None] = lambda f, e, w: None
        self.returns: deque[tuple[int, int]] = deque()  # (cycle, data)
        self.rng = random.Random(0)
        self.ret_lat = (0, 3)
        self.error: BaseException | None = None
        self._task: Any = None

    @property
    def stalls(self) -> int:
        """Cycles an offered instruction waited (queue full) since the last reset."""
        return self.inst.monitor.stalls

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
        self.cycle, self.error = 0, None
        self.inst.flush()
        self.bus.reset()
        self.inst.monitor.stalls = 0
        self.returns.clear()
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        d = self.dut
        while True:
            self.inst.drive()  # ---- drive (start of cycle self.cycle)
            await FallingEdge(d.clk_i)
            try:  # ---- sample
                # read data still owed to the DUT (its return FIFO holds the RDMACs): busy_o
                assert not self.returns or int(d.busy_o.value), (
                    f"cycle {self.cycle}: busy_o low with {len(self.returns)} RDMAC read(s) "
                    "outstanding"
                )
                word = self.inst.sample(self.cycle)
                if word is not None:
                    self.on_accept(self.cycle, word)
                cmd = self.bus.sample(self.cycle)
                if cmd is not None:
                    rd = self.on_cmd(self.cycle - BUS_OFFSET, *cmd)
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
                self.on_cycle(int(d.full.value), int(d.empty.value), self.inst.monitor.pending)
            except BaseException as exc:  # noqa: B036 - recorded and re-raised by the test
                self.error = exc
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    @property
    def idle(self) -> bool:
        return not self.inst.busy and not self.returns


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


class InstDriver(StreamSeqDriver):
    """Each program instruction, encoded, to the BFM's instruction stream."""

    def start_of_simulation_phase(self) -> None:
        super().start_of_simulation_phase()
        self.cfg: PimConfig = ConfigDB().get(self, "", "BFM").cfg

    def payload(self, item: Any) -> int:
        return encode_inst(item.inst, self.cfg)


class InstMonitor(uvm_component):
    """Input monitor: (acceptance cycle, instruction) for every transfer."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)
        self.cov: SchedCoverage | None = None

    def start_of_simulation_phase(self) -> None:
        bfm: SchedBfm = ConfigDB().get(self, "", "BFM")

        def on_accept(cycle: int, word: int) -> None:
            inst = decode_inst(word, bfm.cfg)
            self.ap.write((cycle, inst))
            if self.cov is not None:
                self.cov.inst(inst)

        bfm.on_accept = on_accept


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
        self.cov: SchedCoverage | None = None

    def start_of_simulation_phase(self) -> None:
        bfm: SchedBfm = ConfigDB().get(self, "", "BFM")

        def on_cmd(cycle: int, word: int, data: int) -> U16 | None:
            assert self.memory is not None
            cmd, rd = self.memory.command(cycle, word, data)
            self.ap.write((cycle, cmd))
            if self.cov is not None:
                self.cov.command(cmd, self.memory.last_binding)
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
        ConfigDB().set(None, "*", "STREAM", self.bfm.inst)
        ConfigDB().set(None, "*", "CLK", self.dut.clk_i)
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
        if os.environ.get("PIMPHONY_COVERAGE"):  # make coverage: bins so far (all scenarios)
            sched_coverage.export(os.environ["PIMPHONY_COVERAGE"])
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
        cov = SchedCoverage(sc.mode)
        env.bus.cov = env.inst.monitor.cov = cov
        bfm.on_cycle = cov.cycle
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
