"""Module co-simulation: real attention decode steps through ``rtl/top/pim_top.sv``.

The orchestration is :class:`pymodel.golden.decode.DecodeEngine` (the same code as the pure-pymodel
``DecodeModule``) on :class:`RtlBackend`:

* host commands (OPEN/GROW/CLOSE/TRANSLATE) go through the DUT's host port (dpa_ctrl); every
  response is checked against a mirror ``DpaModel`` (and by the engine);
* programs (QK^T / SV DYN_LOOP templates over softmax segments, one APPEND instruction per KV
  head and step) go into the DUT's instruction port, are expanded by the RTL dpa_ctrl (APPEND:
  the controller grows the request and forms the K/V WR_BANK words itself) and routed by
  ch_mask to the channel schedulers; per
  channel the instructions each scheduler accepted must equal ``pymodel.golden.dpa``'s expansion
  split by ch_mask (:class:`TopMismatch` names the channel, the instruction and the cycle);
* behind each scheduler a golden :class:`pymodel.golden.channel.Channel` (``scoreboards.cmd_sched.
  BusChannel``, raises on any timing or state violation) returns RDMAC data with random in-order
  latency; a Python GPR per channel answers the read port and takes the write port;
* each scheduler is in lockstep with ``pymodel.golden.sched`` (:class:`scoreboards.cmd_sched.
  SchedLockstep`: same commands at the same cycles, program by program);
* the softmax and the cross-channel SV reduction are the engine's (HUB/EPU, Python).

The attention outputs must equal the pure-pymodel run with the same seed bit for bit, and numpy
float32 within ``attention_error_bound``. Each channel's command trace is written to
``<test dir>/trace_ch<c>.txt`` (``pimphony timeline``). Seed: env ``SEED`` (logged; the data seed
and the stimulus seed). Config: env ``PIMPHONY_CONFIG`` (the DUT's pim_pkg was generated from it).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
import pytest
from bench_seed import bench_seed
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, RisingEdge

from pymodel.config import PimConfig, resolve
from pymodel.golden.bf16 import U16, from_bf16, random_bf16
from pymodel.golden.decode import (
    AttnShape,
    DecodeEngine,
    ReferenceBackend,
    StepStats,
    reference_attention,
    run_sync,
    split,
)
from pymodel.golden.dpa import DpaModel, DpaStatus, HostOp, OutOfMemory, Response, expand
from pymodel.golden.sched import MODE_CODE, Mode
from pymodel.isa import Instruction, TraceEntry, decode_inst, encode_inst, write_trace
from scoreboards.cmd_sched import (
    BUS_OFFSET,
    BusChannel,
    SchedLockstep,
    int_to_lanes,
    lanes_to_int,
)

CLK_NS = 2
#: Every test fails (never hangs) after this much simulated time (run_decode needs well under a
#: tenth of it).
TIMEOUT_MS = float(os.environ.get("TOP_TIMEOUT_MS", "50"))
SHAPE = AttnShape(q_heads=4, kv_heads=2)  # GQA group 2, d_head 128


class TopMismatch(AssertionError):
    """The DUT's routing / DPA answers differ from pymodel."""


def bench_mode() -> Mode:
    """Scheduler mode of every channel: env ``TOP_MODE`` (static, pingpong, dcs; default dcs)."""
    return Mode(os.environ.get("TOP_MODE", "dcs"))



# ------------------------------------------------------------------------------------- BFM


