"""Reference DPA (dynamic PIM access): paged KV memory, chunk allocator, DYN_LOOP expansion.

This is the specification ``rtl/dpa/dpa_ctrl.sv`` follows bit for bit (``scoreboards/dpa.py``
compares the two). Sizes come from ``cfg.dpa`` and the geometry; ``D_HEAD`` fixes the head size.

Memory model
------------
* **KV block**: ``block_tokens`` consecutive tokens of one request, the tokens whose K fill one
  all-bank row in the token-major layout of :mod:`pymodel.golden.kernels`:
  ``block_tokens = banks * floor(columns_per_row / (D_HEAD / lanes))`` (128 on aim-gddr6, d_head
  128; a head size that does not divide the row, e.g. 80 or 96, leaves the last columns unused).
  A KV block takes ``ROWS_PER_BLOCK = 2`` *virtual rows* of its request: row ``2b`` holds the K
  of block ``b`` (token-major, exactly ``QkKernel``'s row: token ``t`` in bank ``t % banks``,
  slot ``(t % block_tokens) // banks`` at columns ``slot * d_head/lanes``), row ``2b + 1`` its V
  (dim-major: bank ``k`` holds dims ``j * banks + k``; dim slot ``j`` takes the
  ``block_tokens / lanes`` columns from ``j * block_tokens / lanes``, consecutive tokens per
  column).
  Both rows hold ``block_tokens * D_HEAD * 2`` bytes: ``token_bytes = 4 * D_HEAD`` per token.
* **Chunk**: ``cfg.dpa.chunk_rows`` consecutive all-bank rows of one channel (1 MB = 32 rows on
  aim-gddr6), i.e. ``chunk_rows / 2`` KV blocks = ``chunk_tokens`` tokens. Each channel has
  ``chunks_per_channel = rows_per_bank // chunk_rows`` chunks; physical chunk ``(ch, idx)`` is rows
  ``[idx * chunk_rows, (idx + 1) * chunk_rows)`` of channel ``ch`` (the whole bank is KV pool).
* **TCP spreading**: virtual chunk ``v`` of request ``r`` lives on channel
  ``(r + v) % channels``; so a request's KV (its token dimension) is spread round-robin over the
  module's channels and each channel's scheduler works on its own blocks.
* **VA2PA table**: ``max_requests x max_chunks_per_request`` entries, entry ``(r, v)`` = chunk index
  within the channel (the channel is implied). Virtual row ``vr`` of ``r`` is physical row
  ``idx * chunk_rows + vr % chunk_rows`` of channel ``(r + vr // chunk_rows) % channels`` with
  ``idx = table[r][vr // chunk_rows]``.
* **Allocator**: per channel a LIFO stack of freed chunk indices plus a ``fresh`` counter of never
  used ones (so nothing needs initialising). Allocate on channel ``ch``: pop the stack if it is
  not empty, else take ``fresh`` and increment it. Free: push. Both O(1).

Host operations (:meth:`DpaModel.host` never raises; the methods raise :class:`DpaError`)
----------------------------------------------------------------------------------------
* ``OPEN(r, tokens)``: checks in order ``r < max_requests`` (else TOO_MANY_REQUESTS), ``r`` not
  open (ALREADY_OPEN), ``tokens <= max_tokens`` (TOO_LONG); then allocates the request's chunks
  ``0 .. ceil(tokens / chunk_tokens) - 1`` in order (STATIC mode: for ``static_tokens`` at once,
  and ``tokens > static_tokens`` is TOO_LONG).
* ``GROW(r, n)``: UNKNOWN_REQUEST unless ``r`` is open; TOO_LONG when ``len + n`` exceeds
  ``max_tokens`` (STATIC: ``static_tokens``); then allocates the chunks ``len + n`` needs beyond
  those held (lazy: only when a chunk boundary is crossed) and sets ``len += n``.
* Allocation failure: when the channel a new chunk must go on has no free chunk, the chunks this
  operation already took are pushed back (newest first) and NO_MEMORY is returned. After any error
  every request's state (open flag, length, chunks) is exactly as before; only the order of the
  free stacks may differ (the set of free chunks is the same).
* ``CLOSE(r)``: UNKNOWN_REQUEST unless open; frees every chunk (newest first) and forgets ``r``.
* ``TRANSLATE(r, vr)``: UNKNOWN_REQUEST unless open; OUT_OF_RANGE unless
  ``vr < rows_used(r) = ceil(len / block_tokens) * 2``; returns ``(channel, physical row)``.

Instruction path (:class:`Dispatcher`, one instruction word at a time)
---------------------------------------------------------------------
* WR_INP / MAC / RD_OUT / WR_BANK outside a loop pass through unchanged (rows are physical).
* ``DYN_LOOP r body_len first count``: the next ``body_len`` words (DYN_MODI words included) are
  the body. It runs once per KV block of the *window* ``first .. first + count - 1`` of ``r``'s
  ``B = ceil(len(r) / block_tokens)`` blocks (``count = 0``: to the end), i.e.
  ``iters = max(0, min(B, first + count) - first)`` times (:func:`window`; ``len`` as when the
  DYN_LOOP is accepted; the controller takes no host command until the loop is done, so the table
  cannot change meanwhile). A window is how a request longer than the GPR holds scores for is
  processed in segments (``pymodel.golden.decode``). Iteration ``k = 0 .. iters-1`` (block
  ``first + k``) walks the body in order:
  - ``DYN_MODI f s`` emits nothing; for the rest of this iteration's walk, every instruction that
    has operand ``f`` (ROW, COL, GB, OUT, GPR) gets ``f + s * k`` (s two's complement). A later
    DYN_MODI of the same field replaces the stride; each iteration starts with all strides 0.
    (So "advance the operand of the following instructions by ``s`` per iteration".)
  - ROW operands are *virtual* rows of ``r`` relative to the window: ``vr = row + s * k`` must
    satisfy ``0 <= vr < 2 * iters``, else OUT_OF_RANGE and the loop stops there (instructions
    emitted before stay emitted). ``2 * first + vr`` is translated; the emitted row is the
    physical row.
  - COL, GB, OUT, GPR wrap modulo ``2**width`` of their field in the instruction word.
  - ``ch_mask`` of every emitted instruction is one-hot: the channel of its translated row, or
    for instructions without a ROW operand the channel of the iteration's KV block (virtual row
    ``2 * (first + k)``). (TCP: each block's work goes to the channel holding it.)
  - Other fields are copied.
* Errors (reported, never silent; the body words are always consumed): a body holding a
  DYN_LOOP, an unknown opcode or a DYN_MODI of an unknown field -> BAD_PROGRAM, nothing emitted;
  ``r`` not open (or out of range) -> UNKNOWN_REQUEST, nothing emitted; a DYN_MODI outside a loop
  or an unknown opcode outside a loop -> BAD_PROGRAM, the word is dropped. ``len == 0`` runs zero
  iterations without error.

APPEND (the KV append of one decode step: one instruction per request id and step)
-----------------------------------------------------------------------------------
* ``APPEND r gpr`` grows ``r`` by one token exactly as ``GROW(r, 1)`` would (a chunk is allocated
  when the length crosses a chunk boundary), then emits the writes of the new token
  ``t = len(r) - 1``, ``b = t // block_tokens``, ``i = t % block_tokens``, all on the channel of
  block ``b`` (:func:`append_writes`; K row = physical row of virtual row ``2b``, V row the next):
  - K (token-major): one WR_BANK, ``op_size = d_head/lanes``, GPR ``gpr``, bank ``i % banks``,
    column ``(i // banks) * d_head/lanes`` (token ``t``'s slot);
  - V (dim-major): for bank ``k``, dim slot ``j`` (bank-major order) one WR_BANK of one column:
    GPR ``gpr + d_head/lanes + k * d_head/banks + j``, column ``j * block_tokens/lanes + i //
    lanes`` -- the column holding tokens ``i - i % lanes ..``, rewritten whole (the HUB stages
    the column's tokens: the earlier ones of the column, ``t``, zeros after it).
  GPR operands wrap modulo ``2**width``. Errors (nothing grown, nothing emitted): ``r`` not open
  -> UNKNOWN_REQUEST, the new length beyond ``max_tokens`` -> TOO_LONG, no free chunk on the
  channel the next chunk must go on -> NO_MEMORY. APPEND inside a loop body is BAD_PROGRAM (as
  any non-plain word). STATIC mode: the length grows inside the reservation.

Templates (:func:`qk_template`, :func:`sv_template`, :func:`kv_write_template`) are the kernels
of :mod:`pymodel.golden.kernels` rewritten as one DYN_LOOP over the request's blocks;
``qk_template`` expands to exactly ``QkKernel(tokens, acc_init="clear").program()`` (one
channel, rows mapped ``2b -> b``) when ``tokens`` is a multiple of ``block_tokens``; for a
partial last block the loop processes the whole block (scores past the length are don't-care).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from pymodel.config import PimConfig
from pymodel.isa import (
    INST_FIELDS,
    INST_OPCODE_BITS,
    InstOp,
    Instruction,
    ModiField,
    decode_inst,
    encode_inst,
    inst_widths,
)

D_HEAD = 128  # head size the KV layout assumes (every model of the paper's Table I)
ROWS_PER_BLOCK = 2  # virtual rows per KV block: K row, V row
MODI_NAMES = {
    ModiField.ROW: "row",
    ModiField.COL: "col",
    ModiField.GB: "gb",
    ModiField.OUT: "out",
    ModiField.GPR: "gpr",
}


class DpaStatus(IntEnum):
    """Status codes of host responses and instruction-path errors (``pim_pkg::DpaSt*``)."""

    OK = 0
    NO_MEMORY = 1  # a chunk was needed on a channel with no free chunk
    UNKNOWN_REQUEST = 2  # request not open (never opened, closed, or id out of range)
    ALREADY_OPEN = 3  # OPEN of an open request
    TOO_MANY_REQUESTS = 4  # OPEN with a request id >= max_requests (no table slot)
    TOO_LONG = 5  # length would exceed max_chunks_per_request chunks (STATIC: static_tokens)
    OUT_OF_RANGE = 6  # virtual row beyond the request's current length
    BAD_PROGRAM = 7  # stray DYN_MODI, nested DYN_LOOP, unknown opcode or MODI field


class HostOp(IntEnum):
    OPEN = 0
    GROW = 1
    CLOSE = 2
    TRANSLATE = 3


class DpaError(Exception):
    """Base of the typed DPA errors; ``status`` is the code the hardware reports."""

    status = DpaStatus.OK

    def __init__(self, msg: str) -> None:
        super().__init__(f"{self.status.name}: {msg}")


class OutOfMemory(DpaError):
    status = DpaStatus.NO_MEMORY


class UnknownRequest(DpaError):
    status = DpaStatus.UNKNOWN_REQUEST


class AlreadyOpen(DpaError):
    status = DpaStatus.ALREADY_OPEN


class TooManyRequests(DpaError):
    status = DpaStatus.TOO_MANY_REQUESTS


class TooLong(DpaError):
    status = DpaStatus.TOO_LONG


class OutOfRange(DpaError):
    status = DpaStatus.OUT_OF_RANGE


class BadProgram(DpaError):
    status = DpaStatus.BAD_PROGRAM


class DpaConfigError(ValueError):
    """The config cannot hold the DPA layout (names the field)."""


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class DpaLayout:
    """Derived sizes of the paged KV memory for one config."""

    channels: int
    chunk_rows: int
    chunks_per_channel: int
    block_tokens: int
    max_requests: int
    max_chunks: int  # per request
    row_bytes: int  # one all-bank row

    @staticmethod
    def of(cfg: PimConfig, d_head: int = D_HEAD) -> DpaLayout:
        g, d = cfg.geometry, cfg.dpa
        if d_head <= 0 or d_head % g.lanes or d_head % g.banks:
            raise DpaConfigError(
                f"d_head = {d_head} must be a multiple of {g.lanes} lanes and {g.banks} banks"
            )
        # a K row holds whole heads only: columns_per_row // (d_head / lanes) slots per bank
        # (a head size not dividing the row leaves the remaining columns unused)
        slots = g.columns_per_row // (d_head // g.lanes)
        block_tokens = g.banks * slots
        if (
            not slots
            or block_tokens % g.lanes
            or (d_head // g.banks) * (block_tokens // g.lanes) > g.columns_per_row
        ):
            raise DpaConfigError(
                f"d_head = {d_head}: a KV block does not fit one row of "
                f"{g.columns_per_row} columns (geometry.columns_per_row)"
            )
        if d.chunk_rows % ROWS_PER_BLOCK:
            raise DpaConfigError(f"dpa.chunk_rows = {d.chunk_rows} must be even (K row + V row)")
        return DpaLayout(
            channels=cfg.module.channels,
            chunk_rows=d.chunk_rows,
            chunks_per_channel=g.rows_per_bank // d.chunk_rows,
            block_tokens=block_tokens,
            max_requests=d.max_requests,
            max_chunks=d.max_chunks_per_request,
            row_bytes=g.banks * g.row_bytes,
        )

    @property
    def chunk_tokens(self) -> int:
        return self.chunk_rows // ROWS_PER_BLOCK * self.block_tokens

    @property
    def max_tokens(self) -> int:
        return self.max_chunks * self.chunk_tokens

    @property
    def num_chunks(self) -> int:
        return self.channels * self.chunks_per_channel

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_rows * self.row_bytes

    @property
    def token_bytes(self) -> int:
        return ROWS_PER_BLOCK * self.row_bytes // self.block_tokens

    def chunks_for(self, tokens: int) -> int:
        return _cdiv(tokens, self.chunk_tokens)

    def channel_of(self, req: int, vchunk: int) -> int:
        return (req + vchunk) % self.channels


@dataclass
class _Request:
    length: int = 0
    chunks: list[int] = field(default_factory=list)  # chunk index (within its channel) per vchunk


@dataclass(frozen=True)
class Response:
    """Host response: status, and for TRANSLATE the physical (channel, row)."""

    status: DpaStatus
    channel: int = 0
    row: int = 0


@dataclass(frozen=True)
class DpaStats:
    capacity_bytes: int
    allocated_bytes: int
    token_bytes: int
    open_requests: int
    table_entries_used: int
    table_entries: int
    free_chunks: int

    @property
    def utilization(self) -> float:
        """Bytes holding real tokens / capacity."""
        return self.token_bytes / self.capacity_bytes if self.capacity_bytes else 0.0

    @property
    def fragmentation(self) -> float:
        """Internal fragmentation: allocated bytes not holding tokens / allocated bytes."""
        if not self.allocated_bytes:
            return 0.0
        return 1.0 - self.token_bytes / self.allocated_bytes

    @property
    def table_occupancy(self) -> float:
        return self.table_entries_used / self.table_entries


class DpaModel:
    """Page table + allocator of one module. ``static_tokens`` selects STATIC (baseline) mode."""

    def __init__(
        self, cfg: PimConfig, static_tokens: int | None = None, d_head: int = D_HEAD
    ) -> None:
        self.cfg = cfg
        self.lay = DpaLayout.of(cfg, d_head)
        if static_tokens is not None and not 0 <= static_tokens <= self.lay.max_tokens:
            raise DpaConfigError(
                f"static_tokens = {static_tokens} out of range [0, {self.lay.max_tokens}]"
            )
        self.static_tokens = static_tokens
        self.d_head = d_head
        self.reset()

    def reset(self) -> None:
        """Power-on state (what the RTL's reset gives): no request, every chunk free."""
        self.reqs: dict[int, _Request] = {}
        self.stacks: list[list[int]] = [[] for _ in range(self.lay.channels)]
        self.fresh: list[int] = [0] * self.lay.channels

    # ------------------------------------------------------------------ allocator
    def free_on(self, ch: int) -> int:
        return len(self.stacks[ch]) + self.lay.chunks_per_channel - self.fresh[ch]

    @property
    def free_chunks(self) -> int:
        return sum(self.free_on(ch) for ch in range(self.lay.channels))

    def _pop(self, ch: int) -> int:
        if self.stacks[ch]:
            return self.stacks[ch].pop()
        idx = self.fresh[ch]
        self.fresh[ch] += 1
        return idx

    def _push(self, ch: int, idx: int) -> None:
        self.stacks[ch].append(idx)

    def _free_from(self, req: int, r: _Request, keep: int) -> None:
        """Free vchunks ``keep ..`` of ``r``, newest first."""
        while len(r.chunks) > keep:
            v = len(r.chunks) - 1
            self._push(self.lay.channel_of(req, v), r.chunks.pop())

    def _alloc_to(self, req: int, r: _Request, n: int) -> None:
        """Give ``r`` chunks up to ``n`` in total, all or nothing."""
        old = len(r.chunks)
        for v in range(old, n):
            ch = self.lay.channel_of(req, v)
            if self.free_on(ch) == 0:
                self._free_from(req, r, old)
                raise OutOfMemory(f"request {req}: no free chunk on channel {ch} for chunk {v}")
            r.chunks.append(self._pop(ch))

    # ------------------------------------------------------------------ host operations
    def _open_req(self, req: int) -> _Request:
        r = self.reqs.get(req)
        if r is None:
            raise UnknownRequest(f"request {req} is not open")
        return r

    def _limit(self) -> int:
        return self.lay.max_tokens if self.static_tokens is None else self.static_tokens

    def open(self, req: int, tokens: int = 0) -> None:
        if not 0 <= req < self.lay.max_requests:
            raise TooManyRequests(f"request {req}: the table holds {self.lay.max_requests}")
        if req in self.reqs:
            raise AlreadyOpen(f"request {req} is already open")
        if tokens > self._limit():
            raise TooLong(f"request {req}: {tokens} tokens > {self._limit()}")
        r = _Request()
        reserve = tokens if self.static_tokens is None else self.static_tokens
        self._alloc_to(req, r, self.lay.chunks_for(reserve))
        r.length = tokens
        self.reqs[req] = r

    def grow(self, req: int, n: int) -> None:
        r = self._open_req(req)
        new = r.length + n
        if new > self._limit():
            raise TooLong(f"request {req}: {r.length} + {n} tokens > {self._limit()}")
        if self.static_tokens is None:
            self._alloc_to(req, r, self.lay.chunks_for(new))
        r.length = new

    def close(self, req: int) -> None:
        r = self._open_req(req)
        self._free_from(req, r, 0)
        del self.reqs[req]

    def rows_used(self, req: int) -> int:
        return _cdiv(self._open_req(req).length, self.lay.block_tokens) * ROWS_PER_BLOCK

    def iterations(self, req: int) -> int:
        return _cdiv(self._open_req(req).length, self.lay.block_tokens)

    def translate(self, req: int, vrow: int) -> tuple[int, int]:
        r = self._open_req(req)
        used = self.rows_used(req)
        if not 0 <= vrow < used:
            raise OutOfRange(f"request {req}: virtual row {vrow} not in [0, {used})")
        v, off = divmod(vrow, self.lay.chunk_rows)
        return self.lay.channel_of(req, v), r.chunks[v] * self.lay.chunk_rows + off

    def host(self, op: HostOp | int, req: int, arg: int = 0) -> Response:
        """One host command as the hardware sees it: errors become a status."""
        try:
            op = HostOp(op)
            if op is HostOp.OPEN:
                self.open(req, arg)
            elif op is HostOp.GROW:
                self.grow(req, arg)
            elif op is HostOp.CLOSE:
                self.close(req)
            else:
                ch, row = self.translate(req, arg)
                return Response(DpaStatus.OK, ch, row)
        except DpaError as exc:
            return Response(exc.status)
        return Response(DpaStatus.OK)

    # ------------------------------------------------------------------ observers
    def length(self, req: int) -> int:
        return self._open_req(req).length

    def is_open(self, req: int) -> bool:
        return req in self.reqs

    def chunks(self, req: int) -> list[tuple[int, int]]:
        """Physical chunks (channel, index) of ``req`` in virtual order."""
        r = self._open_req(req)
        return [(self.lay.channel_of(req, v), idx) for v, idx in enumerate(r.chunks)]

    def stats(self) -> DpaStats:
        lay = self.lay
        used = sum(len(r.chunks) for r in self.reqs.values())
        return DpaStats(
            capacity_bytes=lay.num_chunks * lay.chunk_bytes,
            allocated_bytes=used * lay.chunk_bytes,
            token_bytes=sum(r.length for r in self.reqs.values()) * lay.token_bytes,
            open_requests=len(self.reqs),
            table_entries_used=used,
            table_entries=lay.max_requests * lay.max_chunks,
            free_chunks=self.free_chunks,
        )

    def check_invariants(self) -> None:
        """Raise AssertionError unless: every chunk is owned once or free once (never both),
        owned + free = all chunks, each request holds exactly the chunks its length needs
        (STATIC: its reservation), and translation is one-to-one."""
        lay = self.lay
        owner: dict[tuple[int, int], tuple[int, int]] = {}
        for req, r in self.reqs.items():
            want = lay.chunks_for(r.length if self.static_tokens is None else self.static_tokens)
            assert len(r.chunks) == want, f"request {req}: {len(r.chunks)} chunks, needs {want}"
            assert r.length <= self._limit()
            for v, idx in enumerate(r.chunks):
                key = (lay.channel_of(req, v), idx)
                assert 0 <= idx < self.fresh[key[0]], f"chunk {key} owned but never allocated"
                assert key not in owner, f"chunk {key} owned by {owner[key]} and {(req, v)}"
                owner[key] = (req, v)
        for ch in range(lay.channels):
            assert 0 <= self.fresh[ch] <= lay.chunks_per_channel
            free = self.stacks[ch]
            assert len(set(free)) == len(free), f"channel {ch}: a chunk is free twice"
            for idx in free:
                assert idx < self.fresh[ch] and (ch, idx) not in owner, f"chunk {(ch, idx)}"
            assert len(free) + sum(1 for k in owner if k[0] == ch) == self.fresh[ch]
        assert len(owner) + self.free_chunks == lay.num_chunks


# ---------------------------------------------------------------------------- instruction words


def _layout(cfg: PimConfig) -> dict[InstOp, dict[str, tuple[int, int]]]:
    """(offset, width) of every operand of every instruction."""
    w = inst_widths(cfg)
    out: dict[InstOp, dict[str, tuple[int, int]]] = {}
    for op in InstOp:
        pos, fl = INST_OPCODE_BITS, {}
        for name in INST_FIELDS[op]:
            fl[name] = (pos, w[name])
            pos += w[name]
        out[op] = fl
    return out


def unpack(word: int, cfg: PimConfig) -> tuple[int, dict[str, int]]:
    """Opcode and raw operand values of a word (no range checks; op_size etc. as stored)."""
    opcode = word & ((1 << INST_OPCODE_BITS) - 1)
    if opcode not in InstOp._value2member_map_:
        return opcode, {}
    lay = _layout(cfg)[InstOp(opcode)]
    return opcode, {n: (word >> o) & ((1 << w) - 1) for n, (o, w) in lay.items()}


def pack(opcode: InstOp, values: dict[str, int], cfg: PimConfig, rest: int = 0) -> int:
    """Word with ``values`` (raw, wrapped to their widths) over ``rest``'s other bits."""
    word = rest
    for name, (o, w) in _layout(cfg)[opcode].items():
        if name in values:
            mask = ((1 << w) - 1) << o
            word = (word & ~mask) | ((values[name] << o) & mask)
    return (word & ~((1 << INST_OPCODE_BITS) - 1)) | int(opcode)


PLAIN_OPS = frozenset({InstOp.WR_INP, InstOp.MAC, InstOp.RD_OUT, InstOp.WR_BANK})


@dataclass(frozen=True)
class LoopResult:
    """What one word did: the words emitted, and an error status (None when fine)."""

    out: tuple[int, ...] = ()
    error: DpaStatus | None = None


class Dispatcher:
    """The DPA instruction path, word by word (the RTL's instruction stream)."""

    def __init__(self, dpa: DpaModel) -> None:
        self.dpa = dpa
        self.cfg = dpa.cfg
        self.reset()

    def reset(self) -> None:
        self.body: list[int] | None = None  # words of the loop being collected
        self.body_len = 0
        self.req = 0
        self.first = self.count = 0  # the collected DYN_LOOP's block window

    @property
    def collecting(self) -> bool:
        return self.body is not None

    def push(self, word: int) -> LoopResult:
        opcode, vals = unpack(word, self.cfg)
        if self.body is not None:
            self.body.append(word)
            if len(self.body) < self.body_len:
                return LoopResult()
            body, self.body = self.body, None
            return self._expand(self.req, body)
        if opcode == InstOp.DYN_LOOP:
            self.req, self.body_len, self.body = vals["req"], vals["body_len"] + 1, []
            self.first, self.count = vals["first"], vals["count"]
            return LoopResult()
        if opcode == InstOp.APPEND:
            return self._append(vals["req"], vals["gpr"])
        if opcode in PLAIN_OPS:
            return LoopResult((word,))
        return LoopResult((), DpaStatus.BAD_PROGRAM)

    def _append(self, req: int, gpr: int) -> LoopResult:
        """``APPEND req gpr`` (module docstring): grow by one token, then its K and V writes."""
        try:
            self.dpa.grow(req, 1)
        except DpaError as exc:  # nothing changed, nothing emitted
            return LoopResult((), exc.status)
        words = append_writes(self.dpa, req, gpr)
        return LoopResult(tuple(encode_inst(i, self.cfg) for i in words))

    def _expand(self, req: int, body: Sequence[int]) -> LoopResult:
        cfg, dpa, lay = self.cfg, self.dpa, self.dpa.lay
        decoded = [unpack(w, cfg) for w in body]
        for opcode, vals in decoded:
            if opcode not in PLAIN_OPS and opcode != InstOp.DYN_MODI:
                return LoopResult((), DpaStatus.BAD_PROGRAM)
            if opcode == InstOp.DYN_MODI and vals["field"] >= len(ModiField):
                return LoopResult((), DpaStatus.BAD_PROGRAM)
        if not dpa.is_open(req):
            return LoopResult((), DpaStatus.UNKNOWN_REQUEST)
        widths = inst_widths(cfg)
        half = 1 << (widths["stride"] - 1)
        first, n = window(dpa.iterations(req), self.first, self.count)
        used = n * ROWS_PER_BLOCK  # virtual rows of the window, relative to its first block
        out: list[int] = []
        for k in range(n):
            off = dict.fromkeys(MODI_NAMES.values(), 0)
            blk_ch = lay.channel_of(req, (first + k) * ROWS_PER_BLOCK // lay.chunk_rows)
            for word, (opcode, vals) in zip(body, decoded, strict=True):
                if opcode == InstOp.DYN_MODI:
                    s = vals["stride"]
                    s -= (1 << widths["stride"]) if s >= half else 0
                    off[MODI_NAMES[ModiField(vals["field"])]] = s * k
                    continue
                new = {n: v + off[n] for n, v in vals.items() if n in off and n != "row"}
                ch = blk_ch
                if "row" in vals:
                    vrow = vals["row"] + off["row"]
                    if not 0 <= vrow < used:
                        return LoopResult(tuple(out), DpaStatus.OUT_OF_RANGE)
                    ch, new["row"] = dpa.translate(req, first * ROWS_PER_BLOCK + vrow)
                new["ch_mask"] = 1 << ch
                out.append(pack(InstOp(opcode), new, cfg, word))
        return LoopResult(tuple(out))


def window(iters: int, first: int, count: int) -> tuple[int, int]:
    """(first block, iterations) of a DYN_LOOP with window ``first``/``count`` (0 = to the end)
    over a request of ``iters`` KV blocks; none when ``first`` is past the end."""
    end = iters if count == 0 else min(iters, first + count)
    return first, max(0, end - first)


def segment_count(tokens: int, block_tokens: int, segment_blocks: int) -> int:
    """Block windows of ``segment_blocks`` blocks that cover ``tokens`` tokens."""
    return _cdiv(_cdiv(tokens, block_tokens), segment_blocks)


def append_writes(dpa: DpaModel, req: int, gpr: int) -> list[Instruction]:
    """The WR_BANK words of APPEND for ``req``'s newest token (module docstring): K from GPR
    ``gpr ..``, V column (bank ``k``, dim slot ``j``) from GPR ``gpr + head_cols + k * ds + j``."""
    g, lay = dpa.cfg.geometry, dpa.lay
    head_cols, ds = dpa.d_head // g.lanes, dpa.d_head // g.banks
    cols = lay.block_tokens // g.lanes
    gmask = (1 << inst_widths(dpa.cfg)["gpr"]) - 1  # GPR operands wrap, as in a loop
    b, i = divmod(dpa.length(req) - 1, lay.block_tokens)
    ch, k_row = dpa.translate(req, ROWS_PER_BLOCK * b)
    m = 1 << ch
    out = [
        Instruction(
            InstOp.WR_BANK,
            ch_mask=m,
            op_size=head_cols,
            gpr=gpr & gmask,
            bank=i % g.banks,
            row=k_row,
            col=(i // g.banks) * head_cols,
        )
    ]
    out += [
        Instruction(
            InstOp.WR_BANK,
            ch_mask=m,
            op_size=1,
            gpr=(gpr + head_cols + k * ds + j) & gmask,
            bank=k,
            row=k_row + 1,
            col=j * cols + i // g.lanes,
        )
        for k in range(g.banks)
        for j in range(ds)
    ]
    return out


def expand_prefix(
    dpa: DpaModel, prog: Sequence[Instruction]
) -> tuple[list[Instruction], int, DpaError | None]:
    """Expand a program up to its first failure, as the hardware does it: the words emitted
    until then, how many instructions were taken (through the failing one) and the typed error
    (None: the whole program expanded)."""
    disp = Dispatcher(dpa)
    out: list[Instruction] = []
    errors: dict[DpaStatus, type[DpaError]] = {
        e.status: e for e in (OutOfRange, UnknownRequest, BadProgram, TooLong, OutOfMemory)
    }
    for k, inst in enumerate(prog):
        res = disp.push(encode_inst(inst, dpa.cfg))
        out.extend(decode_inst(w, dpa.cfg) for w in res.out)
        if res.error is not None:
            return out, k + 1, errors[res.error](f"at {inst}")
    if disp.collecting:
        return out, len(prog), BadProgram("program ends inside a DYN_LOOP body")
    return out, len(prog), None


def expand(dpa: DpaModel, prog: Iterable[Instruction]) -> list[Instruction]:
    """Expand a program (software view): raises the typed error of the first failure."""
    out, _, err = expand_prefix(dpa, list(prog))
    if err is not None:
        raise err
    return out


def append_template(req: int, gpr: int) -> list[Instruction]:
    """One decode step's KV append of ``req`` (the HUB stages K and the V columns at ``gpr``)."""
    return [Instruction(InstOp.APPEND, req=req, gpr=gpr)]


# ---------------------------------------------------------------------------- templates


def _all_channels(cfg: PimConfig) -> int:
    return (1 << cfg.module.channels) - 1


def qk_template(
    cfg: PimConfig, req: int, d_head: int = D_HEAD, first: int = 0, count: int = 0
) -> list[Instruction]:
    """QK^T (one query, K token-major) over req's current length (or the block window
    ``first``/``count``): ``QkKernel``'s program with one loop iteration per K row. Scores of
    window block ``b`` land at GPR ``head_cols + b * slots``."""
    g = cfg.geometry
    head_cols = d_head // g.lanes
    slots = g.columns_per_row // head_cols
    obuf = cfg.buffers.obuf_entries
    body = [Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=ROWS_PER_BLOCK)]
    for s0 in range(0, slots, obuf):  # more slots than accumulators: read out per group
        n = min(obuf, slots - s0)
        body += [
            Instruction(InstOp.MAC, ch_mask=1, op_size=head_cols, col=s * head_cols, out=s - s0)
            for s in range(s0, s0 + n)
        ]
        if s0 == 0:
            body.append(Instruction(InstOp.DYN_MODI, field=ModiField.GPR, stride=slots))
        body.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=n, gpr=head_cols + s0, out=0))
    _check_body(cfg, "QK^T", d_head, body)
    return [
        Instruction(InstOp.WR_INP, ch_mask=_all_channels(cfg), op_size=head_cols, gpr=0, gb=0),
        Instruction(InstOp.DYN_LOOP, req=req, body_len=len(body), first=first, count=count),
        *body,
    ]


