"""cocotb + pyuvm bench for ``rtl/dpa/dpa_ctrl.sv`` against ``pymodel.dpa`` (``scoreboards.dpa``).

Interfaces and their pyuvm components (one BFM, :class:`DpaBfm`, owns the pins):
* host agent (:class:`HostAgent`): :class:`HostSeq` -> sequencer -> :class:`HostDriver` (random
  idle cycles before a command); :class:`HostMonitor` publishes every command the DUT accepted
  (input), every response delivered (output) and the free-chunk count whenever the DUT is idle;
* instruction agent (:class:`InstAgent`): :class:`InstSeq` -> sequencer -> :class:`InstDriver`;
  :class:`InstMonitor` publishes every word accepted (and whether a host command was waiting);
* output monitor (:class:`OutMonitor`): every physical word delivered (checking that a stalled word
  stays valid and stable) and every instruction-path error pulse;
* :class:`DpaSbComponent` (a ``uvm_scoreboard``) wraps :class:`scoreboards.dpa.DpaScoreboard`:
  the reference executes what the input monitors saw (its invariants are checked after every host
  command), the outputs are compared per transaction in order, the DUT's free-chunk count while
  idle, a one-to-one ownership map of the translations the DUT answers, and a spec rule: an
  instruction is never taken over a waiting host command unless it is a loop-body word.
Output backpressure (``out_ready_i``/``resp_ready_i`` random) and input idle cycles are switched
on and off per batch.

cocotb tests (pyuvm tests, ``run_*``):
- ``run_directed_errors``: every host error code and every instruction-path error, each asserted
  by count as well as by the scoreboard; templates (QK^T, SV, KV write) over a grown request.
- ``run_churn``: >= 10,000 random OPEN/GROW/CLOSE commands (env ``DPA_CHURN``; TRANSLATEs come on
  top) mixed with random DYN_LOOP programs and bursts of plain words.
- ``run_reset_mid_traffic``: reset while commands and loops are in flight (three times), then
  traffic against a fresh reference.
- ``run_passthrough_rate``: a back-to-back stream of N plain words takes N cycles from the first
  acceptance to the last output (one per cycle); then with backpressure, a host command in the
  middle of a stream, and a loop / stray word right after one.
- ``run_planted_bug`` (only on the ``PlantBug=1`` build): the churn of ``run_churn`` must fail
  with a :class:`DpaMismatch` (``expect_error``), so the pass means "the bug was caught".
- ``run_protocol_violation`` (env ``DPA_VIOLATE``): a driver breaking the input stream rule; the
  RTL assertions must stop it (``test_dpa_ctrl_input_assertion_fires``).

Functional coverage (:mod:`dpa_coverage`, cocotb-coverage) is sampled for every accepted host
command; ``make coverage`` exports it (env ``PIMPHONY_COVERAGE``).

Drive just after the rising edge, sample at the falling edge (same on Verilator and Icarus).
Cycle = clock cycles since the bench started. Seed: env ``SEED`` or cocotb's RANDOM_SEED (logged).
Config: env ``PIMPHONY_CONFIG`` = the config the DUT's pim_pkg was generated from.
"""

from __future__ import annotations

import os
import random
from collections import deque
from pathlib import Path
from typing import Any, Callable

import cocotb
import dpa_coverage
import pytest
import pyuvm
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from dpa_coverage import DpaCoverage
from pyuvm import (
    ConfigDB,
    uvm_agent,
    uvm_analysis_port,
    uvm_driver,
    uvm_env,
    uvm_monitor,
    uvm_scoreboard,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_subscriber,
    uvm_test,
)

from pymodel.config import PimConfig, resolve
from pymodel.dpa import (
    DpaLayout,
    HostOp,
    append_template,
    kv_write_template,
    qk_template,
    sv_template,
)
from pymodel.isa import (
    INST_OPCODE_BITS,
    InstOp,
    Instruction,
    ModiField,
    encode_inst,
    inst_ranges,
    inst_width,
)
from scoreboards.dpa import DpaMismatch, DpaScoreboard

CLK_NS = 10
#: Every test fails (never hangs) after this much simulated time; the longest (run_churn at
#: DPA_CHURN=10000) ends well under a tenth of it.
TIMEOUT_MS = float(os.environ.get("DPA_TIMEOUT_MS", "200"))
HostCmd = tuple[int, int, int]  # (op, req, arg)



# ------------------------------------------------------------------------------------- BFM