class TopBfm:
    """Owns every DUT pin; one coroutine per cycle: drive after the rising edge, sample at the
    falling edge (then answer the GPR read ports and return RDMAC data)."""

    def __init__(self, dut: Any, cfg: PimConfig, rng: random.Random) -> None:
        self.dut, self.cfg, self.rng = dut, cfg, rng
        self.n = cfg.module.channels
        self.lanes = cfg.geometry.lanes
        self.cw = len(dut.cmd_o) // self.n  # command word width
        self.dw = self.cfg.geometry.column_bytes * 8
        self.gw = len(dut.gpr_rd_addr_o) // self.n
        self.cycle = 0
        self.idle_prob = 0.0
        self.ret_lat = (0, 3)
        self.host_q: deque[tuple[int, int, int, list[Response], Event]] = deque()
        self.waiters: deque[tuple[list[Response], Event]] = deque()
        self.host_cur: tuple[int, int, int, list[Response], Event] | None = None  # offered
        self.inst_q: deque[int] = deque()
        self.returns: list[deque[tuple[int, int]]] = [deque() for _ in range(self.n)]
        self.gpr: list[dict[int, U16]] = [{} for _ in range(self.n)]
        self.bus = [BusChannel(cfg) for _ in range(self.n)]
        self.lock: list[SchedLockstep] | None = None
        self.accepted: list[list[tuple[int, int]]] = [[] for _ in range(self.n)]  # (cycle, word)
        self.trace: list[list[TraceEntry]] = [[] for _ in range(self.n)]
        self.dpa_errors: list[tuple[int, int]] = []
        self.error: BaseException | None = None
        #: test hook, called every sampled cycle (a test makes the BFM see an error with it)
        self.fault: Callable[[int], None] | None = None
        self.host_ready = self.busy = self.inst_pending = False
        self._rd_prev = False

    async def reset(self) -> None:
        d = self.dut
        d.rst_ni.value = 0
        for sig in (d.host_valid_i, d.inst_valid_i, d.rd_valid_i, d.rd_data_i, d.gpr_rd_data_i,
                    d.host_op_i, d.host_req_i, d.host_arg_i, d.inst_i):
            sig.value = 0
        d.resp_ready_i.value = 1
        d.mode_i.value = MODE_CODE[bench_mode()]
        for _ in range(3):
            await RisingEdge(d.clk_i)
        d.rst_ni.value = 1
        cocotb.start_soon(self._run())

    async def _run(self) -> None:  # noqa: C901 - the BFM cycle loop; split pending (issue 16)
        d, n = self.dut, self.n
        inst_cur: int | None = None
        idle = 0
        host_was_valid = False
        cmask, dmask, gmask = (1 << self.cw) - 1, (1 << self.dw) - 1, (1 << self.gw) - 1
        while True:
            # ---- drive (start of cycle self.cycle)
            if self.host_cur is None and self.host_q:
                self.host_cur = self.host_q.popleft()
                d.host_op_i.value, d.host_req_i.value, d.host_arg_i.value = self.host_cur[:3]
                d.host_valid_i.value = 1
            elif self.host_cur is None and host_was_valid:
                d.host_valid_i.value = 0
            host_was_valid = self.host_cur is not None
            if inst_cur is None and self.inst_q:
                inst_cur = self.inst_q.popleft()
                idle = self.rng.randint(1, 4) if self.rng.random() < self.idle_prob else 0
            inst_valid = inst_cur is not None and idle == 0
            if idle:
                idle -= 1
            d.inst_valid_i.value = int(inst_valid)
            if inst_valid:
                d.inst_i.value = inst_cur
            await FallingEdge(d.clk_i)
            # ---- sample
            try:
                c = self.cycle
                if self.host_cur is not None and d.host_ready_o.value:
                    self.waiters.append((self.host_cur[3], self.host_cur[4]))
                    self.host_cur = None
                if d.resp_valid_o.value:
                    res, ev = self.waiters.popleft()
                    res.append(Response(DpaStatus(d.resp_status_o.value.to_unsigned()),
                                        d.resp_chan_o.value.to_unsigned(),
                                        d.resp_row_o.value.to_unsigned()))
                    ev.set()
                if inst_valid and d.inst_ready_o.value:
                    inst_cur = None
                if d.err_valid_o.value:
                    self.dpa_errors.append((c, d.err_code_o.value.to_unsigned()))
                took = d.sched_valid.value.to_unsigned() & d.sched_ready.value.to_unsigned()
                if took:
                    word = d.dpa_out.value.to_unsigned()
                    inst = decode_inst(word, self.cfg)
                    for ch in range(n):
                        if took >> ch & 1:
                            self.accepted[ch].append((c, word))
                            if self.lock is not None:
                                self.lock[ch].accept(c, inst)
                cv = d.cmd_valid_o.value.to_unsigned()
                datas = d.cmd_data_o.value.to_unsigned()
                for ch in range(n):  # quiet bus: no write data without a command
                    if not cv >> ch & 1 and (datas >> (ch * self.dw)) & dmask:
                        raise TopMismatch(f"channel {ch} cycle {c}: cmd_data_o is nonzero while "
                                          "cmd_valid_o is low")
                if cv:
                    words = d.cmd_o.value.to_unsigned()
                    for ch in range(n):
                        if cv >> ch & 1:
                            mc = c - BUS_OFFSET
                            cmd, rd = self.bus[ch].command(
                                mc, (words >> (ch * self.cw)) & cmask,
                                (datas >> (ch * self.dw)) & dmask)
                            self.trace[ch].append(TraceEntry(mc, cmd))
                            if self.lock is not None:
                                self.lock[ch].observe(mc, cmd)
                            if rd is not None:
                                q = self.returns[ch]
                                at = c + self.rng.randint(*self.ret_lat)
                                if q:
                                    at = max(at, q[-1][0] + 1)
                                q.append((at, lanes_to_int(rd)))
                wen = d.gpr_wr_en_o.value.to_unsigned()
                if wen:
                    addrs = d.gpr_wr_addr_o.value.to_unsigned()
                    datas = d.gpr_wr_data_o.value.to_unsigned()
                    for ch in range(n):
                        if wen >> ch & 1:
                            a = (addrs >> (ch * self.gw)) & gmask
                            v = int_to_lanes((datas >> (ch * self.dw)) & dmask, self.lanes)
                            self.gpr[ch][a] = np.asarray(v, dtype=np.uint16)
                ren = d.gpr_rd_en_o.value.to_unsigned()
                if ren:
                    addrs = d.gpr_rd_addr_o.value.to_unsigned()
                    val = 0
                    for ch in range(n):
                        if ren >> ch & 1:
                            e = self.gpr[ch].get((addrs >> (ch * self.gw)) & gmask)
                            if e is not None:
                                val |= lanes_to_int(e) << (ch * self.dw)
                    d.gpr_rd_data_i.value = val
                rv, rdat = 0, 0
                for ch in range(n):
                    q = self.returns[ch]
                    if q and q[0][0] <= c:
                        rv |= 1 << ch
                        rdat |= q.popleft()[1] << (ch * self.dw)
                if rv or self._rd_prev:
                    d.rd_valid_i.value = rv
                    d.rd_data_i.value = rdat
                self._rd_prev = bool(rv)
                self.inst_pending = inst_cur is not None
                self.host_ready = bool(d.host_ready_o.value)
                self.busy = bool(d.sched_busy_o.value.to_unsigned())
                if d.sched_err_o.value.to_unsigned() or d.route_err_o.value:
                    raise TopMismatch(f"cycle {c}: scheduler error flags "
                                      f"{d.sched_err_o.value} route_err {d.route_err_o.value}")
                if self.fault is not None:
                    self.fault(c)
            except BaseException as exc:  # noqa: B036 - re-raised by the waiting coroutine
                self._fail(exc)
                return
            await RisingEdge(d.clk_i)
            self.cycle += 1

    def _fail(self, exc: BaseException) -> None:
        """Record the first error and wake every coroutine waiting for a host response, so it
        re-raises the error instead of waiting forever."""
        self.error = exc
        for _, _, _, _, ev in [*self.host_q, *([self.host_cur] if self.host_cur else [])]:
            ev.set()
        for _, ev in self.waiters:
            ev.set()

    @property
    def drained(self) -> bool:
        return (not self.inst_q and not self.inst_pending and self.host_ready and not self.busy
                and not any(self.returns))