def group_queries(cfg: PimConfig, group: int, d_head: int = D_HEAD) -> int:
    """Queries of a KV group one :func:`qk_group_template` loop serves while the K row is open:
    as many as the GB holds (``d_head/lanes`` entries each) and the loop body fits
    ``dpa.max_body_len`` (``2 + slots * n + ceil(slots * n / obuf)`` words); 1 = no reuse."""
    g = cfg.geometry
    head_cols = d_head // g.lanes
    slots, obuf = g.columns_per_row // head_cols, cfg.buffers.obuf_entries
    best = 1
    for n in range(1, group + 1):
        body = 2 + slots * n + _cdiv(slots * n, obuf)
        if n * head_cols <= cfg.buffers.gb_entries and body <= cfg.dpa.max_body_len:
            best = n
    return best


def qk_group_template(
    cfg: PimConfig,
    req: int,
    queries: int,
    d_head: int = D_HEAD,
    first: int = 0,
    count: int = 0,
    score_gpr: int | None = None,
) -> list[Instruction]:
    """QK^T of ``queries`` query heads of one KV group with K-row reuse (GQA): the queries sit
    side by side in the GB (WR_INP of GPR ``0 .. queries * d_head/lanes - 1``); per K row every
    (slot ``s``, query ``q``) MAC runs while the row is open, output ``s * queries + q``. Scores
    of window block ``b``, slot ``s``, query ``q`` land at GPR ``score_gpr + (b * slots + s) *
    queries + q`` (default ``score_gpr``: right after the queries). ``queries = 1`` is
    :func:`qk_template`."""
    g = cfg.geometry
    head_cols = d_head // g.lanes
    slots, obuf = g.columns_per_row // head_cols, cfg.buffers.obuf_entries
    per = slots * queries  # outputs of one block
    base = queries * head_cols if score_gpr is None else score_gpr
    body = [
        Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=ROWS_PER_BLOCK),
        Instruction(InstOp.DYN_MODI, field=ModiField.GPR, stride=per),
    ]
    for o0 in range(0, per, obuf):  # more outputs than accumulators: read out per group
        n = min(obuf, per - o0)
        body += [
            Instruction(
                InstOp.MAC,
                ch_mask=1,
                op_size=head_cols,
                col=(o // queries) * head_cols,
                gb=(o % queries) * head_cols,
                out=o - o0,
            )
            for o in range(o0, o0 + n)
        ]
        body.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=n, gpr=base + o0, out=0))
    _check_body(cfg, "grouped QK^T", d_head, body)
    return [
        Instruction(
            InstOp.WR_INP, ch_mask=_all_channels(cfg), op_size=queries * head_cols, gpr=0, gb=0
        ),
        Instruction(InstOp.DYN_LOOP, req=req, body_len=len(body), first=first, count=count),
        *body,
    ]