class DpaBfm:
    """Owns the DUT pins; one coroutine per cycle: drive the current host command and instruction
    (after their idle cycles) and the output readies, then at the falling edge report what
    transferred, in this order: free chunks (idle), host command, instruction, response, output
    word, error (inputs before outputs of the same cycle)."""

    def __init__(self, dut: Any, seed: int) -> None:
        self.dut = dut
        self.rng = random.Random(seed ^ 0x5EED)
        self.cycle = 0
        self.host_q: deque[tuple[HostCmd, int]] = deque()  # (command, idle cycles before it)
        self.inst_q: deque[tuple[int, int]] = deque()  # (word, idle cycles before it)
        self.out_ready_prob = 1.0
        self.resp_ready_prob = 1.0
        self.in_reset = False
        self.out_stalls = 0
        self.resp_stalls = 0
        self.error: BaseException | None = None
        # monitor hooks (set by the monitors)
        self.on_free: Callable[[int, int], None] = lambda c, n: None
        self.on_host: Callable[[int, HostCmd], None] = lambda c, cmd: None
        self.on_inst: Callable[[int, int, bool], None] = lambda c, w, host_waiting: None
        self.on_resp: Callable[[int, int, int, int], None] = lambda c, s, ch, r: None
        self.on_out: Callable[[int, int], None] = lambda c, w: None
        self.on_err: Callable[[int, int], None] = lambda c, code: None
        self._cur_h: tuple[HostCmd, int] | None = None
        self._cur_i: tuple[int, int] | None = None
        self._task: Any = None

    def start(self) -> None:
        d = self.dut
        d.host_valid_i.value = 0
        d.inst_valid_i.value = 0
        d.out_ready_i.value = 0
        d.resp_ready_i.value = 0
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def flush(self) -> None:
        """Drop every queued and current input (reset)."""
        self.host_q.clear()
        self.inst_q.clear()
        self._cur_h = self._cur_i = None

    @property
    def busy(self) -> bool:
        return bool(self.host_q or self.inst_q or self._cur_h or self._cur_i)

    async def reset(self, cycles: int = 3) -> None:
        d = self.dut
        self.in_reset = True
        d.rst_ni.value = 0
        await ClockCycles(d.clk_i, cycles)
        self.flush()
        d.rst_ni.value = 1
        self.in_reset = False

    async def _run(self) -> None:
        d, rng = self.dut, self.rng
        held_out: int | None = None
        held_resp: tuple[int, int, int] | None = None
        while True:
            # ---- drive (start of the cycle)
            if self.in_reset:
                self.flush()
                held_out = held_resp = None
            if self._cur_h is None and self.host_q:
                self._cur_h = self.host_q.popleft()
            if self._cur_i is None and self.inst_q:
                self._cur_i = self.inst_q.popleft()
            h_valid = self._cur_h is not None and self._cur_h[1] == 0
            i_valid = self._cur_i is not None and self._cur_i[1] == 0
            if self._cur_h is not None and not h_valid:
                self._cur_h = (self._cur_h[0], self._cur_h[1] - 1)
            if self._cur_i is not None and not i_valid:
                self._cur_i = (self._cur_i[0], self._cur_i[1] - 1)
            d.host_valid_i.value = int(h_valid)
            if h_valid:
                assert self._cur_h is not None
                op, req, arg = self._cur_h[0]
                d.host_op_i.value, d.host_req_i.value, d.host_arg_i.value = op, req, arg
            d.inst_valid_i.value = int(i_valid)
            if i_valid:
                assert self._cur_i is not None
                d.inst_i.value = self._cur_i[0]
            d.out_ready_i.value = int(rng.random() < self.out_ready_prob)
            d.resp_ready_i.value = int(rng.random() < self.resp_ready_prob)
            await FallingEdge(d.clk_i)
            # ---- sample
            try:
                if not self.in_reset and d.rst_ni.value:
                    held_out, held_resp = self._sample(h_valid, i_valid, held_out, held_resp)
            except BaseException as exc:  # noqa: B036 - recorded, re-raised by the test
                self.error = exc
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    def _sample(
        self,
        h_valid: bool,
        i_valid: bool,
        held_out: int | None,
        held_resp: tuple[int, int, int] | None,
    ) -> tuple[int | None, tuple[int, int, int] | None]:
        d, c = self.dut, self.cycle
        h_ready = bool(d.host_ready_o.value)
        if h_ready:
            self.on_free(c, d.free_chunks_o.value.to_unsigned())
        h_take = h_valid and h_ready
        i_take = i_valid and bool(d.inst_ready_o.value)
        if h_take and i_take:
            raise DpaMismatch(f"cycle {c}: host command and instruction accepted together")
        if h_take:
            cmd = (
                d.host_op_i.value.to_unsigned(),
                d.host_req_i.value.to_unsigned(),
                d.host_arg_i.value.to_unsigned(),
            )
            self.on_host(c, cmd)
            self._cur_h = None
        if i_take:
            self.on_inst(c, d.inst_i.value.to_unsigned(), h_valid)
            self._cur_i = None
        if d.resp_valid_o.value:
            resp = (
                d.resp_status_o.value.to_unsigned(),
                d.resp_chan_o.value.to_unsigned(),
                d.resp_row_o.value.to_unsigned(),
            )
            if held_resp is not None and held_resp != resp:
                raise DpaMismatch(f"cycle {c}: response changed while stalled")
            if d.resp_ready_i.value:
                held_resp = None
                self.on_resp(c, *resp)
            else:
                held_resp = resp
                self.resp_stalls += 1
        elif held_resp is not None:
            raise DpaMismatch(f"cycle {c}: resp_valid_o dropped before acceptance")
        if d.out_valid_o.value:
            word = d.out_o.value.to_unsigned()
            if held_out is not None and held_out != word:
                raise DpaMismatch(f"cycle {c}: out_o changed while stalled")
            if d.out_ready_i.value:
                held_out = None
                self.on_out(c, word)
            else:
                held_out = word
                self.out_stalls += 1
        elif held_out is not None:
            raise DpaMismatch(f"cycle {c}: out_valid_o dropped before acceptance")
        if d.err_valid_o.value:
            self.on_err(c, d.err_code_o.value.to_unsigned())
        return held_out, held_resp


