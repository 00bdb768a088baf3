"""pyuvm environment of the module bench (``rtl/top/pim_top.sv``); the tests are in test_top.py.

One BFM (:class:`TopBfm`) owns every pin and runs the cycle loop (drive after the rising edge,
sample at the falling edge, in a fixed order: inputs before outputs of the same cycle). Each
stream is driven or watched by ``tb/common/stream`` (valid/ready hold, payload stability and, on
the command buses, the quiet-bus rule), and each interface has its agent:

* host agent (:class:`HostAgent`): :class:`HostCmdSeq` -> sequencer -> :class:`HostDriver`
  (the host command stream); :class:`HostMonitor` publishes accepted commands and responses;
* instruction agent (:class:`InstAgent`): :class:`ProgramSeq` (random idle cycles between
  words) -> sequencer -> :class:`InstDriver`; :class:`InstMonitor` publishes accepted words;
* DPA monitor (:class:`DpaMonitor`): dpa_ctrl's physical words as they leave for the router,
  its instruction-path error pulses;
* one channel agent per channel (:class:`ChannelAgent`): :class:`ChannelMonitor` publishes the
  words the channel's scheduler accepted and the commands on its bus; its
  :class:`ChannelResponder` is the memory behind the bus (``scoreboards.cmd_sched.BusChannel``,
  a golden channel that raises on any timing or state violation), the GPR behind the read and
  write ports and the RDMAC return path (random in-order latency).

Scoreboards wrap the pure-Python checkers of ``scoreboards/``:

* :class:`DpaSb` - ``scoreboards.dpa.DpaScoreboard``: dpa_ctrl inside pim_top against
  ``pymodel.golden.dpa`` (responses, expanded words, error codes, free chunks when drained);
* :class:`RouteSb` - the router: every word leaving dpa_ctrl was taken exactly once by every
  channel its ch_mask names, and by no other;
* :class:`SchedSb` - per channel ``scoreboards.cmd_sched.SchedLockstep``: the scheduler issues
  the same commands at the same cycles as ``pymodel.golden.sched``, program by program.

:class:`RtlBackend` is the sequence layer: :class:`pymodel.golden.decode.Backend` on the environment
(host commands as sequences, programs as sequences), so ``DecodeEngine`` drives the DUT. Each
program's words per channel must also equal ``pymodel.golden.dpa``'s expansion split by ch_mask
(:class:`TopMismatch` names the channel, the instruction and the cycle).

Every error a monitor or scoreboard raises is recorded by the BFM, which stops and wakes whoever
waits (a host response, a program), so the test fails with it instead of hanging.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import cocotb
import numpy as np
from cocotb.triggers import Event, FallingEdge, RisingEdge
from pyuvm import (
    ConfigDB,
    uvm_agent,
    uvm_analysis_port,
    uvm_component,
    uvm_env,
    uvm_scoreboard,
    uvm_sequence,
    uvm_sequence_item,
    uvm_sequencer,
    uvm_subscriber,
)
from stream import StreamApMonitor, StreamDriver, StreamMonitor, StreamPort, StreamSeqDriver

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16
from pymodel.golden.decode import StepStats, split
from pymodel.golden.dpa import DpaModel, DpaStatus, HostOp, Response, expand_prefix
from pymodel.golden.sched import MODE_CODE, Mode
from pymodel.isa import Instruction, TraceEntry, decode_inst, encode_inst
from scoreboards.cmd_sched import (
    BUS_OFFSET,
    BusChannel,
    SchedLockstep,
    int_to_lanes,
    lanes_to_int,
)
from scoreboards.dpa import DpaScoreboard


class TopMismatch(AssertionError):
    """The DUT's routing / DPA answers differ from pymodel."""


def bench_mode() -> Mode:
    """Scheduler mode of every channel: env ``TOP_MODE`` (static, pingpong, dcs; default dcs)."""
    return Mode(os.environ.get("TOP_MODE", "dcs"))