def sv_template(
    cfg: PimConfig,
    req: int,
    score_gpr: int = 0,
    out_gpr: int | None = None,
    d_head: int = D_HEAD,
    first: int = 0,
    count: int = 0,
) -> list[Instruction]:
    """SV (V dim-major, one row per block) over req's current length: per block, its
    ``block_tokens / lanes`` score entries go to the GB and each dim slot's MAC accumulates into
    OBuf entry ``j``; the partial sums of every channel are read out after the loop."""
    g = cfg.geometry
    lay = DpaLayout.of(cfg, d_head)
    cols = lay.block_tokens // g.lanes
    dim_slots = d_head // g.banks
    if cols > cfg.buffers.gb_entries:
        raise DpaConfigError(f"SV template: a block's {cols} score entries > buffers.gb_entries")
    if out_gpr is None:  # the top of the GPR
        out_gpr = cfg.module.gpr_bytes // g.column_bytes - dim_slots
    obuf = cfg.buffers.obuf_entries
    prog: list[Instruction] = []
    for j0 in range(0, dim_slots, obuf):  # more dim slots than accumulators: one pass per group
        n = min(obuf, dim_slots - j0)
        body = [
            Instruction(InstOp.DYN_MODI, field=ModiField.GPR, stride=cols),
            Instruction(InstOp.WR_INP, ch_mask=1, op_size=cols, gpr=score_gpr, gb=0),
            Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=ROWS_PER_BLOCK),
        ]
        body += [
            Instruction(InstOp.MAC, ch_mask=1, op_size=cols, gb=0, row=1, col=j * cols, out=j - j0)
            for j in range(j0, j0 + n)
        ]
        _check_body(cfg, "SV", d_head, body)
        prog += [
            Instruction(InstOp.DYN_LOOP, req=req, body_len=len(body), first=first, count=count),
            *body,
            Instruction(InstOp.RD_OUT, ch_mask=_all_channels(cfg), op_size=n, gpr=out_gpr + j0),
        ]
    return prog


