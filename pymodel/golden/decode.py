"""Attention decode on one PIM module in pure pymodel: DPA -> per-channel scheduler -> channels.

This is the golden pipeline the RTL co-simulation (``tb/top``) must equal bit for bit. One decode
step, for every open request and KV head (one DPA request id per (request, KV head)):

1. **KV append** (DPA path): one ``APPEND(id, gpr)`` instruction per (request, KV head)
   (``pymodel.golden.dpa``'s APPEND: the controller grows the id by one token -- a chunk when the
   length crosses a chunk boundary -- and emits the WR_BANK words of its K row and V columns). The
   HUB first stages the token's K and the V columns it rewrites (each holds 16 tokens; the HUB keeps
   the open ones) in the GPR of the token's channel (known without a TRANSLATE: virtual chunk
   ``v`` of id ``r`` is on channel ``(r + v) % channels``). Every append of a step goes in one
   program, so the channels write the KV of different heads concurrently.
2. **Segments**: a request's KV blocks are processed in windows of ``segment_blocks`` blocks
   (:func:`segment_blocks`: as many as the GPR holds scores for; ``DYN_LOOP``'s ``first`` /
   ``count``). Per query head of the KV group and per segment:
3. **QK^T**: ``pymodel.golden.dpa.qk_template`` over the segment, expanded by the DPA dispatcher;
every
   channel runs the instructions whose ``ch_mask`` names it (TCP: the request's chunks are spread
   over the channels). Scores of the segment's block ``b`` land at ``GPR_SCORES + b * slots`` of
   the block's channel.
4. **EPU online softmax** (HUB, float32, :class:`EpuSoftmax`): scores (bf16 from RD_OUT) times
   ``1/sqrt(d_head)``; a running max ``m`` and sum ``l`` per query head; the segment's weights
   ``exp(s - m)`` (``m`` updated first) rounded to bf16 are written over its scores (tokens past
   the length get 0); the accumulated output and ``l`` are rescaled by ``exp(m_old - m)``.
5. **SV**: ``pymodel.golden.dpa.sv_template`` over the segment; every channel reads out its partial
sums,
   the EPU adds them in float32 in channel order into the accumulator. After the last segment the
   output is ``acc / l``, rounded once to bf16 (:func:`attention_error_bound` states the bound).

The prefill KV (the context a request is admitted with) is placed by backdoor writes at the rows
the DPA translation gives; decode-time KV goes through the command path above. Channels run
concurrently within a program; the host reads a program's results when every channel is done, so
the next program starts on all channels then (:class:`ReferenceBackend`, as the RTL bench). To
let channels overlap, steps 3-5 put the loops of several KV heads in one QK^T and one SV program
where their GPR regions do not collide (:mod:`pymodel.golden.decode_waves`;
``overlap=False``: one program per loop).

Backends. The orchestration above (:class:`DecodeEngine`) talks to the DPA and the channels only
through a :class:`Backend`: host commands (OPEN/GROW/CLOSE/TRANSLATE, answered with a
:class:`pymodel.golden.dpa.Response`), instruction programs (DYN_LOOP templates expanded by the
backend's DPA, each physical instruction run by the channels its ``ch_mask`` names), backdoor row
loads and per-channel GPRs. :class:`ReferenceBackend` is pure pymodel (``DpaModel`` +
``Dispatcher`` + ``Scheduler`` + ``Channel``); the RTL co-simulation (``tb/top``) supplies one
that drives ``rtl/top/pim_top.sv``. The engine's methods are coroutines so a backend may wait for
a simulator; :class:`DecodeModule` runs them synchronously on the reference. The engine keeps a
mirror ``DpaModel`` (the HUB's view of lengths and free chunks) and checks every host response
against it (:class:`HostMismatch`). Out-of-memory policy: a request whose KV heads cannot all
grow sits the step out; the HUB still issues the GROW that must fail (a head whose next chunk's
channel has no free chunk), so the device itself reports NO_MEMORY and is seen to change nothing.

Out-of-memory is still reported on the host port (the failing GROW above); an APPEND that cannot
grow (the engine never issues one) is an instruction-path error of the DPA (``pymodel.golden.dpa``).

Bad input is refused before anything changes, with the DPA's typed error
(``pymodel.golden.dpa``) and the device's own answer on the host port: an admission longer than
the VA2PA table maps (OPEN -> TOO_LONG), a step whose ``queries`` name a request that is not open
(TRANSLATE of its first id -> UNKNOWN_REQUEST), a step that would grow a request past the table
(GROW -> TOO_LONG).
"""