# ------------------------------------------------------------------------------------- backend


class RtlBackend:
    """:class:`pymodel.golden.decode.Backend` on the DUT (see the module docstring)."""

    def __init__(self, bfm: TopBfm, cfg: PimConfig, lockstep: bool = True) -> None:
        self.bfm, self.cfg, self.n = bfm, cfg, bfm.n
        self.gpr = bfm.gpr
        self.model = DpaModel(cfg)  # mirror of dpa_ctrl (expected expansion)
        if lockstep:
            bfm.lock = [SchedLockstep(cfg, bench_mode(), f"channel {c}") for c in range(self.n)]
        self.programs = 0
        self.instructions = 0
        self.commands_seen = 0

    async def host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        res: list[Response] = []
        ev = Event()
        self.bfm.host_q.append((int(op), req, arg, res, ev))
        await ev.wait()
        self._raise_bfm()
        exp = self.model.host(op, req, arg)
        if res[0] != exp:
            raise TopMismatch(f"cycle {self.bfm.cycle}: host {op.name} req={req} arg={arg}: "
                              f"DUT {res[0]}, pymodel.golden.dpa {exp}")
        return res[0]

    def _raise_bfm(self) -> None:
        if self.bfm.error is not None:
            raise self.bfm.error

    async def run(self, prog: Sequence[Instruction], stats: StepStats) -> None:
        bfm, n = self.bfm, self.n
        expected = split(expand(self.model, prog), n)
        base = [len(a) for a in bfm.accepted]
        cmds0 = sum(len(t) for t in bfm.trace)
        if bfm.lock is not None:
            for c in range(n):
                bfm.lock[c].begin(bfm.gpr[c])
        bfm.inst_q.extend(encode_inst(i, self.cfg) for i in prog)
        budget = 400 * sum(len(e) for e in expected) + 4 * self.cfg.timing.nREFI
        waited = quiet = 0
        while True:
            await RisingEdge(bfm.dut.clk_i)
            self._raise_bfm()
            waited += 1
            done = all(len(bfm.accepted[c]) - base[c] >= len(expected[c]) for c in range(n))
            quiet = quiet + 1 if bfm.drained else 0
            if (done and quiet) or quiet > 16:  # finished, or nothing left that could move
                break
            if waited > budget:
                self._compare(expected, base)
                raise TopMismatch(f"cycle {bfm.cycle}: not drained after {budget} cycles")
        for _ in range(4):  # last decided command reaches the bus; last GPR write lands
            await RisingEdge(bfm.dut.clk_i)
        self._raise_bfm()
        if bfm.dpa_errors:
            raise TopMismatch(f"dpa_ctrl reported errors (cycle, code): {bfm.dpa_errors}")
        self._compare(expected, base)
        if bfm.lock is not None:
            for c in range(n):
                bfm.lock[c].check()
        self.programs += 1
        stats.instructions += sum(len(e) for e in expected)
        stats.commands += sum(len(t) for t in bfm.trace) - cmds0

    def _compare(self, expected: list[list[Instruction]], base: list[int]) -> None:
        for c in range(self.n):
            got = self.bfm.accepted[c][base[c]:]
            for k, exp in enumerate(expected[c]):
                if k >= len(got):
                    last = f"cycle {got[-1][0]}" if got else "never"
                    raise TopMismatch(f"channel {c} cycle {self.bfm.cycle}: scheduler never "
                                      f"accepted instruction #{k} of the program ({exp}); it took "
                                      f"{len(got)} of {len(expected[c])} (last one: {last})")
                inst = decode_inst(got[k][1], self.cfg)
                if inst != exp:
                    raise TopMismatch(f"channel {c} cycle {got[k][0]}: scheduler accepted {inst}, "
                                      f"expected instruction #{k} {exp}")
            if len(got) > len(expected[c]):
                cyc, w = got[len(expected[c])]
                raise TopMismatch(f"channel {c} cycle {cyc}: extra instruction "
                                  f"{decode_inst(w, self.cfg)}")

    def load_row(self, ch: int, row: int, data: U16) -> None:
        self.bfm.bus[ch].ch.load_row(row, data)
        if self.bfm.lock is not None:
            self.bfm.lock[ch].load_row(row, data)

    def clocks(self) -> list[int]:
        return [self.bfm.cycle] * self.n


