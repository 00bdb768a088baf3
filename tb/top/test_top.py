"""Module co-simulation: real attention decode steps through ``rtl/top/pim_top.sv`` (pyuvm).

The environment (agents per interface, scoreboards wrapping ``scoreboards/``, the BFM on
``tb/common/stream``) is ``top_env.py``; this file holds the scenarios and the tests. The
orchestration is :class:`pymodel.golden.decode.DecodeEngine` (the same code as the pure-pymodel
``DecodeModule``) on :class:`top_env.RtlBackend`:

* host commands (OPEN/GROW/CLOSE/TRANSLATE) go through the DUT's host port (dpa_ctrl); every
  response is checked against ``pymodel.golden.dpa`` (the backend's mirror, ``DpaScoreboard``, the
  engine);
* programs (QK^T / SV DYN_LOOP templates over softmax segments, one APPEND instruction per KV
  head and step) go into the DUT's instruction port, are expanded by the RTL dpa_ctrl and routed
  by ch_mask to the channel schedulers; per channel the instructions each scheduler accepted must
  equal ``pymodel.golden.dpa``'s expansion split by ch_mask;
* behind each scheduler a golden channel returns RDMAC data with random in-order latency, a
  Python GPR per channel answers the read port and takes the write port; each scheduler is in
  lockstep with ``pymodel.golden.sched``;
* the softmax and the cross-channel SV reduction are the engine's (HUB/EPU, Python).

The attention outputs must equal the pure-pymodel run with the same seed bit for bit, and float64
numpy within ``attention_error_bound``. Each channel's command trace is written to
``<test dir>/trace_ch<c>.txt`` (``pimphony timeline``). Seed: env ``SEED`` (logged; the data
seed and the stimulus seed). Config: env ``PIMPHONY_CONFIG`` (the DUT's pim_pkg was generated
from it). Scheduler mode: env ``TOP_MODE``. Waves (several KV heads' loops in one program,
``pymodel.golden.decode_waves``) in both engines unless env ``TOP_OVERLAP=0``.

pyuvm tests (``run_*``, each with a timeout; an error any monitor or scoreboard raises fails the
test at once): ``run_decode`` (the multi-step scenario, or the short one with ``TOP_SHORT=1``),
``run_waves`` (one program per loop, then waves, on the DUT: the same instructions, fewer
programs and RTL cycles), ``run_planted_barrier`` (a barrier that does not wait for the channels
must be caught), ``run_stall_burst`` (a word held for one channel while its queue is full),
``run_bad_input`` (typed errors and error responses, every other request intact),
``run_bfm_error_fails``, ``run_planted_bug`` (``PlantBug=1`` must be caught), ``run_cli_decode``
(``pimphony decode --backend rtl``).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
import pytest
import pyuvm
from bench_seed import bench_seed
from cocotb.clock import Clock
from pyuvm import ConfigDB, uvm_test
from top_env import RtlBackend, TopBfm, TopEnv, TopMismatch, bench_mode

from pymodel.config import PimConfig, resolve
from pymodel.golden.bf16 import from_bf16, random_bf16
from pymodel.golden.decode import (
    AttnShape,
    DecodeEngine,
    ReferenceBackend,
    StepStats,
    gpr_map,
    reference_attention,
    run_sync,
)
from pymodel.golden.dpa import (
    DpaError,
    HostOp,
    OutOfMemory,
    TooLong,
    UnknownRequest,
    append_template,
    qk_template,
)
from pymodel.isa import InstOp, Instruction, write_trace

CLK_NS = 2
#: Every test fails (never hangs) after this much simulated time (run_decode needs well under a
#: tenth of it).
TIMEOUT_MS = float(os.environ.get("TOP_TIMEOUT_MS", "50"))
SHAPE = AttnShape(q_heads=4, kv_heads=2)  # GQA group 2, d_head 128


def bench_overlap() -> bool:
    """Whether the engines put several KV heads' loops in one program (``decode_waves``; not
    to be confused with FST waveforms, ``PIMPHONY_WAVES``): env ``TOP_OVERLAP`` (default 1; 0 =
    one program per loop)."""
    return os.environ.get("TOP_OVERLAP", "1") != "0"


# ------------------------------------------------------------------------------------- scenario


async def scenario(eng: DecodeEngine, log: Any, short: bool = False) -> list[dict[str, Any]]:
    """Admit 3 requests, 2 steps (a chunk boundary is crossed), close one and admit a new one in
    its chunks, a failed admission (NO_MEMORY, nothing taken), fill the memory, and a step in
    which one request runs out of memory. Returns one record per step."""
    steps: list[dict[str, Any]] = []

    async def step(tag: str) -> None:
        steps.append(await record_step(eng, tag, log))

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
    # an APPEND into the full module (the engine never issues one): the DPA's NO_MEMORY on the
    # instruction path, nothing emitted or changed (the step below checks every request)
    await refused(
        OutOfMemory,
        eng.backend.run(append_template(eng.requests[3].ids[0], gpr_map(eng.cfg)[0]), StepStats()),
        log,
    )
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
                raise TopMismatch(
                    f"step {a['tag']} request {req} head {head} dim {dim}: RTL "
                    f"0x{int(x[head, dim]):04x}, pymodel 0x{int(y[head, dim]):04x}"
                )


async def record_step(eng: DecodeEngine, tag: str, log: Any) -> dict[str, Any]:
    """One decode step with random queries; the record the checks below need."""
    qs = {r: random_bf16(eng.rng, (SHAPE.q_heads, SHAPE.d_head)) for r in eng.requests}
    lengths = {r: eng.dpa.length(s.ids[0]) for r, s in eng.requests.items()}
    t0 = time.time()
    out, stats = await eng.step_async(qs)
    log.info(
        "step %s: lengths %s -> %d cycles, %d instructions, %d commands, %d tokens, "
        "%d segments, out of memory %s (%.1f s wall)",
        tag,
        lengths,
        stats.cycles,
        stats.instructions,
        stats.commands,
        stats.tokens,
        stats.segments,
        stats.out_of_memory,
        time.time() - t0,
    )
    return {
        "tag": tag,
        "queries": qs,
        "out": out,
        "stats": stats,
        "lengths": lengths,
        "kv": {r: (list(s.k), list(s.v)) for r, s in eng.requests.items()},
    }


async def refused(error: type[DpaError], op: Awaitable[Any], log: Any) -> None:
    """``op`` must raise the typed DPA ``error`` (any other exception propagates)."""
    try:
        await op
    except error as exc:
        log.info("refused as it should: %s: %s", type(exc).__name__, exc)
        return
    raise AssertionError(f"{error.__name__} expected, the operation succeeded")


async def bad_input(eng: DecodeEngine, log: Any) -> list[dict[str, Any]]:
    """Bad input, each refused with its typed error (the RTL: the error response on the host
    port, or dpa_ctrl's instruction-path error), nothing changed: an admission longer than the
    VA2PA table maps, a step on a closed request and that request's APPEND and QK^T loop, a
    step that would grow a request past the table. Then a step of the request still open, whose
    outputs the caller checks (bit-exact against the reference, bound against float64)."""
    limit = eng.lay.max_tokens
    await eng.admit_async(0, 300)
    await eng.admit_async(1, 1000)
    free = eng.dpa.free_chunks
    await refused(TooLong, eng.admit_async(2, limit + 1), log)
    assert 2 not in eng.requests and eng.dpa.free_chunks == free, "a refused OPEN took chunks"
    closed = eng.requests[1].ids[0]
    await eng.close_async(1)
    q = random_bf16(eng.rng, (SHAPE.q_heads, SHAPE.d_head))
    await refused(UnknownRequest, eng.step_async({0: q, 1: q}), log)
    await refused(
        UnknownRequest,
        eng.backend.run(append_template(closed, gpr_map(eng.cfg)[0]), StepStats()),
        log,
    )
    await refused(UnknownRequest, eng.backend.run(qk_template(eng.cfg, closed), StepStats()), log)
    await eng.admit_async(3, limit)  # as long as the table maps: no room for one more token
    length0 = eng.dpa.length(eng.requests[0].ids[0])
    await refused(TooLong, eng.step_async(), log)
    assert eng.dpa.length(eng.requests[0].ids[0]) == length0, "a refused step grew a request"
    await eng.close_async(3)
    eng.dpa.check_invariants()
    return [await record_step(eng, "after", log)]


# ------------------------------------------------------------------------------------- tests


def write_traces(bfm: TopBfm, log: Any) -> None:
    """Each channel's command bus as a pymodel.isa trace (model cycles), also after a failure:
    ``pimphony timeline <dir>/trace_ch<c>.txt --config <PIMPHONY_CONFIG> -o out.png``."""
    out_dir = Path(os.environ.get("TOP_TRACE_DIR", "."))
    for c, m in enumerate(bfm.mem):
        write_trace(out_dir / f"trace_ch{c}.txt", m.trace)
    log.info("command traces: %s/trace_ch{0..%d}.txt (cycle %d)", out_dir, bfm.n - 1, bfm.cycle)


class TopTest(uvm_test):
    """Base: config, BFM and environment; clock, reset, the BFM's cycle loop and the backend;
    subclasses implement :meth:`body`. ``lockstep``: the schedulers' lockstep scoreboard."""

    lockstep = True

    def build_phase(self) -> None:
        self.dut = cocotb.top
        self.cfg: PimConfig = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
        self.seed = bench_seed()
        self.rng = random.Random(self.seed)
        self.bfm = TopBfm(self.dut, self.cfg, self.rng)
        for key, val in (
            ("BFM", self.bfm),
            ("CFG", self.cfg),
            ("CLK", self.dut.clk_i),
            ("HOST_STREAM", self.bfm.host),
            ("INST_STREAM", self.bfm.inst),
            ("LOCKSTEP", self.lockstep),
        ):
            ConfigDB().set(None, "*", key, val)
        self.env = TopEnv("env", self)

    @property
    def log(self) -> Any:
        return self.dut._log

    async def run_phase(self) -> None:
        self.raise_objection()
        self.log.info(
            "config %s, %d channels, mode %s, seed %d (rerun with SEED=%d)",
            self.cfg.name,
            self.cfg.module.channels,
            bench_mode().value,
            self.seed,
            self.seed,
        )
        assert len(self.dut.cmd_valid_o) == self.cfg.module.channels, "pim_pkg of another config"
        Clock(self.dut.clk_i, CLK_NS, unit="ns").start()
        await self.bfm.reset(bench_mode())
        loop = cocotb.start_soon(self.bfm.run())
        self.backend = RtlBackend(self.env, self.bfm, self.cfg, self.rng)
        try:
            await self.body()
            self.bfm.raise_error()
            self.env.dpa_sb.sb.drain()
            self.log.info(
                "%s: DPA %s; router: %d words",
                type(self).__name__,
                self.env.dpa_sb.sb.summary(),
                self.env.route_sb.words,
            )
        finally:
            write_traces(self.bfm, self.log)
            loop.cancel()
        self.drop_objection()

    async def body(self) -> None:
        raise NotImplementedError

    def set_knobs(self, k: int) -> None:
        """Stimulus of step ``k``: idle cycles, RDMAC latency and response backpressure on
        (odd steps) and off (even steps)."""
        self.backend.idle_prob = (0.0, 0.25)[k % 2]
        self.bfm.resp_ready_prob = (1.0, 0.7)[k % 2]
        for m in self.bfm.mem:
            m.ret_lat = ((0, 0), (0, 3))[k % 2]

    def engine(self, shape: AttnShape = SHAPE, **kw: Any) -> DecodeEngine:
        """A DecodeEngine on the DUT whose steps alternate the stimulus knobs (waves unless
        env ``TOP_OVERLAP=0``, like :meth:`reference`)."""
        kw.setdefault("overlap", bench_overlap())
        eng = DecodeEngine(self.cfg, shape, self.backend, self.seed, **kw)
        orig = eng.step_async
        steps = [0]

        async def step_with_knobs(queries: Any = None) -> Any:
            self.set_knobs(steps[0])
            steps[0] += 1
            return await orig(queries)

        eng.step_async = step_with_knobs  # type: ignore[method-assign]
        return eng

    def reference(self, shape: AttnShape = SHAPE, **kw: Any) -> DecodeEngine:
        kw.setdefault("overlap", bench_overlap())
        return DecodeEngine(
            self.cfg, shape, ReferenceBackend(self.cfg, bench_mode()), self.seed, **kw
        )

    def summary(self, steps: list[dict[str, Any]], worst: float) -> None:
        lock = self.backend.lock
        assert lock is not None
        lock_cmds = sum(lk.commands for lk in lock)
        commands = sum(len(m.trace) for m in self.bfm.mem)
        assert lock_cmds > 0 and commands >= lock_cmds and self.backend.programs > 0
        self.log.info(
            "co-simulated %d decode steps: %d tokens attended, %d programs, %d scheduler "
            "instructions, %d commands (%d in lockstep with the reference scheduler, %d idle "
            "refresh), %d cycles; outputs bit-exact vs pymodel; worst error vs float64 = %.3g "
            "of the bound",
            len(steps),
            sum(st["stats"].tokens for st in steps),
            self.backend.programs,
            sum(lk.instructions for lk in lock),
            commands,
            lock_cmds,
            sum(lk.idle_refresh for lk in lock),
            self.bfm.cycle,
            worst,
        )


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_decode(TopTest):
    """Multi-step decode with close/admit and out-of-memory (or the short scenario,
    ``TOP_SHORT=1``), bit-exact against pymodel and within the bound of float64 numpy."""

    async def body(self) -> None:
        short = os.environ.get("TOP_SHORT", "0") == "1"
        t0 = time.time()
        ref = run_sync(scenario(self.reference(), self.log, short))
        self.log.info("pure-pymodel reference: %d steps in %.1f s", len(ref), time.time() - t0)
        eng = self.engine()
        rtl = await scenario(eng, self.log, short)
        compare_bit_exact(rtl, ref)
        self.summary(rtl, check_float32(eng, rtl))


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_waves(TopTest):
    """One request of 300 tokens (2 KV heads whose blocks share a channel) stepped on the DUT
    in both forms, one program per loop and then waves, each step bit-exact against the
    reference engine doing the same and within the bound: the same instructions, fewer
    programs and fewer RTL cycles with waves (the channels overlap in the DUT too)."""

    async def body(self) -> None:
        rtl_eng = DecodeEngine(self.cfg, SHAPE, self.backend, self.seed)  # no stimulus knobs
        ref_eng = self.reference()
        for eng in (rtl_eng, ref_eng):
            await eng.admit_async(0, 300)
        got: dict[bool, tuple[StepStats, int, StepStats]] = {}
        for overlap in (False, True):
            rtl_eng.overlap = ref_eng.overlap = overlap
            tag = "waves" if overlap else "sequential"
            programs = self.backend.programs
            rtl = await record_step(rtl_eng, tag, self.log)
            ref = await record_step(ref_eng, tag, self.log)
            compare_bit_exact([rtl], [ref])
            worst = check_float32(rtl_eng, [rtl])
            got[overlap] = (rtl["stats"], self.backend.programs - programs, ref["stats"])
            self.log.info(
                "%s: %d programs, %d instructions, RTL %d cycles, reference %d cycles, worst "
                "error %.3g of the bound",
                tag,
                got[overlap][1],
                rtl["stats"].instructions,
                rtl["stats"].cycles,
                ref["stats"].cycles,
                worst,
            )
        (seq, seq_progs, seq_ref), (wav, wav_progs, wav_ref) = got[False], got[True]
        # (the DUT counts dpa_ctrl's words, the reference each channel's: a broadcast once or
        # per channel, so each backend is compared with itself)
        assert wav.instructions == seq.instructions, (wav.instructions, seq.instructions)
        assert wav_ref.instructions == seq_ref.instructions
        assert wav_progs < seq_progs, (wav_progs, seq_progs)
        assert wav_ref.cycles < seq_ref.cycles, (wav_ref.cycles, seq_ref.cycles)
        assert wav.cycles < seq.cycles, f"waves took {wav.cycles} RTL cycles, loops {seq.cycles}"


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_planted_barrier(TopTest):
    """Planted: the bench's barrier returns once every channel has taken its words of a
    program, not when the channels are done (``RtlBackend.plant_early_barrier``): the HUB reads
    scores and partial sums too early and the waves' outputs must differ from the reference
    (caught by the bit-exact comparison; the lockstep scoreboard is off so it cannot catch it
    first). The GPRs start zeroed, so an early read sees a value, not a missing entry."""

    lockstep = False

    async def body(self) -> None:
        entries = self.cfg.module.gpr_bytes // self.cfg.geometry.column_bytes
        for m in self.bfm.mem:
            m.gpr.update({a: np.zeros(self.cfg.geometry.lanes, np.uint16) for a in range(entries)})
        ref = run_sync(scenario(self.reference(overlap=True), self.log, short=True))
        self.backend.plant_early_barrier = True
        rtl = await scenario(self.engine(overlap=True), self.log, short=True)
        try:
            compare_bit_exact(rtl, ref)
        except TopMismatch as exc:
            self.log.info("caught as it should: %s", exc)
            return
        raise AssertionError("an early barrier went unnoticed: outputs equal the reference")


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_bad_input(TopTest):
    """:func:`bad_input` on the reference and on the DUT: the same typed errors, then the
    remaining request's step bit-exact and within the bound."""

    async def body(self) -> None:
        ref = run_sync(bad_input(self.reference(), self.log))
        eng = self.engine()
        rtl = await bad_input(eng, self.log)
        compare_bit_exact(rtl, ref)
        self.summary(rtl, check_float32(eng, rtl))


def burst_program(cfg: PimConfig, ch: int, macs: int) -> list[Instruction]:
    """Load the GB of every channel, then ``macs`` one-hot MAC words for channel ``ch`` (a new
    row every few, so activations slow the channel down) and their read-outs: a pass-through
    stream at one word per cycle that the channel's queue cannot keep up with."""
    head_cols = SHAPE.d_head // cfg.geometry.lanes
    slots = cfg.geometry.columns_per_row // head_cols
    obuf = cfg.buffers.obuf_entries
    prog = [
        Instruction(
            InstOp.WR_INP, ch_mask=(1 << cfg.module.channels) - 1, op_size=head_cols, gpr=0, gb=0
        )
    ]
    for k in range(macs):
        prog.append(
            Instruction(
                InstOp.MAC,
                ch_mask=1 << ch,
                op_size=head_cols,
                row=k // slots,
                col=(k % slots) * head_cols,
                out=k % obuf,
            )
        )
        if k % obuf == obuf - 1 or k == macs - 1:
            prog.append(
                Instruction(
                    InstOp.RD_OUT,
                    ch_mask=1 << ch,
                    op_size=k % obuf + 1,
                    gpr=head_cols + k - k % obuf,
                    out=0,
                )
            )
    return prog


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_stall_burst(TopTest):
    """A word for one channel held while that channel's queue is full (the others idle), for
    the first and the last channel: the scheduler must get every word once, in order, in
    lockstep with pymodel.golden.sched (the 16-channel a_sched_hold failure, at 2 or 3 channels)."""

    async def body(self) -> None:
        cfg, bfm = self.cfg, self.bfm
        data = np.random.default_rng(self.seed)
        for m in bfm.mem:
            for a in range(SHAPE.d_head // cfg.geometry.lanes):
                m.gpr[a] = random_bf16(data, (cfg.geometry.lanes,))
        for ch in (0, bfm.n - 1):
            before = self.backend.stalls[ch]
            await self.backend.run(burst_program(cfg, ch, 4 * cfg.buffers.queue_depth), StepStats())
            stalled = self.backend.stalls[ch] - before
            assert stalled > 0, f"channel {ch} never stalled: the burst does not test the hold"
            self.log.info("channel %d: burst accepted in order, %d stalled cycles", ch, stalled)


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms", expect_error=TopMismatch)
class run_bfm_error_fails(TopTest):
    """An error the BFM sees while a host command waits for its response reaches the caller
    (the host call raises it) instead of leaving it waiting (the test expects the error)."""

    lockstep = False

    async def body(self) -> None:
        backend = self.backend

        def fault(cycle: int) -> None:
            if backend.host_waiting:
                raise TopMismatch(f"cycle {cycle}: injected BFM error during a host command")

        self.bfm.fault = fault
        await backend.host(HostOp.OPEN, 0, 300)
        raise AssertionError("host() returned although the BFM saw an error")


@pyuvm.test(
    timeout_time=TIMEOUT_MS,
    timeout_unit="ms",
    skip=os.environ.get("TOP_PLANT_BUG", "0") != "1",
    expect_error=AssertionError,
)
class run_planted_bug(TopTest):
    """DUT built with PlantBug=1 (the router forgets to clear a one-hot word's taken bit): the
    router scoreboard must catch it (the test expects the error)."""

    async def body(self) -> None:
        await scenario(self.engine(), self.log, short=True)


@pyuvm.test(skip="PIMPHONY_DECODE" not in os.environ)
class run_cli_decode(TopTest):
    """``pimphony decode --backend rtl``: the parameters in env ``PIMPHONY_DECODE`` (JSON), the
    same steps on the pure-pymodel reference, outputs compared bit for bit and against float64
    numpy; the figures go to the JSON file ``result`` names."""

    async def body(self) -> None:
        from pymodel.studies.decode_cli import slice_shape, step_totals, worst_error

        job = json.loads(os.environ["PIMPHONY_DECODE"])
        shape = slice_shape(job["model"], job["kv_heads"])
        kw = {"gqa_reuse": job["gqa_reuse"], "overlap": job.get("overlap", True)}
        engines = [
            DecodeEngine(self.cfg, shape, backend, job["seed"], **kw)
            for backend in (ReferenceBackend(self.cfg, bench_mode()), self.backend)
        ]
        outs: list[list[Any]] = [[], []]
        totals: list[dict[str, int]] = [{}, {}]
        worst = 0.0
        for e, eng in enumerate(engines):
            for r, n in enumerate(job["requests"]):
                await eng.admit_async(r, n)
            stats = []
            for _ in range(job["steps"]):
                out, st = await eng.step_async()
                outs[e].append(out)
                stats.append(st)
                if e == 1:
                    worst = max(worst, worst_error(eng, out))
            totals[e] = step_totals(stats)
        exact = all(np.array_equal(a[r], b[r]) for a, b in zip(*outs, strict=True) for r in a)
        Path(job["result"]).write_text(
            json.dumps(
                {
                    **totals[1],
                    "reference_cycles": totals[0]["cycles"],
                    "max_error_over_bound": worst,
                    "bit_exact_vs_reference": exact,
                    "gqa_queries_per_loop": engines[1].reuse,
                    "segment_blocks": engines[1].segment,
                    "overlap": engines[1].overlap,
                    "programs": self.backend.programs,
                    "rtl_cycles": self.bfm.cycle,
                }
            )
        )
        self.log.info("decode %s: %s, bit-exact %s", job, totals[1], exact)


# ------------------------------------------------------------------------------------- pytest


def small_config(channels: int = 3) -> tuple[str, str]:
    """Name and TOML of the small bench module: aim-gddr6 timing, 64-row banks, a 6 KB GPR (one
    softmax segment is 22 blocks)."""
    name = "top-small" if channels == 3 else f"top-small-{channels}ch"
    return name, (
        f'preset = "aim-gddr6"\nname = "{name}"\n\n'
        f"[geometry]\nrows_per_bank = 64\n\n[module]\nchannels = {channels}\n"
        "gpr_bytes = 6144\n\n"
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
    "sched/sched_entry_rules.sv",
    "sched/sched_timing.sv",
    "sched/sched_timing_check.sv",
    "sched/sched_refresh.sv",
    "sched/sched_issue.sv",
    "sched/pim_sched.sv",
    "top/pim_top.sv",
]


def _sources(channels: int = 3) -> tuple[list[Path], str]:
    import simlib

    pkg, cfg = simlib.config_package(*small_config(channels))
    return pkg + [simlib.RTL / s for s in TOP_SOURCES], cfg


@pytest.mark.sim
@pytest.mark.parametrize("mode", ["static", "pingpong"])
def test_top_sim_modes(mode: str, tmp_path: Path) -> None:
    """The short scenario (one request, one step) and the stall burst with every channel
    scheduler in ``mode``, in lockstep with ``pymodel.golden.sched`` (the full scenario and the
    bad input run in DCS: test_top_sim)."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("pim_top needs Verilator")
    sources, cfg = _sources()
    simlib.run(
        toplevel="pim_top",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        testcase=["run_decode", "run_stall_burst"],
        extra_env={
            "PIMPHONY_CONFIG": cfg,
            "TOP_SHORT": "1",
            "TOP_MODE": mode,
            "TOP_TRACE_DIR": str(tmp_path),
        },
    )


@pytest.mark.sim
def test_top_stall_hold_2ch(tmp_path: Path) -> None:
    """Regression for the 16-channel co-simulation's a_sched_hold failure, on 2 channels: a
    word held for channel 0 alone while its queue is full. Before the fix the assertion's $past
    sampled the loop variable after the loop (= NumCh), which at a power-of-two NumCh wraps to
    channel 0: channel 0's stall was checked against every channel's valid and fired here (at
    3 channels the index is out of range and the check never ran)."""
    import simlib

    if simlib.SIM != "verilator":
        pytest.skip("pim_top needs Verilator")
    sources, cfg = _sources(channels=2)
    simlib.run(
        toplevel="pim_top",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        testcase="run_stall_burst",
        extra_env={"PIMPHONY_CONFIG": cfg, "TOP_TRACE_DIR": str(tmp_path)},
    )


@pytest.mark.sim
@pytest.mark.skipif(
    "PIMPHONY_DECODE" not in os.environ,
    reason="run by pimphony decode --backend rtl (env PIMPHONY_DECODE)",
)
def test_top_cli_decode(tmp_path: Path) -> None:
    """The DUT built for the decode command's config (its pim_pkg generated from it)."""
    import simlib

    job = json.loads(os.environ["PIMPHONY_DECODE"])
    spec = job["config"] or "aim-gddr6"
    toml = Path(spec).read_text() if Path(spec).is_file() else f'preset = "{spec}"\n'
    name = "decode-" + simlib._tag(toml=toml)  # one build directory per distinct config
    pkg, cfg = simlib.config_package(name, toml)
    simlib.run(
        toplevel="pim_top",
        sources=pkg + [simlib.RTL / s for s in TOP_SOURCES],
        test_file=__file__,
        test_dir=tmp_path,
        testcase="run_cli_decode",
        extra_env={"PIMPHONY_CONFIG": cfg, "TOP_MODE": job["mode"], "TOP_TRACE_DIR": str(tmp_path)},
    )


@pytest.mark.sim
@pytest.mark.parametrize("plant", [0, 1], ids=["decode", "planted-bug"])
def test_top_sim(plant: int, tmp_path: Path) -> None:
    """Decode (waves), both program forms, the planted early barrier, bad input, the stall
    burst (and a BFM error during a host command must fail the test); PlantBug=1 built without
    assertions: the router scoreboard must catch it."""
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
        testcase="run_planted_bug"
        if plant
        else [
            "run_decode",
            "run_waves",
            "run_planted_barrier",
            "run_bad_input",
            "run_stall_burst",
            "run_bfm_error_fails",
        ],
        extra_env={
            "PIMPHONY_CONFIG": cfg,
            "TOP_PLANT_BUG": str(plant),
            "TOP_TRACE_DIR": str(tmp_path),
        },
        assertions=not plant,
    )


@pytest.mark.sim
@pytest.mark.parametrize(
    ("plant", "label", "testcase"),
    [
        (1, "a_done_clear", "run_planted_bug"),
        (2, "a_sched_hold", "run_stall_burst"),
    ],
    ids=["done-clear", "sched-hold"],
)
def test_top_assertion_fires(
    plant: int, label: str, testcase: str, tmp_path: Path, capfd: Any
) -> None:
    """A planted router bug with the assertions on stops the simulation at its assertion:
    PlantBug=1 (taken bits not cleared) at a_done_clear; PlantBug=2 (the last channel's valid
    dropped after it stalled, nothing lost) at a_sched_hold."""
    import simlib

    sources, cfg = _sources()
    simlib.expect_assertion(
        capfd,
        {label},
        toplevel="pim_top",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase=testcase,
        extra_env={
            "PIMPHONY_CONFIG": cfg,
            "TOP_PLANT_BUG": str(plant),
            "TOP_TRACE_DIR": str(tmp_path),
        },
    )