# ------------------------------------------------------------------------------------- agents


class HostItem(uvm_sequence_item):
    def __init__(self, name: str, cmd: HostCmd, idle: int = 0) -> None:
        super().__init__(name)
        self.cmd, self.idle = cmd, idle


class InstItem(uvm_sequence_item):
    def __init__(self, name: str, word: int, idle: int = 0) -> None:
        super().__init__(name)
        self.word, self.idle = word, idle


class _ListSeq(uvm_sequence):
    """Send a list of payloads in order, with 1..3 idle cycles before an item with probability
    ``idle_prob``. :meth:`stop` ends it at the next item (used before a reset)."""

    item_cls: Any = None

    def __init__(self, name: str, payloads: list[Any], idle_prob: float, rng: random.Random):
        super().__init__(name)
        self.payloads, self.idle_prob, self.rng = payloads, idle_prob, rng
        self.stopped = False
        self.sent = 0

    def stop(self) -> None:
        self.stopped = True

    async def body(self) -> None:
        for k, p in enumerate(self.payloads):
            if self.stopped:
                return
            idle = self.rng.randint(1, 3) if self.rng.random() < self.idle_prob else 0
            item = self.item_cls(f"{self.get_name()}{k}", p, idle)
            await self.start_item(item)
            await self.finish_item(item)
            self.sent += 1


class HostSeq(_ListSeq):
    item_cls = HostItem


class InstSeq(_ListSeq):
    item_cls = InstItem


class _BfmDriver(uvm_driver):
    """Hands items to the BFM, keeping a lookahead of at most two."""

    def start_of_simulation_phase(self) -> None:
        self.bfm: DpaBfm = ConfigDB().get(self, "", "BFM")

    def queue(self) -> deque[Any]:
        raise NotImplementedError

    def payload(self, item: Any) -> Any:
        raise NotImplementedError

    async def run_phase(self) -> None:
        while True:
            item = await self.seq_item_port.get_next_item()
            q = self.queue()
            while len(q) >= 2:
                await RisingEdge(self.bfm.dut.clk_i)
            q.append((self.payload(item), item.idle))
            self.seq_item_port.item_done()


class HostDriver(_BfmDriver):
    def queue(self) -> deque[Any]:
        return self.bfm.host_q

    def payload(self, item: Any) -> Any:
        return item.cmd


class InstDriver(_BfmDriver):
    def queue(self) -> deque[Any]:
        return self.bfm.inst_q

    def payload(self, item: Any) -> Any:
        return item.word