from __future__ import annotations

import math
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16, from_bf16, random_bf16, to_bf16
from pymodel.golden.channel import Channel
from pymodel.golden.decode_waves import GprMap, Member, plan
from pymodel.golden.dpa import (
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
    append_template,
    expand_prefix,
    group_queries,
    qk_group_template,
    qk_template,
    segment_count,
    sv_template,
)
from pymodel.golden.sched import Mode, Scheduler
from pymodel.isa import InstOp, Instruction, TraceEntry

# GPR map of every channel (entries of 32 B): the query at 0 (qk_template's WR_INP), the
# segment's scores at d_head/lanes.. (then its bf16 weights, in place: sv_template's score_gpr),
# the SV partial sums at the top (sv_template's out_gpr). Appends stage K + V columns in the
# score region (unused between steps).
GPR_QUERY = 0


def gpr_map(cfg: PimConfig, d_head: int = D_HEAD, queries: int = 1) -> tuple[int, int]:
    """(scores, out) GPR entries of the attention programs (``queries`` side by side for the
    grouped QK^T)."""
    g = cfg.geometry
    return queries * d_head // g.lanes, cfg.module.gpr_bytes // g.column_bytes - d_head // g.banks


def segment_blocks(cfg: PimConfig, d_head: int = D_HEAD, queries: int = 1) -> int:
    """KV blocks whose scores fit the GPR between the queries and the partial sums (grouped
    QK^T: ``queries`` scores per token, and the weights of one query apart)."""
    g = cfg.geometry
    scores, out = gpr_map(cfg, d_head, queries)
    slots = g.columns_per_row // (d_head // g.lanes)
    per_block = slots * queries + (0 if queries == 1 else slots)
    n = (out - scores) // per_block
    if n < 1:
        raise ValueError(
            f"module.gpr_bytes = {cfg.module.gpr_bytes}: no room for one KV block's scores"
        )
    return n