# ------------------------------------------------------------------------------------- pins


class Snapshot:
    """The per-channel vectors, read once per cycle (at the falling edge) for all channels."""

    KEYS = (
        "dpa_out",
        "sched_valid",
        "sched_ready",
        "cmd_valid_o",
        "cmd_o",
        "cmd_data_o",
        "gpr_wr_en_o",
        "gpr_wr_addr_o",
        "gpr_wr_data_o",
        "gpr_rd_en_o",
        "gpr_rd_addr_o",
    )

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.v: dict[str, int] = dict.fromkeys(self.KEYS, 0)

    def read(self) -> None:
        for k in self.KEYS:
            self.v[k] = getattr(self.dut, k).value.to_unsigned()


class SlicePort:
    """Channel ``index``'s slice of packed per-channel vectors, as a ``stream.StreamPort``: the
    valid (and ready) bit ``index``, payload fields ``(key, width)`` sliced at ``index * width``
    (``shared=True``: one signal every channel sees, e.g. the router's word)."""

    def __init__(
        self,
        name: str,
        snap: Snapshot,
        index: int,
        valid: str,
        payload: Sequence[tuple[str, int]],
        ready: str | None = None,
        shared: bool = False,
    ) -> None:
        self.name, self.snap, self.index = name, snap, index
        self.valid_key, self.ready_key = valid, ready
        self.fields = [(k, w, 0 if shared else index * w, (1 << w) - 1) for k, w in payload]
        self.multi = len(self.fields) > 1

    def is_valid(self) -> bool:
        return bool(self.snap.v[self.valid_key] >> self.index & 1)

    def is_ready(self) -> bool:
        return self.ready_key is None or bool(self.snap.v[self.ready_key] >> self.index & 1)

    def read(self) -> Any:
        v = self.snap.v
        vals = tuple((v[k] >> shift) & mask for k, _, shift, mask in self.fields)
        return vals if self.multi else vals[0]


class ChannelResponder:
    """The memory of one channel: the golden channel behind its command bus (returns RDMAC data
    at a random in-order latency), its GPR, and its command trace (model cycles)."""

    def __init__(self, cfg: PimConfig, rng: random.Random) -> None:
        self.cfg, self.rng = cfg, rng
        self.bus = BusChannel(cfg)
        self.gpr: dict[int, U16] = {}
        self.returns: deque[tuple[int, int]] = deque()  # (cycle due, data)
        self.trace: list[TraceEntry] = []
        self.ret_lat = (0, 3)

    def command(self, cycle: int, word: int, data: int) -> Any:
        mc = cycle - BUS_OFFSET
        cmd, rd = self.bus.command(mc, word, data)
        self.trace.append(TraceEntry(mc, cmd))
        if rd is not None:
            at = cycle + self.rng.randint(*self.ret_lat)
            if self.returns:
                at = max(at, self.returns[-1][0] + 1)
            self.returns.append((at, lanes_to_int(rd)))
        return cmd

    def due(self, cycle: int) -> int | None:
        if self.returns and self.returns[0][0] <= cycle:
            return self.returns.popleft()[1]
        return None