# ------------------------------------------------------------------------------------- scenario


async def scenario(eng: DecodeEngine, log: Any, short: bool = False) -> list[dict[str, Any]]:
    """Admit 3 requests, 2 steps (a chunk boundary is crossed), close one and admit a new one in
    its chunks, a failed admission (NO_MEMORY, nothing taken), fill the memory, and a step in
    which one request runs out of memory. Returns one record per step."""
    steps: list[dict[str, Any]] = []

    async def step(tag: str) -> None:
        qs = {r: random_bf16(eng.rng, (SHAPE.q_heads, SHAPE.d_head)) for r in eng.requests}
        lengths = {r: eng.dpa.length(s.ids[0]) for r, s in eng.requests.items()}
        t0 = time.time()
        out, stats = await eng.step_async(qs)
        steps.append({"tag": tag, "queries": qs, "out": out, "stats": stats, "lengths": lengths,
                      "kv": {r: (list(s.k), list(s.v)) for r, s in eng.requests.items()}})
        log.info("step %s: lengths %s -> %d cycles, %d instructions, %d commands, %d tokens, "
                 "%d segments, out of memory %s (%.1f s wall)", tag, lengths, stats.cycles,
                 stats.instructions, stats.commands, stats.tokens, stats.segments,
                 stats.out_of_memory, time.time() - t0)

    if short:
        await eng.admit_async(0, 300)
        await step("s1")
        return steps
    await eng.admit_async(0, 255)
    await eng.admit_async(1, 1000)
    await eng.admit_async(2, 3800)
    await step("s1")
    assert steps[-1]["stats"].segments >= 2, "the long request must span softmax segments"
    await step("s2")  # request 0: 256 -> 257 tokens, a new chunk on both KV heads
    assert eng.dpa.length(eng.requests[0].ids[0]) == 257
    freed = sorted(c for i in eng.requests[1].ids for c in eng.dpa.chunks(i))
    await eng.close_async(1)
    await eng.admit_async(4, 1000)  # DPA ids 8, 9: same channels as request 1's ids 2, 3
    reused = sorted(c for i in eng.requests[4].ids for c in eng.dpa.chunks(i))
    assert reused == freed, (reused, freed)
    await step("s3")
    free = eng.dpa.free_chunks
    try:
        await eng.admit_async(3, 1024)
        raise AssertionError("admission of 2 x 4 chunks with 6 free did not fail")
    except OutOfMemory:
        pass
    assert 3 not in eng.requests and eng.dpa.free_chunks == free, "failed admission took chunks"
    await eng.admit_async(3, 768)  # takes the last 6 chunks; its next token needs a 7th
    assert eng.dpa.free_chunks == 0
    before = {r: eng.dpa.length(s.ids[0]) for r, s in eng.requests.items()}
    await step("s4")
    assert steps[-1]["stats"].out_of_memory == [3], steps[-1]["stats"].out_of_memory
    after = {r: eng.dpa.length(s.ids[0]) for r, s in eng.requests.items()}
    assert after == {r: n + (r != 3) for r, n in before.items()}
    eng.dpa.check_invariants()
    return steps