def _check_body(cfg: PimConfig, what: str, d_head: int, body: list[Instruction]) -> None:
    if len(body) > cfg.dpa.max_body_len:
        raise DpaConfigError(
            f"d_head = {d_head}: the {what} template needs a {len(body)}-instruction DYN_LOOP "
            f"body, dpa.max_body_len = {cfg.dpa.max_body_len}"
        )


def kv_write_template(
    cfg: PimConfig, req: int, v_rows: bool, banks: Sequence[int], gpr: int = 0
) -> list[Instruction]:
    """Write the K (or V) rows of req's current length from the GPR with WR_BANK: per block,
    bank ``b``'s whole row from GPR ``gpr + (k * banks_total + i) * columns``. One loop covers
    at most ``max_body_len - 2`` banks; call it for each bank range."""
    g = cfg.geometry
    if not 1 <= len(banks) <= cfg.dpa.max_body_len - 2:
        raise DpaConfigError(f"{len(banks)} banks do not fit a loop body")
    body = [
        Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=ROWS_PER_BLOCK),
        Instruction(InstOp.DYN_MODI, field=ModiField.GPR, stride=g.banks * g.columns_per_row),
    ]
    body += [
        Instruction(
            InstOp.WR_BANK,
            ch_mask=1,
            op_size=g.columns_per_row,
            bank=b,
            row=int(v_rows),
            col=0,
            gpr=gpr + b * g.columns_per_row,
        )
        for b in banks
    ]
    return [Instruction(InstOp.DYN_LOOP, req=req, body_len=len(body)), *body]