class TopBfm:
    """Owns every DUT pin; the cycle loop calls the stream drivers and monitors in a fixed order
    and hands what they saw to the ``on_*`` hooks (the monitors' analysis ports)."""

    def __init__(self, dut: Any, cfg: PimConfig, rng: random.Random) -> None:
        self.dut, self.cfg, self.rng = dut, cfg, rng
        n = self.n = cfg.module.channels
        self.lanes = cfg.geometry.lanes
        cw, dw = len(dut.cmd_o) // n, cfg.geometry.column_bytes * 8
        self.dw, self.gw = dw, len(dut.gpr_rd_addr_o) // n
        self.cycle = 0
        self.snap = Snapshot(dut)
        self.host = StreamDriver(
            StreamPort(
                "host",
                dut.host_valid_i,
                [dut.host_op_i, dut.host_req_i, dut.host_arg_i],
                dut.host_ready_o,
            )
        )
        self.inst = StreamDriver(StreamPort("inst", dut.inst_valid_i, dut.inst_i, dut.inst_ready_o))
        self.resp = StreamMonitor(
            StreamPort(
                "resp",
                dut.resp_valid_o,
                [dut.resp_status_o, dut.resp_chan_o, dut.resp_row_o],
                dut.resp_ready_i,
            )
        )
        self.dpa_out = StreamMonitor(
            StreamPort("dpa_out", dut.dpa_valid, dut.dpa_out, dut.dpa_ready)
        )
        iw = len(dut.dpa_out)
        self.sched_in = [
            StreamMonitor(
                SlicePort(
                    f"ch{c}.inst",
                    self.snap,
                    c,
                    "sched_valid",
                    [("dpa_out", iw)],
                    "sched_ready",
                    shared=True,
                )
            )
            for c in range(n)
        ]
        self.bus = [
            StreamMonitor(
                SlicePort(
                    f"ch{c}.cmd", self.snap, c, "cmd_valid_o", [("cmd_o", cw), ("cmd_data_o", dw)]
                ),
                quiet=True,
            )
            for c in range(n)
        ]
        self.mem = [ChannelResponder(cfg, rng) for _ in range(n)]
        self.resp_ready_prob = 1.0
        self.error: BaseException | None = None
        self.waiters: list[Event] = []  # woken on an error
        # monitor hooks (set by the monitors)
        self.on_host: Callable[[int, tuple[int, int, int]], None] = lambda c, cmd: None
        self.on_resp: Callable[[int, Response], None] = lambda c, r: None
        self.on_inst: Callable[[int, int], None] = lambda c, w: None
        self.on_out: Callable[[int, int], None] = lambda c, w: None
        self.on_err: Callable[[int, int], None] = lambda c, code: None
        self.on_accept: Callable[[int, int, int], None] = lambda ch, c, w: None
        self.on_cmd: Callable[[int, int, Any], None] = lambda ch, c, cmd: None
        #: test hook, called every sampled cycle (a test makes the BFM see an error with it)
        self.fault: Callable[[int], None] | None = None
        self.busy = False
        self._rd_prev = False

    async def reset(self, mode: Mode) -> None:
        d = self.dut
        d.rst_ni.value = 0
        for sig in (
            d.host_valid_i,
            d.inst_valid_i,
            d.rd_valid_i,
            d.rd_data_i,
            d.gpr_rd_data_i,
            d.host_op_i,
            d.host_req_i,
            d.host_arg_i,
            d.inst_i,
        ):
            sig.value = 0
        d.resp_ready_i.value = 1
        d.mode_i.value = MODE_CODE[mode]
        for _ in range(3):
            await RisingEdge(d.clk_i)
        d.rst_ni.value = 1

    async def run(self) -> None:
        d = self.dut
        while True:
            self.host.drive()
            self.inst.drive()
            d.resp_ready_i.value = int(self.rng.random() < self.resp_ready_prob)
            await FallingEdge(d.clk_i)
            try:
                self._sample(self.cycle)
            except BaseException as exc:  # noqa: B036 - re-raised by the waiting coroutine
                self.fail(exc)
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    def _sample(self, c: int) -> None:
        d, snap = self.dut, self.snap
        snap.read()
        got = self.host.sample(c)
        if got is not None:
            self.on_host(c, got)
        w = self.inst.sample(c)
        if w is not None:
            self.on_inst(c, w)
        r = self.resp.sample(c)
        if r is not None:
            self.on_resp(c, Response(DpaStatus(r[0]), r[1], r[2]))
        if d.err_valid_o.value:
            self.on_err(c, d.err_code_o.value.to_unsigned())
        for ch in range(self.n):  # the channels' takes before the word leaves dpa_ctrl
            w = self.sched_in[ch].sample(c)
            if w is not None:
                self.on_accept(ch, c, w)
        w = self.dpa_out.sample(c)
        if w is not None:
            self.on_out(c, w)
        for ch in range(self.n):
            bus = self.bus[ch].sample(c)
            if bus is not None:
                self.on_cmd(ch, c, self.mem[ch].command(c, *bus))
        self._gpr_ports()
        self._returns(c)
        self.busy = bool(d.sched_busy_o.value.to_unsigned())
        if d.sched_err_o.value.to_unsigned() or d.route_err_o.value:
            raise TopMismatch(
                f"cycle {c}: scheduler error flags {d.sched_err_o.value} "
                f"route_err {d.route_err_o.value}"
            )
        if self.fault is not None:
            self.fault(c)

    def _gpr_ports(self) -> None:
        v, dw, gw = self.snap.v, self.dw, self.gw
        dmask, gmask = (1 << dw) - 1, (1 << gw) - 1
        if v["gpr_wr_en_o"]:
            for ch in range(self.n):
                if v["gpr_wr_en_o"] >> ch & 1:
                    a = (v["gpr_wr_addr_o"] >> (ch * gw)) & gmask
                    lanes = int_to_lanes((v["gpr_wr_data_o"] >> (ch * dw)) & dmask, self.lanes)
                    self.mem[ch].gpr[a] = np.asarray(lanes, dtype=np.uint16)
        if v["gpr_rd_en_o"]:
            val = 0
            for ch in range(self.n):
                if v["gpr_rd_en_o"] >> ch & 1:
                    e = self.mem[ch].gpr.get((v["gpr_rd_addr_o"] >> (ch * gw)) & gmask)
                    if e is not None:
                        val |= lanes_to_int(e) << (ch * dw)
            self.dut.gpr_rd_data_i.value = val

    def _returns(self, c: int) -> None:
        rv, rdat = 0, 0
        for ch in range(self.n):
            data = self.mem[ch].due(c)
            if data is not None:
                rv |= 1 << ch
                rdat |= data << (ch * self.dw)
        if rv or self._rd_prev:
            self.dut.rd_valid_i.value = rv
            self.dut.rd_data_i.value = rdat
        self._rd_prev = bool(rv)

    def fail(self, exc: BaseException) -> None:
        """Record the first error and wake everyone waiting (they re-raise it)."""
        if self.error is None:
            self.error = exc
        for ev in self.waiters:
            ev.set()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    @property
    def drained(self) -> bool:
        return (
            not self.inst.busy
            and not self.host.busy
            and bool(self.dut.host_ready_o.value)
            and not self.busy
            and not any(m.returns for m in self.mem)
        )