def check_float32(eng: DecodeEngine, steps: list[dict[str, Any]]) -> float:
    """Every output within the engine's segmented attention_error_bound of float64 numpy;
    returns the worst error / bound."""
    worst = 0.0
    for st in steps:
        for req, o in st["out"].items():
            ks, vs = st["kv"][req]
            for head in range(SHAPE.q_heads):
                h = head // SHAPE.group
                q = st["queries"][req][head]
                ref = reference_attention(q, ks[h], vs[h])
                bound = eng.error_bound(q, ks[h], vs[h])
                err = np.abs(from_bf16(o[head]).astype(np.float64) - ref)
                ratio = float((err / bound).max())
                assert (err <= bound).all(), (st["tag"], req, head, ratio)
                worst = max(worst, ratio)
    return worst


def compare_bit_exact(rtl: list[dict[str, Any]], ref: list[dict[str, Any]]) -> None:
    assert len(rtl) == len(ref), (len(rtl), len(ref))
    for a, b in zip(rtl, ref, strict=True):
        assert a["out"].keys() == b["out"].keys(), (a["tag"], a["out"].keys(), b["out"].keys())
        assert a["stats"].out_of_memory == b["stats"].out_of_memory
        for req in a["out"]:
            x, y = a["out"][req], b["out"][req]
            if not np.array_equal(x, y):
                head, dim = (int(v[0]) for v in np.nonzero(x != y))
                raise TopMismatch(f"step {a['tag']} request {req} head {head} dim {dim}: RTL "
                                  f"0x{int(x[head, dim]):04x}, pymodel 0x{int(y[head, dim]):04x}")


