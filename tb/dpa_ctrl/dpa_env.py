"""The environment of the cocotb + pyuvm bench for ``rtl/dpa/dpa_ctrl.sv`` against
``pymodel.golden.dpa`` (``scoreboards.dpa``).

Interfaces and their pyuvm components (one BFM, :class:`DpaBfm`, owns the pins):
* host agent (:class:`HostAgent`): :class:`HostSeq` -> sequencer -> :class:`HostDriver` (random
  idle cycles before a command); :class:`HostMonitor` publishes every command the DUT accepted
  (input), every response delivered (output) and the free-chunk count whenever the DUT is idle;
* instruction agent (:class:`InstAgent`): :class:`InstSeq` -> sequencer -> :class:`InstDriver`;
  :class:`InstMonitor` publishes every word accepted (and whether a host command was waiting);
* output monitor (:class:`OutMonitor`): every physical word delivered and every instruction-path
  error pulse (the stream rules of every port are checked by ``tb/common/stream.py``);
* :class:`DpaSbComponent` (a ``uvm_scoreboard``) wraps :class:`scoreboards.dpa.DpaScoreboard`:
  the reference executes what the input monitors saw (its invariants are checked after every host
  command), the outputs are compared per transaction in order, the DUT's free-chunk count while
  idle, a one-to-one ownership map of the translations the DUT answers, and a spec rule: an
  instruction is never taken over a waiting host command unless it is a loop-body word.
Output backpressure (``out_ready_i``/``resp_ready_i`` random) and input idle cycles are switched
on and off per batch.

Drive just after the rising edge, sample at the falling edge (same on Verilator and Icarus).
Cycle = clock cycles since the bench started. Seed: env ``SEED`` or cocotb's RANDOM_SEED (logged).
Config: env ``PIMPHONY_CONFIG`` = the config the DUT's pim_pkg was generated from.

The tests are in ``test_dpa_ctrl.py``, the random stimulus in ``dpa_stimulus.py``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import cocotb
import dpa_coverage
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from dpa_coverage import DpaCoverage
from dpa_stimulus import HostCmd, Stimulus
from pyuvm import (
    ConfigDB,
    uvm_agent,
    uvm_analysis_port,
    uvm_env,
    uvm_monitor,
    uvm_scoreboard,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_subscriber,
    uvm_test,
)
from stream import StreamDriver, StreamMonitor, StreamPort, StreamSeqDriver

from pymodel.config import PimConfig, resolve
from pymodel.golden.dpa import (
    DpaLayout,
)
from pymodel.isa import (
    inst_width,
)
from scoreboards.dpa import DpaMismatch, DpaScoreboard

CLK_NS = 10
#: Every test fails (never hangs) after this much simulated time; the longest (run_churn at
#: DPA_CHURN=10000) ends well under a tenth of it.
TIMEOUT_MS = float(os.environ.get("DPA_TIMEOUT_MS", "200"))


# ------------------------------------------------------------------------------------- BFM


class DpaBfm:
    """Owns the DUT pins; one coroutine per cycle: drive the current host command and instruction
    (after their idle cycles) and the output readies, then at the falling edge report what
    transferred, in this order: free chunks (idle), host command, instruction, response, output
    word, error (inputs before outputs of the same cycle). The four streams go through
    ``tb/common/stream.py`` (valid held and payload stable until the transfer, both ways)."""

    def __init__(self, dut: Any, seed: int) -> None:
        d = self.dut = dut
        self.rng = random.Random(seed ^ 0x5EED)
        self.cycle = 0
        self.host = StreamDriver(
            StreamPort(
                "host", d.host_valid_i, [d.host_op_i, d.host_req_i, d.host_arg_i], d.host_ready_o
            )
        )
        self.inst = StreamDriver(StreamPort("inst", d.inst_valid_i, d.inst_i, d.inst_ready_o))
        self.resp = StreamMonitor(
            StreamPort(
                "resp",
                d.resp_valid_o,
                [d.resp_status_o, d.resp_chan_o, d.resp_row_o],
                d.resp_ready_i,
            )
        )
        self.out = StreamMonitor(StreamPort("out", d.out_valid_o, d.out_o, d.out_ready_i))
        self.out_ready_prob = 1.0
        self.resp_ready_prob = 1.0
        self.in_reset = False
        self.error: BaseException | None = None
        # monitor hooks (set by the monitors)
        self.on_free: Callable[[int, int], None] = lambda c, n: None
        self.on_host: Callable[[int, HostCmd], None] = lambda c, cmd: None
        self.on_inst: Callable[[int, int, bool], None] = lambda c, w, host_waiting: None
        self.on_resp: Callable[[int, int, int, int], None] = lambda c, s, ch, r: None
        self.on_out: Callable[[int, int], None] = lambda c, w: None
        self.on_err: Callable[[int, int], None] = lambda c, code: None
        self._task: Any = None

    @property
    def out_stalls(self) -> int:
        return self.out.stalls

    @property
    def resp_stalls(self) -> int:
        return self.resp.stalls

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
        """Drop every queued and current input and forget pending outputs (reset)."""
        self.host.flush()
        self.inst.flush()
        self.resp.reset()
        self.out.reset()

    @property
    def busy(self) -> bool:
        return self.host.busy or self.inst.busy

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
        while True:
            # ---- drive (start of the cycle)
            if self.in_reset:
                self.flush()
            h_valid = self.host.drive()
            self.inst.drive()
            d.out_ready_i.value = int(rng.random() < self.out_ready_prob)
            d.resp_ready_i.value = int(rng.random() < self.resp_ready_prob)
            await FallingEdge(d.clk_i)
            # ---- sample
            try:
                if not self.in_reset and d.rst_ni.value:
                    self._sample(h_valid)
            except BaseException as exc:  # noqa: B036 - recorded, re-raised by the test
                self.error = exc
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    def _sample(self, h_valid: bool) -> None:
        d, c = self.dut, self.cycle
        if d.host_ready_o.value:
            self.on_free(c, d.free_chunks_o.value.to_unsigned())
        cmd = self.host.sample(c)
        word = self.inst.sample(c)
        if cmd is not None and word is not None:
            raise DpaMismatch(f"cycle {c}: host command and instruction accepted together")
        if cmd is not None:
            self.on_host(c, cmd)
        if word is not None:
            self.on_inst(c, word, h_valid)
        resp = self.resp.sample(c)
        if resp is not None:
            self.on_resp(c, *resp)
        out = self.out.sample(c)
        if out is not None:
            self.on_out(c, out)
        if d.err_valid_o.value:
            self.on_err(c, d.err_code_o.value.to_unsigned())


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


class HostDriver(StreamSeqDriver):
    driver_key = "HOST_STREAM"

    def payload(self, item: Any) -> Any:
        return item.cmd


class InstDriver(StreamSeqDriver):
    driver_key = "INST_STREAM"

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
        ConfigDB().set(None, "*", "HOST_STREAM", self.bfm.host)
        ConfigDB().set(None, "*", "INST_STREAM", self.bfm.inst)
        ConfigDB().set(None, "*", "CLK", self.dut.clk_i)
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
        self.log.info(
            "config %s, seed %d (rerun with SEED=%d)", self.cfg.name, self.seed, self.seed
        )
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