# ------------------------------------------------------------------------------------- agents


class StreamItem(uvm_sequence_item):
    """One stream payload and the idle cycles before it."""

    def __init__(self, name: str, payload: Any, idle: int = 0) -> None:
        super().__init__(name)
        self.payload, self.idle = payload, idle


class HostCmdSeq(uvm_sequence):
    """One host command (op, req, arg)."""

    def __init__(self, name: str, cmd: tuple[int, int, int]) -> None:
        super().__init__(name)
        self.cmd = cmd

    async def body(self) -> None:
        item = StreamItem("cmd", self.cmd)
        await self.start_item(item)
        await self.finish_item(item)


class ProgramSeq(uvm_sequence):
    """Instruction words in order, each after 1..4 idle cycles with probability ``idle_prob``."""

    def __init__(self, name: str, words: list[int], idle_prob: float, rng: random.Random):
        super().__init__(name)
        self.words, self.idle_prob, self.rng = words, idle_prob, rng

    async def body(self) -> None:
        for k, w in enumerate(self.words):
            idle = self.rng.randint(1, 4) if self.rng.random() < self.idle_prob else 0
            item = StreamItem(f"w{k}", w, idle)
            await self.start_item(item)
            await self.finish_item(item)


class HostDriver(StreamSeqDriver):
    driver_key = "HOST_STREAM"