# ------------------------------------------------------------------------------------- tests


def write_traces(bfm: TopBfm, log: Any) -> None:
    """Each channel's command bus as a pymodel.isa trace (model cycles), also after a failure:
    ``pimphony timeline <dir>/trace_ch<c>.txt --config <PIMPHONY_CONFIG> -o out.png``."""
    out_dir = Path(os.environ.get("TOP_TRACE_DIR", "."))
    for c, tr in enumerate(bfm.trace):
        write_trace(out_dir / f"trace_ch{c}.txt", tr)
    log.info("command traces: %s/trace_ch{0..%d}.txt (cycle %d)", out_dir, bfm.n - 1, bfm.cycle)


async def _setup(dut: Any) -> tuple[PimConfig, int, TopBfm]:
    cfg = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
    seed = bench_seed()
    dut._log.info("config %s, %d channels, seed %d (rerun with SEED=%d)", cfg.name,
                  cfg.module.channels, seed, seed)
    assert len(dut.cmd_valid_o) == cfg.module.channels, "pim_pkg from another config"
    Clock(dut.clk_i, CLK_NS, unit="ns").start()
    bfm = TopBfm(dut, cfg, random.Random(seed))
    await bfm.reset()
    return cfg, seed, bfm


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def run_decode(dut: Any) -> None:
    """Multi-step decode with close/admit and out-of-memory, bit-exact against pymodel."""
    cfg, seed, bfm = await _setup(dut)
    log = dut._log
    t0 = time.time()
    ref_eng = DecodeEngine(cfg, SHAPE, ReferenceBackend(cfg, bench_mode()), seed)
    short = os.environ.get("TOP_SHORT", "0") == "1"  # one request, one step (quick look)
    ref = run_sync(scenario(ref_eng, log, short))
    log.info("pure-pymodel reference: %d steps in %.1f s", len(ref), time.time() - t0)
    backend = RtlBackend(bfm, cfg)
    eng = DecodeEngine(cfg, SHAPE, backend, seed)
    orig_step = eng.step_async

    async def step_with_knobs(queries: Any = None) -> Any:  # idle cycles / latency on and off
        k = len(backend_steps)
        bfm.idle_prob = (0.0, 0.25)[k % 2]
        bfm.ret_lat = ((0, 0), (0, 3))[k % 2]
        backend_steps.append(k)
        return await orig_step(queries)

    backend_steps: list[int] = []
    eng.step_async = step_with_knobs  # type: ignore[method-assign]
    try:
        rtl = await scenario(eng, log, short)
    finally:
        write_traces(bfm, log)
    compare_bit_exact(rtl, ref)
    worst = check_float32(eng, rtl)
    assert bfm.lock is not None
    lock_cmds = sum(lk.commands for lk in bfm.lock)
    lock_insts = sum(lk.instructions for lk in bfm.lock)
    tokens = sum(st["stats"].tokens for st in rtl)
    commands = sum(len(t) for t in bfm.trace)
    assert lock_cmds > 0 and commands >= lock_cmds and backend.programs > 0
    log.info("co-simulated %d decode steps: %d tokens attended, %d programs, %d scheduler "
             "instructions, %d commands (%d in lockstep with pymodel.golden.sched, %d idle "
             "refresh), %d cycles; outputs bit-exact vs pymodel; worst error vs float32 = %.3g of "
             "the bound", len(rtl), tokens, backend.programs, lock_insts, commands, lock_cmds,
             sum(lk.idle_refresh for lk in bfm.lock), bfm.cycle, worst)