class HostMonitor(uvm_monitor):
    """Accepted commands (cycle, (op, req, arg)), responses (cycle, status, chan, row) and the
    free-chunk count while idle (cycle, n)."""

    def build_phase(self) -> None:
        self.cmd_ap = uvm_analysis_port("cmd_ap", self)
        self.resp_ap = uvm_analysis_port("resp_ap", self)
        self.free_ap = uvm_analysis_port("free_ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: DpaBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_host = lambda c, cmd: self.cmd_ap.write((c, cmd))
        bfm.on_resp = lambda c, s, ch, r: self.resp_ap.write((c, s, ch, r))
        bfm.on_free = lambda c, n: self.free_ap.write((c, n))


class InstMonitor(uvm_monitor):
    """Accepted instruction words (cycle, word, a host command was waiting)."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: DpaBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_inst = lambda c, w, hw: self.ap.write((c, w, hw))


class OutMonitor(uvm_monitor):
    """Physical words delivered (cycle, word) and instruction-path errors (cycle, code)."""

    def build_phase(self) -> None:
        self.out_ap = uvm_analysis_port("out_ap", self)
        self.err_ap = uvm_analysis_port("err_ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: DpaBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_out = lambda c, w: self.out_ap.write((c, w))
        bfm.on_err = lambda c, code: self.err_ap.write((c, code))


class HostAgent(uvm_agent):
    def build_phase(self) -> None:
        super().build_phase()
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = HostDriver("driver", self)
        self.monitor = HostMonitor("monitor", self)

    def connect_phase(self) -> None:
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)


class InstAgent(uvm_agent):
    def build_phase(self) -> None:
        super().build_phase()
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = InstDriver("driver", self)
        self.monitor = InstMonitor("monitor", self)

    def connect_phase(self) -> None:
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)


class _Export(uvm_subscriber):
    def __init__(self, name: str, parent: Any, fn: Callable[..., None]) -> None:
        super().__init__(name, parent)
        self.fn = fn

    def write(self, t: Any) -> None:
        self.fn(*t)


class DpaSbComponent(uvm_scoreboard):
    """Wraps scoreboards.dpa.DpaScoreboard (checks raise DpaMismatch naming the cycle); also keeps
    the acceptance / output cycles of the last words for the throughput check."""

    def build_phase(self) -> None:
        self.sb = DpaScoreboard(ConfigDB().get(self, "", "CFG"))
        self.cov = DpaCoverage(self.sb.model)
        self.host_export = _Export("host", self, self._host)
        self.resp_export = _Export("resp", self, self._resp)
        self.free_export = _Export("free", self, self._free)
        self.inst_export = _Export("inst", self, self._inst)
        self.out_export = _Export("out", self, self._out)
        self.err_export = _Export("err", self, self._err)
        self.inst_cycles: list[int] = []
        self.out_cycles: list[int] = []
        self.host_cycles: list[int] = []
        self.err_cycles: list[int] = []

    def reset(self) -> None:
        self.sb.reset()

    def _host(self, c: int, cmd: HostCmd) -> None:
        self.host_cycles.append(c)
        self.cov.before(*cmd)
        self.sb.host_cmd(*cmd, cycle=c)
        self.cov.after(*cmd, self.sb.exp_resp[-1][3])

    def _resp(self, c: int, status: int, chan: int, row: int) -> None:
        self.sb.host_resp(status, chan, row, c)

    def _free(self, c: int, n: int) -> None:
        self.sb.free_chunks(n, c)

    def _inst(self, c: int, word: int, host_waiting: bool) -> None:
        if host_waiting and not self.sb.disp.collecting:
            raise DpaMismatch(f"cycle {c}: instruction 0x{word:x} taken over a waiting host cmd")
        self.inst_cycles.append(c)
        self.sb.inst_in(word, c)

    def _out(self, c: int, word: int) -> None:
        self.out_cycles.append(c)
        self.sb.out_word(word, c)

    def _err(self, c: int, code: int) -> None:
        self.err_cycles.append(c)
        self.sb.error(code, c)

    def check_phase(self) -> None:
        self.sb.drain()


class DpaEnv(uvm_env):
    def build_phase(self) -> None:
        self.host = HostAgent("host", self)
        self.inst = InstAgent("inst", self)
        self.out = OutMonitor("out", self)
        self.sb = DpaSbComponent("sb", self)

    def connect_phase(self) -> None:
        hm, sb = self.host.monitor, self.sb
        hm.cmd_ap.connect(sb.host_export.analysis_export)
        hm.resp_ap.connect(sb.resp_export.analysis_export)
        hm.free_ap.connect(sb.free_export.analysis_export)
        self.inst.monitor.ap.connect(sb.inst_export.analysis_export)
        self.out.out_ap.connect(sb.out_export.analysis_export)
        self.out.err_ap.connect(sb.err_export.analysis_export)


# ------------------------------------------------------------------------------------- stimulus


class Stimulus:
    """Random host commands and instruction programs for one config (seeded)."""

    def __init__(self, cfg: PimConfig, rng: random.Random, req_bits: int) -> None:
        self.cfg, self.rng, self.lay = cfg, rng, DpaLayout.of(cfg)
        self.req_ids = min(cfg.dpa.max_requests + 1, 1 << req_bits)  # one id beyond the table

    def words(self, prog: list[Instruction]) -> list[int]:
        return [encode_inst(i, self.cfg) for i in prog]

    def host(self) -> HostCmd:
        rng, lay = self.rng, self.lay
        op = rng.choices(list(HostOp), weights=[4, 6, 1, 4])[0]
        req = rng.randrange(self.req_ids)
        if op is HostOp.OPEN:
            arg = rng.randrange(0, lay.chunk_tokens * 3)
        elif op is HostOp.GROW:
            arg = rng.choice([1, 1, 1, rng.randrange(lay.chunk_tokens * 2)])
        else:
            arg = rng.randrange(0, 2 * lay.chunk_rows)
        return int(op), req, arg

    def plain(self) -> Instruction:
        rng, cfg = self.rng, self.cfg
        cols, gb = cfg.geometry.columns_per_row - 1, cfg.buffers.gb_entries - 1
        out = cfg.buffers.obuf_entries - 1
        r = rng.random()
        if r < 0.4:
            return Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=rng.randint(0, 3),
                               col=rng.randint(0, cols), gb=rng.randint(0, gb),
                               out=rng.randint(0, out))
        if r < 0.65:
            return Instruction(InstOp.WR_INP, ch_mask=1, op_size=1, gpr=rng.randint(0, 100),
                               gb=rng.randint(0, gb))
        if r < 0.9:
            return Instruction(InstOp.RD_OUT, ch_mask=1, op_size=1, gpr=rng.randint(0, 100),
                               out=rng.randint(0, out))
        return Instruction(InstOp.WR_BANK, ch_mask=1, op_size=1, bank=1, row=rng.randint(0, 3),
                           col=2, gpr=5)

    def program(self) -> list[int]:
        rng, cfg = self.rng, self.cfg
        req = rng.randrange(cfg.dpa.max_requests)
        kind = rng.random()
        win = {"first": 0, "count": 0}
        if rng.random() < 0.5:  # a block window (segment), sometimes past the request's end
            last = inst_ranges(cfg)["first"][1]
            win = {"first": rng.randint(0, min(24, last)), "count": rng.randint(0, min(3, last))}
        if kind < 0.15:
            return self.words(qk_template(cfg, req, **win))
        if kind < 0.3:
            return self.words(sv_template(cfg, req, **win))
        if kind < 0.37:  # one decode step's KV append: grows the request, K + V writes
            return self.words(append_template(req, rng.randrange(0, 200)))
        if kind < 0.4:
            return self.words(kv_write_template(cfg, req, rng.random() < 0.5, range(4)))
        if kind < 0.5:  # plain words back to back, sometimes a stray word right after them
            ws = self.words([self.plain() for _ in range(rng.randint(1, 6))])
            if rng.random() < 0.2:
                ws += [7] if rng.random() < 0.5 else self.words([self.modi()])
            return ws
        n = rng.randrange(1, cfg.dpa.max_body_len + 1)
        body = [self.modi() if rng.random() < 0.3 else self.plain() for _ in range(n)]
        return self.words([Instruction(InstOp.DYN_LOOP, req=req, body_len=n, **win), *body])

    def modi(self) -> Instruction:
        return Instruction(InstOp.DYN_MODI, field=self.rng.choice(list(ModiField)),
                           stride=self.rng.randint(-3, 3))


# ------------------------------------------------------------------------------------- tests


class DpaTest(uvm_test):
    """Base: clock, reset, sequences; subclasses implement :meth:`body`. Ends with drain checks."""

    def build_phase(self) -> None:
        self.dut = cocotb.top
        self.cfg: PimConfig = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
        self.lay = DpaLayout.of(self.cfg)
        self.seed = bench_seed()
        self.rng = random.Random(self.seed)
        self.bfm = DpaBfm(self.dut, self.seed)
        ConfigDB().set(None, "*", "BFM", self.bfm)
        ConfigDB().set(None, "*", "CFG", self.cfg)
        self.env = DpaEnv("env", self)
        self.stim = Stimulus(self.cfg, self.rng, len(self.dut.host_req_i))
        self.idle_prob = 0.2

    @property
    def sb(self) -> DpaScoreboard:
        return self.env.sb.sb

    @property
    def log(self) -> Any:
        return self.dut._log

    async def run_phase(self) -> None:
        self.raise_objection()
        self.log.info("config %s, seed %d (rerun with SEED=%d)", self.cfg.name, self.seed,
                      self.seed)
        assert len(self.dut.inst_i) == inst_width(self.cfg), "pim_pkg from another config"
        Clock(self.dut.clk_i, CLK_NS, unit="ns").start()
        self.bfm.start()
        await self.bfm.reset()
        await self.body()
        self.raise_if_error()
        self.sb.drain()
        self.log.info("%s: %s", type(self).__name__, self.sb.summary())
        if os.environ.get("PIMPHONY_COVERAGE"):  # make coverage: bins so far (all tests)
            dpa_coverage.export(os.environ["PIMPHONY_COVERAGE"])
        self.bfm.stop()
        self.drop_objection()

    async def body(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def raise_if_error(self) -> None:
        if self.bfm.error is not None:
            raise self.bfm.error

    def start(self, cmds: list[HostCmd], words: list[int]) -> list[Any]:
        """Start a host and an instruction sequence; returns [(seq, task), ...]."""
        out = []
        for seq, seqr in (
            (HostSeq("h", cmds, self.idle_prob, self.rng), self.env.host.seqr),
            (InstSeq("i", words, self.idle_prob, self.rng), self.env.inst.seqr),
        ):
            if seq.payloads:
                out.append((seq, cocotb.start_soon(seq.start(seqr))))
        return out

    async def send(self, cmds: list[HostCmd], words: list[int], drain: bool = True) -> None:
        for _, task in self.start(cmds, words):
            while not task.done():
                await RisingEdge(self.dut.clk_i)
                self.raise_if_error()
        if drain:
            await self.wait_drained()

    async def wait_drained(self, max_cycles: int = 200_000) -> None:
        clk = self.dut.clk_i
        for _ in range(max_cycles):
            await RisingEdge(clk)
            self.raise_if_error()
            if not self.bfm.busy and self.sb.idle and self.dut.host_ready_o.value:
                await ClockCycles(clk, 3)
                self.raise_if_error()
                if self.sb.idle:
                    return
        raise AssertionError(f"not drained after {max_cycles} cycles: {self.sb.summary()}")

    async def reset_mid_traffic(self, running: list[Any], cycles: int = 2) -> None:
        """Stop the sequences, hold reset until they are done (the BFM drops their items), and
        restart the reference."""
        for seq, _ in running:
            seq.stop()
        self.bfm.in_reset = True
        self.dut.rst_ni.value = 0
        n = 0
        while n < cycles or not all(t.done() for _, t in running):
            await RisingEdge(self.dut.clk_i)
            n += 1
        self.bfm.flush()
        self.env.sb.reset()
        self.dut.rst_ni.value = 1
        self.bfm.in_reset = False

    def status(self, name: str) -> int:
        assert self.sb.n.by_status is not None
        return self.sb.n.by_status[name]


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_directed_errors(DpaTest):  # noqa: N801 - cocotb test naming (run_*)
    """Every error code, by count; templates over a grown request."""

    async def body(self) -> None:
        lay, cfg, dut = self.lay, self.cfg, self.dut
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
        await self.send(cmds, [])
        for name, n in (("TOO_MANY_REQUESTS", int(too_many)), ("ALREADY_OPEN", 1),
                        ("UNKNOWN_REQUEST", 4), ("TOO_LONG", 2), ("OUT_OF_RANGE", 1)):
            assert self.status(name) == n, (name, self.sb.summary())
        # fill the pool: NO_MEMORY, and the failing request is unchanged
        if lay.num_chunks <= 1024:  # (at the default 16384 chunks filling takes too long)
            # request 1 at the maximum length: its last row is in the last allowed chunk
            last_row = lay.max_chunks * lay.chunk_rows - 1
            await self.send([(O, r, lay.max_tokens) for r in range(1, nr)]
                            + [(T, 0, 5), (T, 1, last_row)], [])
            assert self.status("NO_MEMORY") >= 1, self.sb.summary()
        await self.send([(C, nr - 1 if nr > 3 else 2, 0)], [])
        # instruction-path errors
        mac = Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=1)
        modi = Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=2)
        progs = [
            [modi],  # stray DYN_MODI (BAD_PROGRAM)
            [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), mac,
             Instruction(InstOp.DYN_LOOP, req=0, body_len=1)],  # nested -> BAD_PROGRAM
            [Instruction(InstOp.DYN_LOOP, req=nr - 1 if nr > 3 else 2, body_len=1),
             mac],  # closed request -> UNKNOWN_REQUEST
            [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), modi, mac],  # row 1,3,5: fine
            [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), modi,
             Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=2)],  # row 6 -> OUT_OF_RANGE
            [mac, modi],  # stray DYN_MODI right behind a pass-through word
            append_template(nr - 1 if nr > 3 else 2, 0),  # closed request -> UNKNOWN_REQUEST
            append_template(0, 40),  # 300 -> 301 tokens: K + V column writes
            qk_template(cfg, 0, first=2, count=5),  # window: block 2 only
            qk_template(cfg, 0, first=3),  # window past the end: nothing, no error
        ]
        words = [w for p in progs for w in self.stim.words(p)] + [7]  # unknown opcode
        # a loop body with a DYN_MODI naming no field (field 7 of 5): BAD_PROGRAM
        bad_modi = int(InstOp.DYN_MODI) | (7 << INST_OPCODE_BITS)  # field sits after the opcode
        words += [self.stim.words([Instruction(InstOp.DYN_LOOP, req=0, body_len=2)])[0],
                  bad_modi, self.stim.words([mac])[0]]
        for tmpl in (qk_template(cfg, 0), sv_template(cfg, 0),
                     kv_write_template(cfg, 0, True, range(cfg.dpa.max_body_len - 2))):
            words += self.stim.words(tmpl)
        await self.send([], words)
        assert self.sb.n.err == 8 and self.sb.n.out > 20, self.sb.summary()
        # close whatever is open, down to the last open request (the pool is full again)
        await self.send([(C, r, 0) for r in range(nr)], [])
        assert dut.free_chunks_o.value.to_unsigned() == lay.num_chunks, self.sb.summary()


class ChurnTest(DpaTest):
    """Random commands and programs in batches; idle cycles and backpressure on/off per batch."""

    async def body(self) -> None:
        n = int(os.environ.get("DPA_CHURN", "10000"))
        t0 = self.bfm.cycle
        churn = 0  # OPEN/GROW/CLOSE commands sent
        batch_no = 0
        while churn < n:
            cmds = [self.stim.host() for _ in range(500)]
            churn += sum(1 for op, _, _ in cmds if op != HostOp.TRANSLATE)
            words = [w for _ in range(20) for w in self.stim.program()]
            # idle / backpressure: all four combinations, then random
            on_idle, on_bp = (batch_no % 2, batch_no // 2 % 2) if batch_no < 4 else (
                self.rng.random() < 0.5, self.rng.random() < 0.5)
            self.idle_prob = 0.3 if on_idle else 0.0
            self.bfm.out_ready_prob = 0.5 if on_bp else 1.0
            self.bfm.resp_ready_prob = 0.7 if on_bp else 1.0
            await self.send(cmds, words)
            batch_no += 1
        s = self.sb.n.by_status or {}
        assert churn >= n and s["NO_MEMORY"] > 0 and self.sb.n.translate_ok > n // 20, (
            self.sb.summary())
        assert self.bfm.out_stalls > 0 and self.bfm.resp_stalls > 0, "no backpressure happened"
        self.log.info("churn: %d OPEN/GROW/CLOSE in %d batches, %d cycles; stalls out %d resp %d",
                      churn, batch_no, self.bfm.cycle - t0, self.bfm.out_stalls,
                      self.bfm.resp_stalls)


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms",
             skip=os.environ.get("DPA_PLANT_BUG", "0") == "1")
class run_churn(ChurnTest):  # noqa: N801
    """>= 10,000 OPEN/GROW/CLOSE (+ TRANSLATEs) with DYN_LOOP programs, invariants throughout."""


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_reset_mid_traffic(DpaTest):  # noqa: N801
    """Reset while commands and loops are in flight; traffic continues against a fresh model."""

    async def body(self) -> None:
        dut = self.dut
        self.bfm.out_ready_prob, self.bfm.resp_ready_prob = 0.7, 0.8
        for round_ in range(3):
            running = self.start([self.stim.host() for _ in range(300)],
                                 [w for _ in range(20) for w in self.stim.program()])
            await ClockCycles(dut.clk_i, self.rng.randrange(200, 800))
            self.raise_if_error()
            assert not running[0][1].done(), "traffic finished before the reset"
            await self.reset_mid_traffic(running)
            await FallingEdge(dut.clk_i)
            assert dut.resp_valid_o.value == 0 and dut.out_valid_o.value == 0
            assert dut.free_chunks_o.value.to_unsigned() == self.lay.num_chunks, round_
        await self.send([self.stim.host() for _ in range(500)],
                        [w for _ in range(20) for w in self.stim.program()])


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_passthrough_rate(DpaTest):  # noqa: N801
    """Plain words stream at one per cycle (N words: N cycles first acceptance -> last output)."""

    async def body(self) -> None:
        sbc, n = self.env.sb, 256
        self.idle_prob = 0.0
        self.bfm.out_ready_prob = 1.0
        await self.send([], self.stim.words([self.stim.plain() for _ in range(n)]))
        acc, out = sbc.inst_cycles[-n:], sbc.out_cycles[-n:]
        span = out[-1] - acc[0]
        self.log.info("pass-through: %d words, first accepted cycle %d, last out cycle %d: "
                      "%d cycles (%.3f words/cycle)", n, acc[0], out[-1], span, n / span)
        assert acc == list(range(acc[0], acc[0] + n)), "intake not back to back"
        assert out == [c + 1 for c in acc], "each word not out the cycle after its acceptance"
        assert span == n, f"{n} plain words took {span} cycles"
        # with backpressure: still correct, and no bubble beyond the stalls
        self.bfm.out_ready_prob = 0.5
        stalls0 = self.bfm.out_stalls
        await self.send([], self.stim.words([self.stim.plain() for _ in range(n)]))
        acc, out = sbc.inst_cycles[-n:], sbc.out_cycles[-n:]
        stalls = self.bfm.out_stalls - stalls0
        assert out[-1] - acc[0] == n + stalls, (out[-1] - acc[0], n, stalls)
        # a host command arriving in the middle of a stream goes first; then a loop and a stray
        # DYN_MODI straight behind plain words
        self.bfm.out_ready_prob = 1.0
        late = [(int(HostOp.OPEN), 0, 300), (int(HostOp.TRANSLATE), 0, 1)]
        plain = [self.stim.plain() for _ in range(40)]
        h_task = cocotb.start_soon(self._late_host(late, 10))
        await self.send([], self.stim.words(plain))
        await h_task
        await self.wait_drained()
        acc = sbc.inst_cycles[-len(plain):]
        assert acc[0] < sbc.host_cycles[-2] < acc[-1], "the host command did not meet the stream"
        loop = qk_template(self.cfg, 0)[1:]  # DYN_LOOP + body
        words = self.stim.words([*plain[:3], *loop, *plain[:2], self.stim.modi(), plain[0]])
        await self.send([], words)
        assert self.sb.n.err == 1, self.sb.summary()

    async def _late_host(self, cmds: list[HostCmd], delay: int) -> None:
        await ClockCycles(self.dut.clk_i, delay)
        await self.send(cmds, [], drain=False)


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms",
             skip=os.environ.get("DPA_PLANT_BUG", "0") != "1", expect_error=DpaMismatch)
class run_planted_bug(ChurnTest):  # noqa: N801
    """PlantBug=1 (a popped chunk stays on its free stack): run_churn must raise DpaMismatch."""


@cocotb.test(timeout_time=1, timeout_unit="ms", skip=not os.environ.get("DPA_VIOLATE"))
async def run_protocol_violation(dut: Any) -> None:
    """A driver that breaks the input stream rule (env DPA_VIOLATE = ``host``: host_valid_i
    dropped before host_ready_o; ``inst``: inst_i changed while stalled). The RTL's input
    assertions must stop the simulation; reaching the end of this test is a failure."""
    cfg = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
    Clock(dut.clk_i, CLK_NS, unit="ns").start()
    for sig in (dut.host_valid_i, dut.inst_valid_i, dut.host_op_i, dut.host_req_i,
                dut.host_arg_i, dut.inst_i):
        sig.value = 0
    dut.out_ready_i.value = dut.resp_ready_i.value = 1
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    # an OPEN keeps the controller busy (host_ready_o and inst_ready_o low) for a few cycles
    dut.host_op_i.value, dut.host_req_i.value = int(HostOp.OPEN), 0
    dut.host_arg_i.value = 2 * DpaLayout.of(cfg).chunk_tokens
    dut.host_valid_i.value = 1
    await RisingEdge(dut.clk_i)
    mac = encode_inst(Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=1), cfg)
    if os.environ["DPA_VIOLATE"] == "host":  # a second command offered, then withdrawn
        dut.host_req_i.value = 1
        await RisingEdge(dut.clk_i)
        assert not dut.host_ready_o.value, "the DUT was not busy: no violation made"
        dut.host_valid_i.value = 0
    else:  # an instruction offered, then replaced by another while stalled
        dut.host_valid_i.value = 0
        dut.inst_i.value, dut.inst_valid_i.value = mac, 1
        await RisingEdge(dut.clk_i)
        assert not dut.inst_ready_o.value, "the DUT was not busy: no violation made"
        dut.inst_i.value = mac ^ (1 << (len(dut.inst_i) - 1))
    await ClockCycles(dut.clk_i, 20)
    raise AssertionError("protocol violation went unnoticed by the RTL assertions")


# ---------------------------------------------------------------------------------- pytest side

SMALL_TOML = (
    'preset = "aim-gddr6"\nname = "dpa-small"\n\n'
    "[geometry]\nrows_per_bank = 32\n\n[module]\nchannels = 3\n\n"
    "[dpa]\nmax_requests = 6\nmax_chunks_per_request = 8\nchunk_rows = 4\n"
)
TESTS = ["run_directed_errors", "run_churn", "run_reset_mid_traffic", "run_passthrough_rate"]


@pytest.mark.sim
@pytest.mark.parametrize("plant", [0, 1])
def test_dpa_ctrl_sim(plant: int, tmp_path: Path) -> None:
    """Small sizes (6 requests x 8 chunks, 3 channels x 8 chunks): all tests; PlantBug=1: the
    churn must fail with a DpaMismatch (run_planted_bug expects it)."""
    import simlib

    sources, cfg = _small_sources()
    simlib.run(
        toplevel="dpa_ctrl",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase="run_planted_bug" if plant else TESTS,
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_PLANT_BUG": str(plant)},
        assertions=not plant,  # the planted bug is for the scoreboard to catch, not an assertion
    )


def _small_sources() -> tuple[list[Path], str]:
    import simlib

    pkg, cfg = simlib.config_package("dpa-small", SMALL_TOML)
    return pkg + [simlib.RTL / "common" / "dpa_ram.sv", simlib.RTL / "dpa" / "dpa_ctrl.sv"], cfg


#: Ownership checker of dpa_ctrl (the shadow map of chunks handed out).
OWNERSHIP = {"a_alloc_unowned", "a_free_owned", "a_free_plus_owned", "a_owned_used",
             "a_free_count", "a_owned_held", "a_top_range"}
#: PlantBug value -> the assertions allowed to catch it first (rtl/dpa/dpa_ctrl.sv header).
PLANTED = {
    1: OWNERSHIP,                              # a popped chunk stays free: handed out twice
    2: {"a_translate_owner"},                  # TRANSLATE reads virtual chunk 0
    3: {"a_free_count"},                       # rollback frees without counting
    4: {"a_out_hold"},                         # a stalled output word dropped
    5: {"a_exp_onehot"},                       # an expanded word names two channels
}


@pytest.mark.sim
@pytest.mark.parametrize("plant", sorted(PLANTED))
def test_dpa_ctrl_assertion_fires(plant: int, tmp_path: Path, capfd: Any) -> None:
    """Each planted RTL bug stops the churn on the assertion of its family."""
    import simlib

    sources, cfg = _small_sources()
    simlib.expect_assertion(
        capfd, PLANTED[plant], toplevel="dpa_ctrl", sources=sources, test_file=__file__,
        test_dir=tmp_path, params={"PlantBug": plant}, testcase="run_churn",
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_PLANT_BUG": "0"},
    )


@pytest.mark.sim
@pytest.mark.parametrize("side", ["host", "inst"])
def test_dpa_ctrl_input_assertion_fires(side: str, tmp_path: Path, capfd: Any) -> None:
    """A driver breaking the stream rule on an input port stops the simulation."""
    import simlib

    sources, cfg = _small_sources()
    simlib.expect_assertion(
        capfd, {f"a_{side}_hold"}, toplevel="dpa_ctrl", sources=sources, test_file=__file__,
        test_dir=tmp_path, testcase="run_protocol_violation",
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_VIOLATE": side},
    )


@pytest.mark.sim
def test_dpa_ctrl_default_sizes_sim(tmp_path: Path) -> None:
    """The committed package (64 requests x 1024 chunks, 32 channels): directed tests and the
    pass-through rate."""
    import simlib

    simlib.run(
        toplevel="dpa_ctrl",
        sources=simlib.rtl_sources("common/dpa_ram.sv", "dpa/dpa_ctrl.sv"),
        test_file=__file__,
        test_dir=tmp_path,
        testcase=["run_directed_errors", "run_passthrough_rate"],
        extra_env={"PIMPHONY_CONFIG": "aim-gddr6"},
    )