ERRORS: dict[DpaStatus, type[DpaError]] = {
    e.status: e
    for e in (
        OutOfMemory,
        UnknownRequest,
        AlreadyOpen,
        TooManyRequests,
        TooLong,
        OutOfRange,
        BadProgram,
    )
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
    segments: int = 0  # softmax segments of the longest request
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
        self.busy = [0] * n  # cycles each channel has spent running programs
        self.traces: list[list[TraceEntry]] = [[] for _ in range(n)]  # command bus per channel

    async def host(self, op: HostOp, req: int, arg: int = 0) -> Response:
        return self.dpa.host(op, req, arg)

    async def run(self, prog: Sequence[Instruction], stats: StepStats) -> None:
        # The host reads a program's results (scores, partial sums) once every channel is done,
        # so a program starts on all channels when the previous one has ended on all of them.
        start = max(self.clock)
        words, _, err = expand_prefix(self.dpa, prog)  # a failing program stops there
        for ch, p in enumerate(split(words, len(self.channels))):
            self.clock[ch] = start
            if not p:
                continue
            res = self.scheds[ch].run(p, self.gpr[ch], start_cycle=start)
            self.clock[ch] += res.stats.cycles
            self.busy[ch] += res.stats.cycles
            self.traces[ch].extend(res.trace)
            stats.instructions += len(p)
            stats.commands += len(res.trace)
        if err is not None:
            raise err

    def load_row(self, ch: int, row: int, data: U16) -> None:
        self.channels[ch].load_row(row, data)

    def clocks(self) -> list[int]:
        return list(self.clock)


class DecodeEngine:
    """Decode attention for several requests on one module (``cfg.module.channels`` channels),
    on any :class:`Backend`. Coroutine API: ``await admit_async / step_async / close_async``."""

    def __init__(
        self,
        cfg: PimConfig,
        shape: AttnShape,
        backend: Backend,
        seed: int = 0,
        segment: int | None = None,
        gqa_reuse: bool = False,
        overlap: bool = False,
    ) -> None:
        self.cfg, self.shape, self.backend = cfg, shape, backend
        #: the loops of several KV heads in one program where the GPR allows (decode_waves);
        #: False: one program per loop (grouped QK^T always runs that way). Off by default here;
        #: on for DecodeModule and in the RTL bench (tb/top passes it to both its engines).
        self.overlap = overlap
        self.dpa = DpaModel(cfg, d_head=shape.d_head)  # the HUB's mirror
        self.lay = self.dpa.lay
        #: queries per grouped QK^T (K-row reuse; 1 = one QK^T loop per query head)
        self.reuse = group_queries(cfg, shape.group, shape.d_head) if gqa_reuse else 1
        limit = segment_blocks(cfg, shape.d_head, self.reuse)
        if segment is not None and not 1 <= segment <= limit:
            raise ValueError(f"segment = {segment} blocks: the GPR holds 1..{limit}")
        self.segment = segment or limit  # KV blocks per softmax segment
        self.rng = np.random.default_rng(seed)
        self.requests: dict[int, _Request] = {}
        self.last_queries: dict[int, U16] = {}  # the queries of the last step, per request
        self.host_log: list[tuple[HostOp, int, int, Response]] = []

    @property
    def gpr(self) -> list[dict[int, U16]]:
        return self.backend.gpr

    def segments_of(self, tokens: int) -> int:
        """Softmax segments of a request of ``tokens`` tokens."""
        return segment_count(tokens, self.lay.block_tokens, self.segment)

    def error_bound(self, q: U16, k: U16, v: U16) -> np.ndarray:
        """:func:`attention_error_bound` of one query head for this engine's segments/channels."""
        return attention_error_bound(q, k, v, self.segments_of(len(k)), self.cfg.module.channels)

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
        await self._refuse_bad_step(queries or {})
        stats = StepStats()
        start = self.backend.clocks()
        outputs: dict[int, U16] = {}
        growing: list[_Request] = []
        for req, state in self.requests.items():
            if self._room_for_one_more(state):
                growing.append(state)
                for i in state.ids:  # the mirror grows now (the next request's room sees it)
                    self.dpa.grow(i, 1)
            else:  # reported, and this request sits the step out; nothing else changes
                stats.out_of_memory.append(req)
        await self._append(growing, stats)  # the device grows here
        for req in stats.out_of_memory:  # (after the appends: device and mirror agree again)
            await self._failing_grow(self.requests[req])
        self.last_queries = {}
        for req, state in self.requests.items():
            if req in stats.out_of_memory:
                continue
            q = (
                queries[req]
                if queries
                else random_bf16(self.rng, (self.shape.q_heads, self.shape.d_head))
            )
            self.last_queries[req] = q
            if not self.overlap or self.reuse > 1:
                outputs[req] = await self._attend(state, q, stats)
        if self.overlap and self.reuse == 1:
            outputs = await self._attend_waves(self.last_queries, stats)
        stats.channel_cycles = [c - s for c, s in zip(self.backend.clocks(), start, strict=True)]
        stats.cycles = max(stats.channel_cycles)
        return outputs, stats

    async def _refuse_bad_step(self, queries: dict[int, U16]) -> None:
        """Raise the typed DPA error of a step that cannot run, after the device answered the
        host command that shows it (the mirror checks the answer; nothing changes)."""
        for req in queries:
            if req not in self.requests:  # closed (or never admitted)
                resp = await self._host(HostOp.TRANSLATE, req * self.shape.kv_heads, 0)
                raise ERRORS.get(resp.status, UnknownRequest)(f"step: request {req} is not open")
        limit = self.lay.max_tokens
        for req, state in self.requests.items():
            full = [i for i in state.ids if self.dpa.length(i) >= limit]
            if full:
                resp = await self._host(HostOp.GROW, full[0], 1)
                raise ERRORS.get(resp.status, TooLong)(
                    f"step: request {req} holds {self.dpa.length(full[0])} tokens, the VA2PA "
                    f"table maps {limit} (dpa.max_chunks_per_request x chunk tokens)"
                )

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

    async def _append(self, states: list[_Request], stats: StepStats) -> None:
        """One APPEND per KV head of every growing request, in as few programs as the staging
        room allows (each append stages K + V columns in the GPR of the token's channel)."""
        g, lay = self.cfg.geometry, self.lay
        lanes, banks, d = g.lanes, g.banks, self.shape.d_head
        head_cols, ds = d // lanes, d // banks
        base, top = gpr_map(self.cfg, d)
        per = head_cols + banks * ds
        room = (top - base) // per
        prog: list[Instruction] = []
        used = [0] * self.cfg.module.channels
        for state in states:
            for h, i in enumerate(state.ids):
                t = self.dpa.length(i) - 1  # the new token (the mirror has grown already)
                ch = lay.channel_of(i, ROWS_PER_BLOCK * (t // lay.block_tokens) // lay.chunk_rows)
                if used[ch] == room:  # this channel's staging area is full: run what we have
                    await self.backend.run(prog, stats)
                    prog, used = [], [0] * len(used)
                at = base + used[ch] * per
                used[ch] += 1
                k_new = random_bf16(self.rng, (1, d))
                v_new = random_bf16(self.rng, (1, d))
                state.k[h] = np.concatenate([state.k[h], k_new])
                state.v[h] = np.concatenate([state.v[h], v_new])
                gpr = self.gpr[ch]
                for c in range(head_cols):
                    gpr[at + c] = k_new[0, c * lanes : (c + 1) * lanes]
                first = t - t % lanes  # the V column holds tokens first .. first + lanes - 1
                col_tokens = np.zeros((lanes, d), dtype=np.uint16)
                col_tokens[: t - first + 1] = state.v[h][first : t + 1]
                for bank in range(banks):
                    for j in range(ds):
                        gpr[at + head_cols + bank * ds + j] = col_tokens[:, j * banks + bank]
                prog += append_template(i, at)
        if prog:
            await self.backend.run(prog, stats)

    # ------------------------------------------------------------------ GPR staging (HUB)

    def _window(self, i: int, seg: int) -> tuple[list[int], int]:
        """Segment ``seg`` of DPA id ``i``: the channel of each of its blocks and its tokens."""
        bt = self.lay.block_tokens
        length = self.dpa.length(i)
        first = seg * self.segment
        n = min(self.segment, -(-length // bt) - first)
        chans = [self.dpa.translate(i, ROWS_PER_BLOCK * (first + b))[0] for b in range(n)]
        return chans, min(n * bt, length - first * bt)

    def _stage_query(self, at: int, qv: U16) -> None:
        """One query head at GPR ``at`` of every channel (the WR_INP broadcast reads it)."""
        lanes = self.cfg.geometry.lanes
        for gpr in self.gpr:
            for c in range(len(qv) // lanes):
                gpr[at + c] = qv[c * lanes : (c + 1) * lanes]

    def _read_scores(self, chans: Sequence[int], at: int, stride: int = 1) -> U16:
        """Scores of the window's blocks (block ``b`` on ``chans[b]``): slot ``s`` of block
        ``b`` at GPR ``at + (b * slots + s) * stride``."""
        g, bt = self.cfg.geometry, self.lay.block_tokens
        slots = g.columns_per_row // (self.shape.d_head // g.lanes)
        scores = np.zeros(len(chans) * bt, dtype=np.uint16)
        for b, ch in enumerate(chans):
            for s in range(slots):
                tok = b * bt + s * g.banks
                scores[tok : tok + g.banks] = self.gpr[ch][at + (b * slots + s) * stride]
        return scores

    def _write_weights(self, chans: Sequence[int], at: int, probs: U16) -> None:
        """Block ``b``'s bf16 weights at GPR ``at + b * cols`` of its channel (SV's input)."""
        lanes, bt = self.cfg.geometry.lanes, self.lay.block_tokens
        cols = bt // lanes
        for b, ch in enumerate(chans):
            for e in range(cols):
                self.gpr[ch][at + b * cols + e] = probs[
                    b * bt + e * lanes : b * bt + (e + 1) * lanes
                ]

    def _partials(self, at: int) -> list[U16]:
        """Every channel's SV partial sums at GPR ``at`` (d_head / banks entries)."""
        ds = self.shape.d_head // self.cfg.geometry.banks
        return [np.concatenate([gpr[at + j] for j in range(ds)]) for gpr in self.gpr]

    async def _attend_waves(self, queries: dict[int, U16], stats: StepStats) -> dict[int, U16]:
        """Attention of every query head of the requests in ``queries`` (req -> q_heads x
        d_head): per segment and query of the group, the QK^T and SV loops of all KV heads in
        as few programs as the GPR allows (:mod:`pymodel.golden.decode_waves`)."""
        g, d, group = self.cfg.geometry, self.shape.d_head, self.shape.group
        lanes, bt = g.lanes, self.lay.block_tokens
        head_cols, cols, ds = d // lanes, bt // lanes, d // g.banks
        slots = g.columns_per_row // head_cols
        assert cols == slots, "weights overwrite the scores in place (DpaGpr.of checks it)"
        scores_at, out_at = gpr_map(self.cfg, d)
        gmap = GprMap(head_cols, ds, slots, out_at)
        heads = []  # (req, kv head, DPA id, segments)
        for req in queries:
            for h, i in enumerate(self.requests[req].ids):
                stats.tokens += self.dpa.length(i)
                segs = self.segments_of(self.dpa.length(i))
                stats.segments = max(stats.segments, segs)
                heads.append((req, h, i, segs))
        epus = {(r, h * group + qi): EpuSoftmax(d) for r, h, _, _ in heads for qi in range(group)}
        for seg in range(max((hd[3] for hd in heads), default=0)):
            win = {"first": seg * self.segment, "count": self.segment}
            members = [(r, h, i, *self._window(i, seg)) for r, h, i, segs in heads if seg < segs]
            for qi in range(group):
                cands = [
                    Member(m, frozenset((ch, b) for b, ch in enumerate(m[3])), len(m[3]))
                    for m in members
                ]
                for wave in plan(cands, gmap):
                    prog: list[Instruction] = []
                    for slot in wave:
                        r, h, i, chans, real = slot.member.key
                        self._stage_query(slot.query_gpr, queries[r][h * group + qi])
                        prog += [
                            replace(x, gpr=slot.query_gpr) if x.op is InstOp.WR_INP else x
                            for x in qk_template(self.cfg, i, d, **win)
                        ]
                    await self.backend.run(prog, stats)
                    prog = []
                    for slot in wave:
                        r, h, i, chans, real = slot.member.key
                        scores = self._read_scores(chans, scores_at)
                        probs = epus[r, h * group + qi].weights(scores[:real], len(chans) * bt)
                        self._write_weights(chans, scores_at, probs)  # over the scores
                        prog += sv_template(
                            self.cfg, i, score_gpr=scores_at, out_gpr=slot.out_gpr, d_head=d, **win
                        )
                    await self.backend.run(prog, stats)
                    for slot in wave:
                        r, h = slot.member.key[:2]
                        epus[r, h * group + qi].add(self._partials(slot.out_gpr))
        out = {r: np.zeros((self.shape.q_heads, d), dtype=np.uint16) for r in queries}
        for (r, head), epu in epus.items():
            out[r][head] = epu.output()
        return out

    async def _attend(self, state: _Request, q: U16, stats: StepStats) -> U16:
        """Attention of every query head of the request, segment by segment; with GQA reuse,
        the queries of a pass share one grouped QK^T loop (the K row opened once for all)."""
        g = self.cfg.geometry
        lanes, d, bt = g.lanes, self.shape.d_head, self.lay.block_tokens
        head_cols = d // lanes
        slots = g.columns_per_row // head_cols
        n_pass = self.reuse
        scores_at, out_at = gpr_map(self.cfg, d, n_pass)
        probs_at = scores_at if n_pass == 1 else scores_at + self.segment * slots * n_pass
        out = np.zeros((self.shape.q_heads, d), dtype=np.uint16)
        for h, i in enumerate(state.ids):
            length = self.dpa.length(i)
            stats.tokens += length
            segments = self.segments_of(length)
            stats.segments = max(stats.segments, segments)
            heads = [h * self.shape.group + qi for qi in range(self.shape.group)]
            epus = {head: EpuSoftmax(d) for head in heads}
            for seg in range(segments):
                win = {"first": seg * self.segment, "count": self.segment}
                chans, real = self._window(i, seg)
                n = len(chans)
                for p0 in range(0, len(heads), n_pass):
                    batch = heads[p0 : p0 + n_pass]
                    for x, head in enumerate(batch):  # the pass's queries side by side
                        self._stage_query(GPR_QUERY + x * head_cols, q[head])
                    prog = (
                        qk_template(self.cfg, i, d, **win)
                        if n_pass == 1
                        else qk_group_template(
                            self.cfg, i, len(batch), d, score_gpr=scores_at, **win
                        )
                    )
                    await self.backend.run(prog, stats)
                    for x, head in enumerate(batch):
                        scores = self._read_scores(chans, scores_at + x, len(batch))
                        probs = epus[head].weights(scores[:real], n * bt)
                        self._write_weights(chans, probs_at, probs)  # block b's, for its SV
                        prog = sv_template(
                            self.cfg, i, score_gpr=probs_at, out_gpr=out_at, d_head=d, **win
                        )
                        await self.backend.run(prog, stats)
                        epus[head].add(self._partials(out_at))
            for head in heads:
                out[head] = epus[head].output()
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
        self,
        cfg: PimConfig,
        shape: AttnShape,
        mode: Mode = Mode.DCS,
        seed: int = 0,
        segment: int | None = None,
        gqa_reuse: bool = False,
        overlap: bool = True,
    ) -> None:
        self.ref = ReferenceBackend(cfg, mode, shape.d_head)
        super().__init__(cfg, shape, self.ref, seed, segment, gqa_reuse, overlap)

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


class EpuSoftmax:
    """The HUB's online softmax of one query head over segments (float32 throughout).

    State: running max ``m`` of the scaled scores, running sum ``l`` of the bf16 weights, output
    accumulator ``acc``. Per segment: :meth:`weights` (``m`` raised to the segment's max first,
    ``l`` and ``acc`` rescaled by ``exp(m_old - m)``, weights ``bf16(exp(s - m))``), then
    :meth:`add` of the channels' SV partial sums for those weights. :meth:`output` is
    ``bf16(acc / l)``."""

    def __init__(self, d_head: int) -> None:
        self.scale = np.float32(1.0 / math.sqrt(d_head))
        self.m = np.float32(-np.inf)
        self.l = np.float32(0.0)
        self.acc = np.zeros(d_head, dtype=np.float32)

    def weights(self, scores: U16, padded: int) -> U16:
        """bf16 weights of the segment's real tokens (``scores``, bf16), zero-padded."""
        s = from_bf16(scores) * self.scale
        m = np.maximum(self.m, s.max())
        alpha = np.exp(self.m - m, dtype=np.float32)  # 0 on the first segment
        p = np.zeros(padded, dtype=np.float32)
        p[: len(s)] = np.exp(s - m, dtype=np.float32)
        w = to_bf16(p)
        self.l = np.float32(self.l * alpha + from_bf16(w).sum(dtype=np.float32))
        self.acc *= alpha
        self.m = m
        return w

    def add(self, partials: Sequence[U16]) -> None:
        """The segment's SV partial sums (bf16, one per channel), added in channel order."""
        for part in partials:
            self.acc += from_bf16(part)

    def output(self) -> U16:
        return to_bf16(self.acc / self.l)


def k_row(block: U16, banks: int, lanes: int) -> U16:
    """K of one block (block_tokens x d_head) as an all-bank row: token t in bank t % banks,
    slot t // banks at columns slot * d_head/lanes (pymodel.golden.dpa's layout)."""
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
    """float64 numpy attention of one query head: softmax(q k^T / sqrt(d)) v."""
    qf, kf, vf = (from_bf16(x).astype(np.float64) for x in (q, k, v))
    s = (kf @ qf) * (1.0 / math.sqrt(len(qf)))
    e = np.exp(s - s.max())
    out: np.ndarray = (e / e.sum()) @ vf
    return out


#: unit roundoff of bf16 (8-bit significand, round to nearest) and of float32
U_BF16, U_F32 = 2.0**-8, 2.0**-24
#: relative error allowed for numpy's float32 exp (measured below 2 ulp; 1e-6 is 16 ulp)
EXP_F32 = 1e-6


def attention_error_bound(
    q: U16, k: U16, v: U16, segments: int = 1, channels: int = 1
) -> np.ndarray:
    """Per output dim, a bound on |pipeline - exact attention| (float64 analysis of the
    segmented pipeline above; ``segments`` softmax segments, ``channels`` partial sums each):

    * score ``t``: a float32 dot product (at most ``d/16 + 16`` roundings, generously) rounded to
      bf16, times ``c = 1/sqrt(d)`` in float32: ``|ds_t| <= d_t = c((u_b + u_f)|s_t| +
      (d/16 + 16) u_f sum_i |q_i k_ti|)``;
    * weight ``t``: ``w_t = bf16(exp(s_t - m))`` is ``exact * exp(ds_t) * (1 + r_t)`` with
      ``|r_t| <= r = (1 + u_b)(1 + EXP_F32) - 1``; every factor common to a segment (its max, the
      rescales) cancels in ``acc / l`` up to the roundings of the rescaling products;
      ``g_t = d_t + r / (1 - r)`` bounds ``|ln(w_t / exact)|``. The normalised weights
      ``p'_t = w_t / sum w`` then satisfy ``|p'_t - p_t| <= p_t x_t e^{x_t}`` with
      ``x_t = g_t + e^{g_max} sum_u p_u g_u`` (from ``ln p'_t/p_t = ln f_t - ln sum p f``, Jensen
      and ``e^g - 1 <= g e^g``);
    * SV: per segment and channel a float32 accumulation (``T/16 + 16`` roundings) rounded to
      bf16; the EPU's float32 adds and rescales (``segments * (channels + 2)``): relative
      ``a = u_b + (T/16 + 16 + segments (channels + 2)) u_f`` of ``sum_t p'_t |v_tj|``;
    * ``l``: float32 sum of ``T`` weights and ``2 segments`` rescales: relative
      ``y = (T + 2 segments) u_f``; finally ``acc / l`` (one float32 division) rounded to bf16.
    """
    qf = from_bf16(q).astype(np.float64)
    kf, vf = from_bf16(k).astype(np.float64), from_bf16(v).astype(np.float64)
    n, dh = kf.shape
    c = 1.0 / math.sqrt(dh)
    raw = kf @ qf
    s = raw * c
    p = np.exp(s - s.max())
    p /= p.sum()
    dt = c * ((U_BF16 + U_F32) * np.abs(raw) + (dh / 16 + 16) * U_F32 * (np.abs(kf) @ np.abs(qf)))
    r = (1 + U_BF16) * (1 + EXP_F32) - 1
    gt = dt + r / (1 - r)
    x = gt + math.exp(float(gt.max())) * float(p @ gt)
    dp = p * x * np.exp(x)
    mag = (p + dp) @ np.abs(vf)  # bounds sum_t p'_t |v_tj|
    a = U_BF16 + (n / 16 + 16 + segments * (channels + 2)) * U_F32
    y = (n + 2 * segments) * U_F32
    pre = dp @ np.abs(vf) + a * mag + (y / (1 - y) + U_F32) * (1 + a) * mag
    o = np.abs(p @ vf)
    bound: np.ndarray = pre + U_BF16 * (o + pre) + 1e-30
    return bound


def with_channels(cfg: PimConfig, channels: int) -> PimConfig:
    return replace(cfg, module=replace(cfg.module, channels=channels))