@cocotb.test(skip="PIMPHONY_DECODE" not in os.environ)
async def run_cli_decode(dut: Any) -> None:
    """``pimphony decode --backend rtl``: the parameters in env ``PIMPHONY_DECODE`` (JSON), the
    same steps on the pure-pymodel reference, outputs compared bit for bit and against float64
    numpy; the figures go to the JSON file ``result`` names."""
    from pymodel.studies.decode_cli import slice_shape

    job = json.loads(os.environ["PIMPHONY_DECODE"])
    cfg, _, bfm = await _setup(dut)
    shape = slice_shape(job["model"], job["kv_heads"])
    engines = [DecodeEngine(cfg, shape, ReferenceBackend(cfg, bench_mode()), job["seed"],
                            gqa_reuse=job["gqa_reuse"])]
    backend = RtlBackend(bfm, cfg)
    engines.append(DecodeEngine(cfg, shape, backend, job["seed"], gqa_reuse=job["gqa_reuse"]))
    outs: list[list[Any]] = [[], []]
    totals = {"instructions": 0, "commands": 0, "cycles": 0, "segments": 0}
    worst = 0.0
    for e, eng in enumerate(engines):
        for r, n in enumerate(job["requests"]):
            await eng.admit_async(r, n)
        for _ in range(job["steps"]):
            out, st = await eng.step_async()
            outs[e].append(out)
            if e == 1:
                for key in totals:
                    totals[key] = (max(totals[key], st.segments) if key == "segments"
                                   else totals[key] + getattr(st, key))
                worst = max(worst, worst_vs_float64(eng, out))
    exact = all(np.array_equal(a[r], b[r]) for a, b in zip(*outs, strict=True) for r in a)
    Path(job["result"]).write_text(json.dumps({
        **totals, "max_error_over_bound": worst, "bit_exact_vs_reference": exact,
        "gqa_queries_per_loop": engines[1].reuse, "segment_blocks": engines[1].segment,
        "rtl_cycles": bfm.cycle}))
    dut._log.info("decode %s: %s, bit-exact %s", job, totals, exact)


def worst_vs_float64(eng: DecodeEngine, out: dict[int, U16]) -> float:
    from pymodel.studies.decode_cli import worst_error

    return worst_error(eng, out)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def run_bfm_error_fails(dut: Any) -> None:
    """An error the BFM sees while a host command waits for its response reaches the caller
    (the host call raises it) instead of leaving it waiting."""
    cfg, seed, bfm = await _setup(dut)
    backend = RtlBackend(bfm, cfg, lockstep=False)

    def fault(cycle: int) -> None:
        if bfm.host_q or bfm.host_cur or bfm.waiters:
            raise TopMismatch(f"cycle {cycle}: injected BFM error during a host command")

    bfm.fault = fault
    try:
        await backend.host(HostOp.OPEN, 0, 300)
    except TopMismatch as exc:
        dut._log.info("host() raised as it should: %s", exc)
        return
    raise AssertionError("host() returned although the BFM saw an error")


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms",
             skip=os.environ.get("TOP_PLANT_BUG", "0") == "0")
async def run_planted_bug(dut: Any) -> None:
    """DUT built with PlantBug=1 (the router forgets to clear a one-hot word's taken bit): the
    per-channel routing check must catch it."""
    cfg, seed, bfm = await _setup(dut)
    eng = DecodeEngine(cfg, SHAPE, RtlBackend(bfm, cfg), seed)
    try:
        await scenario(eng, dut._log, short=True)
    except AssertionError as exc:
        dut._log.info("planted bug caught: %s", exc)
        return
    finally:
        write_traces(bfm, dut._log)
    raise AssertionError("PlantBug=1 went unnoticed")


# ------------------------------------------------------------------------------------- pytest

CONFIG_TOML = (
    'preset = "aim-gddr6"\nname = "top-small"\n\n'
    "[geometry]\nrows_per_bank = 64\n\n[module]\nchannels = 3\ngpr_bytes = 6144\n\n"
    "[dpa]\nmax_requests = 16\nmax_chunks_per_request = 16\nchunk_rows = 4\n"
)

