"""Attention decode on one PIM module in pure pymodel: DPA -> per-channel scheduler -> channels.

This is the golden pipeline the RTL co-simulation (``tb/top``) must equal bit for bit. One decode
step, for every open request and KV head (one DPA request id per (request, KV head)):

1. **KV append** (DPA path): ``GROW(id, 1)`` allocates a chunk when the length crosses a chunk
   boundary; ``APPEND`` (``pymodel.dpa.append`` of ``kv_append_template``) points WR_BANK words
   at the newest token: K (token-major) is ``d_head/lanes`` consecutive columns of bank
   ``t % banks``; V (dim-major) changes one lane of ``d_head/banks`` columns in every bank, so the
   HUB rewrites each of those columns whole from its copy of the block's V (the columns hold 16
   tokens; the HUB keeps the open ones).
2. **QK^T**: ``pymodel.dpa.qk_template`` per query head of the KV group, expanded by the DPA
   dispatcher over the request's current length; every channel runs the instructions whose
   ``ch_mask`` names it (TCP: the request's chunks are spread over the channels).
3. **EPU softmax** (HUB, float32): scores (bf16 from RD_OUT) times ``1/sqrt(d_head)``, softmax over
   the real tokens, probabilities rounded to bf16 (tokens past the length get 0).
4. **SV**: ``pymodel.dpa.sv_template``; every channel reads out its partial sums, the EPU adds
   them in float32 in channel order and rounds once to bf16.

The prefill KV (the context a request is admitted with) is placed by backdoor writes at the rows
the DPA translation gives; decode-time KV goes through the command path above. Channels run
concurrently: each keeps its own cycle count; a step ends when the slowest channel is done.

Backends. The orchestration above (:class:`DecodeEngine`) talks to the DPA and the channels only
through a :class:`Backend`: host commands (OPEN/GROW/CLOSE/TRANSLATE, answered with a
:class:`pymodel.dpa.Response`), instruction programs (DYN_LOOP templates expanded by the
backend's DPA, each physical instruction run by the channels its ``ch_mask`` names), backdoor row
loads and per-channel GPRs. :class:`ReferenceBackend` is pure pymodel (``DpaModel`` +
``Dispatcher`` + ``Scheduler`` + ``Channel``); the RTL co-simulation (``tb/top``) supplies one
that drives ``rtl/top/pim_top.sv``. The engine's methods are coroutines so a backend may wait for
a simulator; :class:`DecodeModule` runs them synchronously on the reference. The engine keeps a
mirror ``DpaModel`` (the HUB's view of lengths and free chunks) and checks every host response
against it (:class:`HostMismatch`). Out-of-memory policy: a request whose KV heads cannot all
grow sits the step out; the HUB still issues the GROW that must fail (a head whose next chunk's
channel has no free chunk), so the device itself reports NO_MEMORY and is seen to change nothing.

APPEND on a backend: the HUB GROWs, asks the backend's DPA to TRANSLATE the newest token's K and
V rows, and forms the physical WR_BANK words with ``pymodel.dpa``'s APPEND rule
(:meth:`pymodel.dpa.Dispatcher.append`) on those answers; the words then go through the
backend's instruction path like any plain instruction (``rtl/dpa/dpa_ctrl.sv`` has no APPEND
operation of its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Coroutine, Protocol, Sequence, TypeVar, cast

import numpy as np

from pymodel.bf16 import U16, from_bf16, random_bf16, to_bf16
from pymodel.channel import Channel
from pymodel.config import PimConfig
from pymodel.dpa import (
    D_HEAD,
    ROWS_PER_BLOCK,
    AlreadyOpen,
    BadProgram,
    DpaError,
    DpaModel,
    DpaStatus,
    HostOp,
    OutOfMemory,
    OutOfRange,
    Response,
    TooLong,
    TooManyRequests,
    UnknownRequest,
    append,
    expand,
    kv_append_template,
    qk_template,
    sv_template,
)
from pymodel.isa import Instruction
from pymodel.sched import Mode, Scheduler

# GPR map of every channel (entries of 32 B).
GPR_QUERY = 0  # d_head/lanes entries (qk_template's WR_INP)
GPR_SCORES = 8  # qk_template: block b's scores at GPR_SCORES + b * slots
GPR_PROBS = 4096  # sv_template's score_gpr
GPR_K_STAGE = 12000  # K vector of the appended token
GPR_V_STAGE = 12100  # the V columns being rewritten
GPR_OUT = 16000  # sv_template's out_gpr (partial sums)

ERRORS: dict[DpaStatus, type[DpaError]] = {
    e.status: e
    for e in (OutOfMemory, UnknownRequest, AlreadyOpen, TooManyRequests, TooLong, OutOfRange,
              BadProgram)
}


class HostMismatch(AssertionError):
    """A backend's host response differs from the HUB's mirror of the DPA."""


@dataclass(frozen=True)
class AttnShape:
    q_heads: int = 4
    kv_heads: int = 2
    d_head: int = D_HEAD

    def __post_init__(self) -> None:
        if self.q_heads % self.kv_heads:
            raise ValueError(f"q_heads = {self.q_heads} must be a multiple of kv_heads")
        if self.d_head != D_HEAD:
            raise ValueError(f"d_head = {self.d_head}: the KV layout supports {D_HEAD}")

    @property
    def group(self) -> int:
        return self.q_heads // self.kv_heads


@dataclass
class StepStats:
    cycles: int = 0  # slowest channel
    channel_cycles: list[int] = field(default_factory=list)
    instructions: int = 0
    commands: int = 0
    tokens: int = 0  # KV tokens attended (sum over requests)
    out_of_memory: list[int] = field(default_factory=list)  # requests that could not grow


@dataclass
class _Request:
    ids: list[int]  # DPA request id per KV head
    k: list[U16]  # host copy per KV head: tokens x d_head (for V column rewrites and checks)
    v: list[U16]


class Backend(Protocol):
    """Where the DPA and the channels live (see the module docstring)."""

    gpr: list[dict[int, U16]]  # per channel: the HUB's GPR view of that channel

    async def host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        """One DPA host command and its response."""
        ...

    async def run(self, prog: Sequence[Instruction], stats: StepStats) -> None:
        """Run a program through the DPA instruction path and the channels until all is done;
        add the instructions and commands executed to ``stats``; raise on a DPA error."""
        ...

    def load_row(self, ch: int, row: int, data: U16) -> None:
        """Backdoor: an all-bank row of channel ``ch``."""
        ...

    def clocks(self) -> list[int]:
        """Cycles each channel has run so far."""
        ...


def split(prog: Sequence[Instruction], channels: int) -> list[list[Instruction]]:
    """Per-channel programs: each instruction goes to every channel its ch_mask names."""
    out: list[list[Instruction]] = [[] for _ in range(channels)]
    for inst in prog:
        for ch in range(channels):
            if inst.ch_mask >> ch & 1:
                out[ch].append(inst)
    return out


class ReferenceBackend:
    """Pure pymodel: ``DpaModel`` + ``Dispatcher`` expansion, then per channel the reference
    ``Scheduler`` on the golden ``Channel``, each channel with its own clock."""

    def __init__(self, cfg: PimConfig, mode: Mode = Mode.DCS, d_head: int = D_HEAD) -> None:
        self.cfg = cfg
        self.dpa = DpaModel(cfg, d_head=d_head)
        n = cfg.module.channels
        self.channels = [Channel(cfg) for _ in range(n)]
        self.scheds = [Scheduler(cfg, mode, ch) for ch in self.channels]
        self.gpr: list[dict[int, U16]] = [{} for _ in range(n)]
        self.clock = [0] * n

    async def host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        return self.dpa.host(op, req, arg)

    async def run(self, prog: Sequence[Instruction], stats: StepStats) -> None:
        for ch, p in enumerate(split(expand(self.dpa, prog), len(self.channels))):
            if not p:
                continue
            res = self.scheds[ch].run(p, self.gpr[ch], start_cycle=self.clock[ch])
            self.clock[ch] += res.stats.cycles
            stats.instructions += len(p)
            stats.commands += len(res.trace)

    def load_row(self, ch: int, row: int, data: U16) -> None:
        self.channels[ch].load_row(row, data)

    def clocks(self) -> list[int]:
        return list(self.clock)


class _Translated:
    """The HUB's view for one APPEND: lengths from the mirror, rows as the backend's DPA
    translated them (duck-types the part of ``DpaModel`` that ``Dispatcher.append`` reads)."""

    def __init__(self, mirror: DpaModel, rows: dict[tuple[int, int], tuple[int, int]]) -> None:
        self.cfg, self.lay, self._mirror, self._rows = mirror.cfg, mirror.lay, mirror, rows

    def is_open(self, req: int) -> bool:
        return self._mirror.is_open(req)

    def length(self, req: int) -> int:
        return self._mirror.length(req)

    def translate(self, req: int, vrow: int) -> tuple[int, int]:
        return self._rows[(req, vrow)]


class DecodeEngine:
    """Decode attention for several requests on one module (``cfg.module.channels`` channels),
    on any :class:`Backend`. Coroutine API: ``await admit_async / step_async / close_async``."""

    def __init__(self, cfg: PimConfig, shape: AttnShape, backend: Backend, seed: int = 0) -> None:
        self.cfg, self.shape, self.backend = cfg, shape, backend
        self.dpa = DpaModel(cfg, d_head=shape.d_head)  # the HUB's mirror
        self.lay = self.dpa.lay
        self.rng = np.random.default_rng(seed)
        self.requests: dict[int, _Request] = {}
        self.host_log: list[tuple[HostOp, int, int, Response]] = []

    @property
    def gpr(self) -> list[dict[int, U16]]:
        return self.backend.gpr

    # ------------------------------------------------------------------ host commands

    async def _host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        got = await self.backend.host(op, req, arg)
        exp = self.dpa.host(op, req, arg)
        if got != exp:
            raise HostMismatch(f"{op.name} req={req} arg={arg}: backend {got}, mirror {exp}")
        self.host_log.append((op, req, arg, got))
        return got

    async def _host_ok(self, op: HostOp, req: int, arg: int = 0) -> Response:
        resp = await self._host(op, req, arg)
        if resp.status is not DpaStatus.OK:
            raise ERRORS[resp.status](f"{op.name} req={req} arg={arg}")
        return resp

    async def _translate(self, req: int, vrow: int) -> tuple[int, int]:
        resp = await self._host_ok(HostOp.TRANSLATE, req, vrow)
        return resp.channel, resp.row

    # ------------------------------------------------------------------ requests

    async def admit_async(self, req: int, tokens: int) -> None:
        """OPEN one DPA request per KV head with ``tokens`` of random prefill KV (backdoor, at
        the rows the backend's DPA translates)."""
        lanes, banks = self.cfg.geometry.lanes, self.cfg.geometry.banks
        ids = [req * self.shape.kv_heads + h for h in range(self.shape.kv_heads)]
        opened: list[int] = []
        for i in ids:
            resp = await self._host(HostOp.OPEN, i, tokens)
            if resp.status is not DpaStatus.OK:
                for j in opened:  # all or nothing: free what this admission took
                    await self._host_ok(HostOp.CLOSE, j)
                raise ERRORS[resp.status](f"OPEN req={i} tokens={tokens}")
            opened.append(i)
        d = self.shape.d_head
        ks = [random_bf16(self.rng, (tokens, d)) for _ in ids]
        vs = [random_bf16(self.rng, (tokens, d)) for _ in ids]
        self.requests[req] = _Request(ids, ks, vs)
        bt = self.lay.block_tokens
        for i, k, v in zip(ids, ks, vs, strict=True):
            for b in range(-(-tokens // bt)):
                kb = np.zeros((bt, d), dtype=np.uint16)
                vb = np.zeros((bt, d), dtype=np.uint16)
                kb[: min(bt, tokens - b * bt)] = k[b * bt : (b + 1) * bt]
                vb[: min(bt, tokens - b * bt)] = v[b * bt : (b + 1) * bt]
                ch, row = await self._translate(i, ROWS_PER_BLOCK * b)
                self.backend.load_row(ch, row, k_row(kb, banks, lanes))
                ch, row = await self._translate(i, ROWS_PER_BLOCK * b + 1)
                self.backend.load_row(ch, row, v_row(vb, banks, lanes))

    async def close_async(self, req: int) -> None:
        for i in self.requests.pop(req).ids:
            await self._host_ok(HostOp.CLOSE, i)

    # ------------------------------------------------------------------ one decode step

    async def step_async(
        self, queries: dict[int, U16] | None = None
    ) -> tuple[dict[int, U16], StepStats]:
        """Append one token to every request and run attention for every query head.

        Returns ``{req: q_heads x d_head bf16}`` and the step statistics. ``queries`` (req ->
        q_heads x d_head) defaults to random; the appended K/V are random.
        """
        stats = StepStats()
        start = self.backend.clocks()
        outputs: dict[int, U16] = {}
        for req, state in self.requests.items():
            if self._room_for_one_more(state):
                await self._append(state, stats)
            else:  # reported, and this request sits the step out; nothing else changes
                stats.out_of_memory.append(req)
                await self._failing_grow(state)
        for req, state in self.requests.items():
            if req in stats.out_of_memory:
                continue
            q = (
                queries[req]
                if queries
                else random_bf16(self.rng, (self.shape.q_heads, self.shape.d_head))
            )
            outputs[req] = await self._attend(state, q, stats)
        stats.channel_cycles = [c - s for c, s in zip(self.backend.clocks(), start, strict=True)]
        stats.cycles = max(stats.channel_cycles)
        return outputs, stats

    def _needs(self, state: _Request) -> dict[int, list[int]]:
        """Channel -> KV heads (DPA ids) that need a new chunk there to grow by one token."""
        need: dict[int, list[int]] = {}
        for i in state.ids:
            length = self.dpa.length(i)
            if length % self.lay.chunk_tokens == 0:
                ch = self.lay.channel_of(i, length // self.lay.chunk_tokens)
                need.setdefault(ch, []).append(i)
        return need

    def _room_for_one_more(self, state: _Request) -> bool:
        """Whether every KV head of the request can grow by one token (chunks it would need on
        each channel are free), so a step appends all heads or none."""
        return all(self.dpa.free_on(ch) >= len(ids) for ch, ids in self._needs(state).items())

    async def _failing_grow(self, state: _Request) -> None:
        """Issue the GROW that cannot succeed (a head whose chunk's channel is full): the device
        must answer NO_MEMORY and keep its state (the mirror checks both)."""
        for ch, ids in self._needs(state).items():
            if self.dpa.free_on(ch) == 0:
                resp = await self._host(HostOp.GROW, ids[0], 1)
                if resp.status is not DpaStatus.NO_MEMORY:
                    raise HostMismatch(f"GROW {ids[0]} on a full channel {ch}: {resp}")
                return

    async def _append(self, state: _Request, stats: StepStats) -> None:
        """GROW each KV head by one token and write its K and V through the APPEND path (the HUB
        stages K and the rewritten V columns in the GPR of the token's channel)."""
        g = self.cfg.geometry
        lanes, banks, d = g.lanes, g.banks, self.shape.d_head
        for h, i in enumerate(state.ids):
            await self._host_ok(HostOp.GROW, i, 1)
            t = self.dpa.length(i) - 1
            k_new = random_bf16(self.rng, (1, d))
            v_new = random_bf16(self.rng, (1, d))
            state.k[h] = np.concatenate([state.k[h], k_new])
            state.v[h] = np.concatenate([state.v[h], v_new])
            vk = ROWS_PER_BLOCK * (t // self.lay.block_tokens)
            rows = {(i, vk + r): await self._translate(i, vk + r) for r in range(ROWS_PER_BLOCK)}
            gpr = self.gpr[rows[(i, vk)][0]]  # K and V of a block share a chunk, hence a channel
            for c in range(d // lanes):
                gpr[GPR_K_STAGE + c] = k_new[0, c * lanes : (c + 1) * lanes]
            first = t - t % lanes  # the V column holds tokens first .. first + lanes - 1
            col_tokens = np.zeros((lanes, d), dtype=np.uint16)
            col_tokens[: t - first + 1] = state.v[h][first : t + 1]
            for bank in range(banks):
                for j in range(d // banks):
                    gpr[GPR_V_STAGE + bank * (d // banks) + j] = col_tokens[:, j * banks + bank]
            view = cast(DpaModel, _Translated(self.dpa, rows))
            prog = append(view, i, kv_append_template(self.cfg, False, GPR_K_STAGE, d))
            prog += append(view, i, kv_append_template(self.cfg, True, GPR_V_STAGE, d))
            await self.backend.run(prog, stats)

    async def _attend(self, state: _Request, q: U16, stats: StepStats) -> U16:
        g = self.cfg.geometry
        lanes, d, bt = g.lanes, self.shape.d_head, self.lay.block_tokens
        slots = g.columns_per_row // (d // lanes)
        out = np.zeros((self.shape.q_heads, d), dtype=np.uint16)
        for h, i in enumerate(state.ids):
            length = self.dpa.length(i)
            stats.tokens += length
            blocks = -(-length // bt)
            for qi in range(self.shape.group):
                head = h * self.shape.group + qi
                for gpr in self.gpr:
                    for c in range(d // lanes):
                        gpr[GPR_QUERY + c] = q[head, c * lanes : (c + 1) * lanes]
                await self.backend.run(qk_template(self.cfg, i, d), stats)
                scores = np.zeros(blocks * bt, dtype=np.uint16)
                for b in range(blocks):
                    ch, _ = self.dpa.translate(i, ROWS_PER_BLOCK * b)
                    for s in range(slots):
                        tok = b * bt + s * g.banks
                        scores[tok : tok + g.banks] = self.gpr[ch][GPR_SCORES + b * slots + s]
                probs = epu_softmax(scores[:length], d, blocks * bt)
                for gpr in self.gpr:
                    for e in range(blocks * bt // lanes):
                        gpr[GPR_PROBS + e] = probs[e * lanes : (e + 1) * lanes]
                prog = sv_template(self.cfg, i, score_gpr=GPR_PROBS, out_gpr=GPR_OUT, d_head=d)
                await self.backend.run(prog, stats)
                out[head] = epu_reduce(
                    [
                        np.concatenate([gpr[GPR_OUT + j] for j in range(d // g.banks)])
                        for gpr in self.gpr
                    ]
                )
        return out


_T = TypeVar("_T")


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run an engine coroutine whose backend never waits (the reference) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(_T, stop.value)
    coro.close()
    raise RuntimeError("the backend suspended: use the engine's async API under a simulator")


class DecodeModule(DecodeEngine):
    """:class:`DecodeEngine` on the pure-pymodel :class:`ReferenceBackend`, synchronous API."""

    def __init__(
        self, cfg: PimConfig, shape: AttnShape, mode: Mode = Mode.DCS, seed: int = 0
    ) -> None:
        self.ref = ReferenceBackend(cfg, mode, shape.d_head)
        super().__init__(cfg, shape, self.ref, seed)

    @property
    def channels(self) -> list[Channel]:
        return self.ref.channels

    @property
    def clock(self) -> list[int]:
        return self.ref.clock

    def admit(self, req: int, tokens: int) -> None:
        run_sync(self.admit_async(req, tokens))

    def close(self, req: int) -> None:
        run_sync(self.close_async(req))

    def step(self, queries: dict[int, U16] | None = None) -> tuple[dict[int, U16], StepStats]:
        return run_sync(self.step_async(queries))


# ---------------------------------------------------------------------------- HUB / EPU


def epu_softmax(scores: U16, d_head: int, padded: int) -> U16:
    """Softmax of bf16 scores scaled by 1/sqrt(d_head), in float32; bf16 probabilities, zero
    past the real tokens (``padded`` entries in all)."""
    s = from_bf16(scores) * np.float32(1.0 / math.sqrt(d_head))
    e = np.exp(s - s.max(), dtype=np.float32)
    p = np.zeros(padded, dtype=np.float32)
    p[: len(scores)] = e / e.sum(dtype=np.float32)
    return to_bf16(p)


def epu_reduce(partials: Sequence[U16]) -> U16:
    """Cross-channel SV reduction: float32 sum in channel order, one bf16 rounding."""
    acc = np.zeros(len(partials[0]), dtype=np.float32)
    for part in partials:
        acc += from_bf16(part)
    return to_bf16(acc)


def k_row(block: U16, banks: int, lanes: int) -> U16:
    """K of one block (block_tokens x d_head) as an all-bank row: token t in bank t % banks,
    slot t // banks at columns slot * d_head/lanes (pymodel.dpa's layout)."""
    bt, d = block.shape
    head_cols = d // lanes
    row = block.reshape(bt // banks, banks, head_cols, lanes).transpose(1, 0, 2, 3)
    return row.reshape(banks, (bt // banks) * head_cols, lanes)


def v_row(block: U16, banks: int, lanes: int) -> U16:
    """V of one block as an all-bank row: bank k holds dims j*banks+k; dim slot j takes the
    block_tokens/lanes columns from j*block_tokens/lanes, consecutive tokens per column."""
    bt, d = block.shape
    by_dim = block.T.reshape(d // banks, banks, bt // lanes, lanes)  # j, k, col, lane
    return by_dim.transpose(1, 0, 2, 3).reshape(banks, (d // banks) * (bt // lanes), lanes)


def reference_attention(q: U16, k: U16, v: U16) -> np.ndarray:
    """float32 numpy attention of one query head: softmax(q k^T / sqrt(d)) v."""
    qf, kf, vf = from_bf16(q), from_bf16(k), from_bf16(v)
    s = (kf @ qf) * np.float32(1.0 / math.sqrt(len(qf)))
    e = np.exp(s - s.max())
    out: np.ndarray = (e / e.sum()) @ vf
    return out


def attention_error_bound(q: U16, k: U16, v: U16) -> np.ndarray:
    """Per output dim, a bound on |pipeline - exact attention| (float64 analysis):

    * score t is a float32 dot product rounded to bf16, then scaled by c = 1/sqrt(d): its error
      is d_t = c * (2^-9 |s_t| + 2^-20 sum_i |q_i k_ti|) (rounding, plus float32 accumulation of
      at most 16 additions of 2^-24 each, generously);
    * softmax: p_t' = p_t exp(d_t - sum_u p_u d_u) to first order, so |dp_t| <= p_t (d_t + dbar)
      times (1 + 2 max d) for the second-order terms; then the bf16 rounding of p (2^-9) and
      float32 exp/sum (1e-6 relative);
    * SV: per-channel partial sums rounded to bf16 (2^-9), the final sum rounded (2^-9) and
      float32 accumulation (T/16 + 16 additions of 2^-24), relative to sum_t p_t |v_tj|.
    """
    qf = from_bf16(q).astype(np.float64)
    kf, vf = from_bf16(k).astype(np.float64), from_bf16(v).astype(np.float64)
    c = 1.0 / math.sqrt(len(qf))
    raw = kf @ qf
    s = raw * c
    p = np.exp(s - s.max())
    p /= p.sum()
    d = c * (2.0**-9 * np.abs(raw) + 2.0**-20 * (np.abs(kf) @ np.abs(qf)))
    dp = p * ((d + p @ d) * (1 + 2 * float(d.max())) + 2.0**-9 + 1e-6)
    mag = (p + dp) @ np.abs(vf)
    rounding = 2 * 2.0**-9 + (len(kf) / 16 + 16) * 2.0**-24
    bound: np.ndarray = dp @ np.abs(vf) + rounding * mag + 1e-30
    return bound


def with_channels(cfg: PimConfig, channels: int) -> PimConfig:
    return replace(cfg, module=replace(cfg.module, channels=channels))