class InstDriver(StreamSeqDriver):
    driver_key = "INST_STREAM"


class HostMonitor(StreamApMonitor):
    """``ap``: accepted commands (cycle, (op, req, arg)); ``resp_ap``: (cycle, Response)."""

    def build_phase(self) -> None:
        super().build_phase()
        self.resp_ap = uvm_analysis_port("resp_ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: TopBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_host = self.publish
        bfm.on_resp = lambda c, r: self.resp_ap.write((c, r))


class InstMonitor(StreamApMonitor):
    """``ap``: accepted instruction words (cycle, word)."""

    def start_of_simulation_phase(self) -> None:
        ConfigDB().get(self, "", "BFM").on_inst = self.publish


class DpaMonitor(StreamApMonitor):
    """``ap``: words leaving dpa_ctrl (cycle, word); ``err_ap``: error pulses (cycle, code)."""

    def build_phase(self) -> None:
        super().build_phase()
        self.err_ap = uvm_analysis_port("err_ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: TopBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_out = self.publish
        bfm.on_err = lambda c, code: self.err_ap.write((c, code))


class ChannelMonitor(uvm_component):
    """All channels' monitors in one (the BFM reports per channel): ``accept_ap`` (channel,
    cycle, word) for words a scheduler took, ``cmd_ap`` (channel, model cycle, Command)."""

    def build_phase(self) -> None:
        self.accept_ap = uvm_analysis_port("accept_ap", self)
        self.cmd_ap = uvm_analysis_port("cmd_ap", self)

    def start_of_simulation_phase(self) -> None:
        bfm: TopBfm = ConfigDB().get(self, "", "BFM")
        bfm.on_accept = lambda ch, c, w: self.accept_ap.write((ch, c, w))
        bfm.on_cmd = lambda ch, c, cmd: self.cmd_ap.write((ch, c - BUS_OFFSET, cmd))


class _StreamAgent(uvm_agent):
    driver_cls: Any = None
    monitor_cls: Any = None

    def build_phase(self) -> None:
        super().build_phase()
        self.seqr = uvm_sequencer("seqr", self)
        self.driver = self.driver_cls("driver", self)
        self.monitor = self.monitor_cls("monitor", self)

    def connect_phase(self) -> None:
        self.driver.seq_item_port.connect(self.seqr.seq_item_export)


class HostAgent(_StreamAgent):
    driver_cls, monitor_cls = HostDriver, HostMonitor


class InstAgent(_StreamAgent):
    driver_cls, monitor_cls = InstDriver, InstMonitor


class ChannelAgent(uvm_agent):
    """The channels' side: monitor (accepted words, bus commands) and the responders (memory,
    GPR, RDMAC returns; owned by the BFM, which answers the ports within the cycle)."""

    def build_phase(self) -> None:
        super().build_phase()
        self.monitor = ChannelMonitor("monitor", self)
        self.responders: list[ChannelResponder] = ConfigDB().get(self, "", "BFM").mem


# ------------------------------------------------------------------------------------- scoreboards


class _Export(uvm_subscriber):
    """Calls ``fn(*transaction)``; ``fn`` may be set after the build (the backend's taps)."""

    def __init__(self, name: str, parent: Any, fn: Callable[..., None] = lambda *t: None) -> None:
        super().__init__(name, parent)
        self.fn = fn

    def write(self, t: Any) -> None:
        self.fn(*t)


class DpaSb(uvm_scoreboard):
    """``scoreboards.dpa.DpaScoreboard`` on dpa_ctrl inside the module."""

    def build_phase(self) -> None:
        self.sb = DpaScoreboard(ConfigDB().get(self, "", "CFG"))
        self.host = _Export(
            "host", self, lambda c, cmd: self.sb.host_cmd(cmd[0], cmd[1], cmd[2], c)
        )
        self.resp = _Export(
            "resp", self, lambda c, r: self.sb.host_resp(int(r.status), r.channel, r.row, c)
        )
        self.inst = _Export("inst", self, lambda c, w: self.sb.inst_in(w, c))
        self.out = _Export("out", self, lambda c, w: self.sb.out_word(w, c))
        self.err = _Export("err", self, lambda c, code: self.sb.error(code, c))


class RouteSb(uvm_scoreboard):
    """The router: a word leaves dpa_ctrl only once every channel its ch_mask names took it,
    each exactly once; no channel outside the mask takes it."""

    def build_phase(self) -> None:
        self.cfg: PimConfig = ConfigDB().get(self, "", "CFG")
        self.n = self.cfg.module.channels
        self.takers = 0
        self.words = 0
        self.accept = _Export("accept", self, self._accept)
        self.out = _Export("out", self, self._out)

    def _mask(self, word: int) -> int:
        return decode_inst(word, self.cfg).ch_mask

    def _accept(self, ch: int, c: int, word: int) -> None:
        if not self._mask(word) >> ch & 1:
            raise TopMismatch(
                f"channel {ch} cycle {c}: took {decode_inst(word, self.cfg)}, "
                "whose ch_mask does not name it"
            )
        if self.takers >> ch & 1:
            raise TopMismatch(f"channel {ch} cycle {c}: took the same word twice")
        self.takers |= 1 << ch

    def _out(self, c: int, word: int) -> None:
        missing = self._mask(word) & ~self.takers
        if missing:
            raise TopMismatch(
                f"cycle {c}: word left dpa_ctrl before channel(s) "
                f"{[ch for ch in range(self.n) if missing >> ch & 1]} took it"
            )
        self.takers = 0
        self.words += 1


class SchedSb(uvm_scoreboard):
    """Per channel ``scoreboards.cmd_sched.SchedLockstep``; the backend opens and checks each
    program (:meth:`begin`, :meth:`check`)."""

    def build_phase(self) -> None:
        self.cfg: PimConfig = ConfigDB().get(self, "", "CFG")
        n = self.cfg.module.channels
        self.lock = [SchedLockstep(self.cfg, bench_mode(), f"channel {c}") for c in range(n)]
        self.accept = _Export(
            "accept", self, lambda ch, c, w: self.lock[ch].accept(c, decode_inst(w, self.cfg))
        )
        self.cmd = _Export("cmd", self, lambda ch, mc, cmd: self.lock[ch].observe(mc, cmd))


class TopEnv(uvm_env):
    def build_phase(self) -> None:
        self.host = HostAgent("host", self)
        self.inst = InstAgent("inst", self)
        self.dpa = DpaMonitor("dpa", self)
        self.chans = ChannelAgent("chans", self)
        self.dpa_sb = DpaSb("dpa_sb", self)
        self.route_sb = RouteSb("route_sb", self)
        lockstep = ConfigDB().get(self, "", "LOCKSTEP")
        self.sched_sb = SchedSb("sched_sb", self) if lockstep else None
        # the sequence layer's view (RtlBackend sets their functions)
        self.resp_tap = _Export("resp_tap", self)
        self.accept_tap = _Export("accept_tap", self)
        self.err_tap = _Export("err_tap", self)

    def connect_phase(self) -> None:
        hm, ch = self.host.monitor, self.chans.monitor
        hm.ap.connect(self.dpa_sb.host.analysis_export)
        hm.resp_ap.connect(self.dpa_sb.resp.analysis_export)
        self.inst.monitor.ap.connect(self.dpa_sb.inst.analysis_export)
        self.dpa.ap.connect(self.dpa_sb.out.analysis_export)
        self.dpa.err_ap.connect(self.dpa_sb.err.analysis_export)
        ch.accept_ap.connect(self.route_sb.accept.analysis_export)
        self.dpa.ap.connect(self.route_sb.out.analysis_export)
        if self.sched_sb is not None:
            ch.accept_ap.connect(self.sched_sb.accept.analysis_export)
            ch.cmd_ap.connect(self.sched_sb.cmd.analysis_export)
        hm.resp_ap.connect(self.resp_tap.analysis_export)
        ch.accept_ap.connect(self.accept_tap.analysis_export)
        self.dpa.err_ap.connect(self.err_tap.analysis_export)


# ------------------------------------------------------------------------------------- backend


class RtlBackend:
    """:class:`pymodel.golden.decode.Backend` on the environment (module docstring)."""

    def __init__(self, env: TopEnv, bfm: TopBfm, cfg: PimConfig, rng: random.Random) -> None:
        self.env, self.bfm, self.cfg, self.n, self.rng = env, bfm, cfg, bfm.n, rng
        self.gpr = [m.gpr for m in bfm.mem]
        self.model = DpaModel(cfg)  # mirror of dpa_ctrl (expected expansion per program)
        self.idle_prob = 0.0
        self.programs = 0
        self.accepted: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]
        self.errors: list[tuple[int, int]] = []  # (cycle, code) of dpa_ctrl's error pulses
        self.stalls = [0] * self.n
        #: verification only: :meth:`run` returns once every channel has taken its words,
        #: without waiting for the channels to finish them (a wrong barrier the output
        #: comparison must catch: test_top.run_planted_barrier)
        self.plant_early_barrier = False
        self._resp: deque[tuple[list[Response], Event]] = deque()
        env.resp_tap.fn, env.accept_tap.fn, env.err_tap.fn = (
            self._response,
            self._accepted,
            self._error,
        )

    @property
    def lock(self) -> list[SchedLockstep] | None:
        sb = self.env.sched_sb
        return sb.lock if sb is not None else None

    @property
    def host_waiting(self) -> bool:
        """A host command is waiting for its response."""
        return bool(self._resp)

    def _response(self, c: int, r: Response) -> None:
        if not self._resp:
            raise TopMismatch(f"cycle {c}: response {r} with no command waiting")
        res, ev = self._resp.popleft()
        res.append(r)
        ev.set()

    def _accepted(self, ch: int, c: int, w: int) -> None:
        self.accepted[ch].append((c, w))

    def _error(self, c: int, code: int) -> None:
        self.errors.append((c, code))

    async def host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        res: list[Response] = []
        ev = Event()
        self._resp.append((res, ev))
        self.bfm.waiters.append(ev)
        await HostCmdSeq("host", (int(op), req, arg)).start(self.env.host.seqr)
        await ev.wait()
        self.bfm.waiters.remove(ev)
        self.bfm.raise_error()
        exp = self.model.host(op, req, arg)
        if res[0] != exp:
            raise TopMismatch(
                f"cycle {self.bfm.cycle}: host {op.name} req={req} arg={arg}: "
                f"DUT {res[0]}, pymodel.golden.dpa {exp}"
            )
        return res[0]

    async def run(self, prog: Sequence[Instruction], stats: StepStats) -> None:
        """The program through the instruction port up to its first failing instruction (as
        ``pymodel.golden.dpa.expand_prefix``); raises that instruction's typed error after the DUT
        reported it with the same code."""
        bfm, n = self.bfm, self.n
        words, used, err = expand_prefix(self.model, prog)
        expected = split(words, n)
        base = [len(a) for a in self.accepted]
        errs0 = len(self.errors)
        cmds0 = sum(len(m.trace) for m in bfm.mem)
        stalls0 = [m.stalls for m in bfm.sched_in]
        if self.lock is not None:
            for c in range(n):
                self.lock[c].begin(bfm.mem[c].gpr)
        seq = ProgramSeq(
            "prog", [encode_inst(i, self.cfg) for i in prog[:used]], self.idle_prob, self.rng
        )
        sent = Event()
        bfm.waiters.append(sent)

        async def feed() -> None:
            await seq.start(self.env.inst.seqr)
            sent.set()

        cocotb.start_soon(feed())
        budget = 400 * len(words) + 4 * self.cfg.timing.nREFI + 64 * used
        waited = quiet = 0
        while True:
            await RisingEdge(bfm.dut.clk_i)
            bfm.raise_error()
            waited += 1
            done = sent.is_set() and all(
                len(self.accepted[c]) - base[c] >= len(expected[c]) for c in range(n)
            )
            if done and self.plant_early_barrier:
                break
            quiet = quiet + 1 if sent.is_set() and bfm.drained else 0
            # finished (quiet for a few cycles: dpa_ctrl leaves its idle state only in the cycle
            # after it took the last word, e.g. an APPEND whose error comes later), or stuck
            if (done and quiet > 2) or quiet > 16:
                break
            if waited > budget:
                self._compare(expected, base)
                raise TopMismatch(f"cycle {bfm.cycle}: not drained after {budget} cycles")
        bfm.waiters.remove(sent)
        for _ in range(4):  # last decided command reaches the bus; last GPR write lands
            await RisingEdge(bfm.dut.clk_i)
        bfm.raise_error()
        got_errs = [code for _, code in self.errors[errs0:]]
        want_errs = [int(err.status)] if err is not None else []
        if got_errs != want_errs:
            raise TopMismatch(
                f"dpa_ctrl error pulses {self.errors[errs0:]} (cycle, code), "
                f"expected codes {want_errs} ({err!r})"
            )
        self._compare(expected, base)
        self._check_free()
        if self.lock is not None:
            for c in range(n):
                self.lock[c].check()
        self.programs += 1
        self.stalls = [
            s + m.stalls - s0 for s, m, s0 in zip(self.stalls, bfm.sched_in, stalls0, strict=True)
        ]
        stats.instructions += len(words)
        stats.commands += sum(len(m.trace) for m in bfm.mem) - cmds0
        if err is not None:
            raise err

    def _check_free(self) -> None:
        free = self.bfm.dut.free_chunks_o.value.to_unsigned()
        self.env.dpa_sb.sb.free_chunks(free, self.bfm.cycle)
        if free != self.model.free_chunks:
            raise TopMismatch(
                f"cycle {self.bfm.cycle}: DUT {free} free chunks, mirror {self.model.free_chunks}"
            )

    def _compare(self, expected: list[list[Instruction]], base: list[int]) -> None:
        for c in range(self.n):
            got = self.accepted[c][base[c] :]
            for k, exp in enumerate(expected[c]):
                if k >= len(got):
                    last = f"cycle {got[-1][0]}" if got else "never"
                    raise TopMismatch(
                        f"channel {c} cycle {self.bfm.cycle}: scheduler never "
                        f"accepted instruction #{k} of the program ({exp}); it took "
                        f"{len(got)} of {len(expected[c])} (last one: {last})"
                    )
                inst = decode_inst(got[k][1], self.cfg)
                if inst != exp:
                    raise TopMismatch(
                        f"channel {c} cycle {got[k][0]}: scheduler accepted {inst}, "
                        f"expected instruction #{k} {exp}"
                    )
            if len(got) > len(expected[c]):
                cyc, w = got[len(expected[c])]
                raise TopMismatch(
                    f"channel {c} cycle {cyc}: extra instruction {decode_inst(w, self.cfg)}"
                )

    def load_row(self, ch: int, row: int, data: U16) -> None:
        self.bfm.mem[ch].bus.ch.load_row(row, data)
        if self.lock is not None:
            self.lock[ch].load_row(row, data)

    def clocks(self) -> list[int]:
        return [self.bfm.cycle] * self.n