TOP_SOURCES = [
    "common/since_counter.sv",
    "common/peek_fifo.sv",
    "common/dpa_ram.sv",
    "dpa/dpa_ctrl.sv",
    "sched/sched_intake.sv",
    "sched/sched_cmd_gen.sv",
    "sched/sched_dep_check.sv",
    "sched/sched_timing.sv",
    "sched/sched_timing_check.sv",
    "sched/sched_refresh.sv",
    "sched/sched_issue.sv",
    "sched/pim_sched.sv",
    "top/pim_top.sv",
]


def _sources() -> tuple[list[Path], str]:
    import simlib

    pkg, cfg = simlib.config_package("top-small", CONFIG_TOML)
    return pkg + [simlib.RTL / s for s in TOP_SOURCES], cfg


@pytest.mark.sim
@pytest.mark.parametrize("mode", ["static", "pingpong"])
def test_top_sim_modes(mode: str, tmp_path: Path) -> None:
    """The short scenario (one request, one step) with every channel scheduler in ``mode``, in
    lockstep with pymodel.golden.sched (the full scenario runs in DCS: test_top_sim)."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("pim_top needs Verilator")
    sources, cfg = _sources()
    simlib.run(toplevel="pim_top", sources=sources, test_file=__file__, test_dir=tmp_path,
               testcase="run_decode",
               extra_env={"PIMPHONY_CONFIG": cfg, "TOP_SHORT": "1", "TOP_MODE": mode,
                          "TOP_TRACE_DIR": str(tmp_path)})


@pytest.mark.sim
@pytest.mark.skipif("PIMPHONY_DECODE" not in os.environ,
                    reason="run by pimphony decode --backend rtl (env PIMPHONY_DECODE)")
def test_top_cli_decode(tmp_path: Path) -> None:
    """The DUT built for the decode command's config (its pim_pkg generated from it)."""
    import simlib

    job = json.loads(os.environ["PIMPHONY_DECODE"])
    spec = job["config"] or "aim-gddr6"
    toml = Path(spec).read_text() if Path(spec).is_file() else f'preset = "{spec}"\n'
    name = "decode-" + simlib._tag(toml=toml)  # one build directory per distinct config
    pkg, cfg = simlib.config_package(name, toml)
    simlib.run(toplevel="pim_top", sources=pkg + [simlib.RTL / s for s in TOP_SOURCES],
               test_file=__file__, test_dir=tmp_path, testcase="run_cli_decode",
               extra_env={"PIMPHONY_CONFIG": cfg, "TOP_MODE": job["mode"],
                          "TOP_TRACE_DIR": str(tmp_path)})


@pytest.mark.sim
@pytest.mark.parametrize("plant", [0, 1], ids=["decode", "planted-bug"])
def test_top_sim(plant: int, tmp_path: Path) -> None:
    """Decode (and a BFM error during a host command must fail the test); PlantBug=1 built
    without assertions: the bench's routing check must catch it."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("pim_top needs Verilator (pim_sched: package structs Icarus 11 rejects)")
    sources, cfg = _sources()
    simlib.run(
        toplevel="pim_top",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant} if plant else {},
        testcase="run_planted_bug" if plant else ["run_decode", "run_bfm_error_fails"],
        extra_env={"PIMPHONY_CONFIG": cfg, "TOP_PLANT_BUG": str(plant),
                   "TOP_TRACE_DIR": str(tmp_path)},
        assertions=not plant,
    )


@pytest.mark.sim
def test_top_assertion_fires(tmp_path: Path, capfd: Any) -> None:
    """PlantBug=1 with the assertions on: the router's a_done_clear stops the simulation."""
    import simlib

    sources, cfg = _sources()
    simlib.expect_assertion(
        capfd, {"a_done_clear"}, toplevel="pim_top", sources=sources, test_file=__file__,
        test_dir=tmp_path, params={"PlantBug": 1}, testcase="run_planted_bug",
        extra_env={"PIMPHONY_CONFIG": cfg, "TOP_PLANT_BUG": "1", "TOP_TRACE_DIR": str(tmp_path)},
    )
