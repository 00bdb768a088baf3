"""Kernels as HUB instruction streams for one channel: GEMV, QK^T and SV (layouts below).

A kernel has a *program* (``list[Instruction]``, what a scheduler consumes) and, on demand, *data*:
the DRAM rows to preload, the GPR inputs, and a bit-exact reference of the results the program
leaves in the GPR.

Accumulator initialization (``acc_init``): ``"bias"`` is the AiM way, a ``WR_BIAS`` of a zero
bias (GPR entry :func:`bias_gpr`) before an output's first MAC and ``RD_MAC`` to read it out (what
the AiM controller and CENT do); ``"clear"`` is PIMphony's I/O-aware buffering option, ``RD_OUT``
reads and clears in the register domain, no bias write on the data bus (entries start cleared).

Layouts (``lanes`` = bf16 per column = banks = 16 on aim-gddr6):

* GEMV ``y = W x``: output ``o`` in bank ``o % banks``; segment (group of ``banks`` outputs, input
  tile of up to ``gb_entries * lanes`` inputs) takes ``tile / lanes`` consecutive columns of one
  all-bank row; segments are packed into rows in order (so small ``d_in`` shares rows). The last
  input tile may be short (``d_in`` only needs to be a multiple of ``lanes``).
* QK^T, K token-major: token ``t`` in bank ``t % banks``, slot ``t // banks``; a slot takes
  ``d_head / lanes`` columns; ``slots_per_row`` slots fill a row. The ``group`` queries of a GQA
  group are in GB entries ``[i * d_head/lanes, (i+1) * d_head/lanes)`` and all use the open row.
  Score ``(query i, slot s)`` is flat index ``f = s * group + i``: OBuf entry ``f % obuf`` and GPR
  ``out_gpr + f``; 16 banks = the 16 tokens of the slot.
* Ping-pong buffering (``halves=True``, the prior-work scheme PINGPONG is compared as): the GB
  and the OBuf entries the kernel may use are split in two halves that alternate: input tiles
  (GEMV) and score blocks (SV) hold half the GB each, consecutive ones in alternate halves, and
  results fill one half of the OBuf entries while the other is read out. Every other kernel uses
  its buffers whole.
* SV, V dim-major: dim ``d`` in bank ``d % banks`` (dim slot ``j = d // banks``); a row holds
  ``columns * lanes`` consecutive tokens of one dim slot. Scores (``lanes`` per GB entry) stream
  through the GB one row-block of tokens at a time. With ``obuf >= d_head / banks`` each dim slot
  keeps its accumulator over all blocks; otherwise every block's partial sums are read out and the
  host adds them in float32 (``SvKernel.reference`` does exactly that).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pymodel.config import PimConfig
from pymodel.errors import PimphonyError
from pymodel.golden.bf16 import U16, from_bf16, random_bf16, to_bf16
from pymodel.golden.channel_data import adder_tree
from pymodel.golden.sched import Mode
from pymodel.isa import InstOp, Instruction

GPR_IN = 0  # kernels place inputs from GPR entry 0 and outputs after them
ACC_INITS = ("bias", "clear")


def obuf_for(mode: Mode, cfg: PimConfig) -> int:
    """OBuf entries a kernel uses under ``mode``: one accumulator per bank in STATIC (the AiM
    baseline), every entry of ``buffers.obuf_entries`` in PINGPONG and DCS."""
    return 1 if mode is Mode.STATIC else cfg.buffers.obuf_entries


def buffer_args(mode: Mode, cfg: PimConfig) -> dict[str, Any]:
    """Kernel buffer arguments for ``mode``: :func:`obuf_for`, and ping-pong halves in PINGPONG
    (the same total GB and OBuf as DCS, split in two alternating halves)."""
    return {"obuf": obuf_for(mode, cfg), "halves": mode is Mode.PINGPONG}


def bias_gpr(cfg: PimConfig) -> int:
    """GPR entry holding the zero bias that ``WR_BIAS`` writes (the last entry)."""
    return cfg.module.gpr_bytes // cfg.geometry.column_bytes - 1


class KernelError(PimphonyError, ValueError):
    """A kernel shape that does not fit the device: names the dimension and the limit."""


@dataclass
class KernelData:
    """Everything needed to run a kernel with real numbers."""

    rows: dict[int, U16]  # all-bank row -> (banks, columns, lanes) bf16
    gpr: dict[int, U16]  # GPR entry -> lanes bf16 (inputs)
    expected: dict[int, U16]  # GPR entry -> lanes bf16 the program must leave there
    operands: dict[str, U16] = field(default_factory=dict)  # the raw matrices, for numpy checks


def _mac(**kw: int) -> Instruction:
    return Instruction(InstOp.MAC, ch_mask=1, **kw)


def _chunks(first: int, count: int, limit: int) -> Iterator[tuple[int, int]]:
    """Split ``count`` consecutive items starting at ``first`` into runs of at most ``limit``."""
    done = 0
    while done < count:
        n = min(limit, count - done)
        yield first + done, n
        done += n


def half(n: int, halves: bool) -> int:
    """Entries of a buffer of ``n`` one half holds (``halves``), else ``n``."""
    return max(1, n // 2) if halves else n


class _Flusher:
    """Hands out OBuf entries in order, initializes them (``acc_init``) and reads them out (RD_MAC
    or RD_OUT) when they are all in use; with ``halves`` the entries alternate between two
    halves (ping-pong): one fills while the other's read-out drains."""

    def __init__(
        self, cfg: PimConfig, entries: int, gpr_base: int, acc_init: str, halves: bool = False
    ) -> None:
        if acc_init not in ACC_INITS:
            raise KernelError(f"acc_init = {acc_init!r} is not one of {', '.join(ACC_INITS)}")
        self.cfg, self.gpr_base = cfg, gpr_base
        self.entries = half(entries, halves)  # entries one fill uses
        self.halves = halves and entries > 1
        self.base = 0  # first entry of the half being filled
        self.read_op = InstOp.RD_MAC if acc_init == "bias" else InstOp.RD_OUT
        self.bias = acc_init == "bias"
        self.flat = 0  # results produced so far
        self.pending = 0  # results sitting in OBuf entries 0..pending-1

    def take(self) -> int:
        out = self.base + self.pending
        self.pending += 1
        self.flat += 1
        if self.gpr_base + self.flat > bias_gpr(self.cfg):
            raise KernelError(
                f"{self.flat} results from GPR entry {self.gpr_base} exceed the GPR "
                f"({bias_gpr(self.cfg)} entries, module.gpr_bytes)"
            )
        return out

    def init(self, out: int) -> list[Instruction]:
        """Instructions that set OBuf entry ``out`` to zero before its first MAC."""
        if not self.bias:
            return []
        return [Instruction(InstOp.WR_BIAS, ch_mask=1, op_size=1, gpr=bias_gpr(self.cfg), out=out)]

    def full(self) -> bool:
        return self.pending == self.entries

    def flush(self) -> Iterator[Instruction]:
        first_gpr = self.gpr_base + self.flat - self.pending
        for i, (gpr, n) in enumerate(_chunks(first_gpr, self.pending, self.cfg.module.max_op_size)):
            out = self.base + i * self.cfg.module.max_op_size
            yield Instruction(self.read_op, ch_mask=1, op_size=n, gpr=gpr, out=out)
        self.pending = 0
        if self.halves:
            self.base = self.entries - self.base


# ---------------------------------------------------------------------------- GEMV


@dataclass(frozen=True)
class GemvKernel:
    d_out: int
    d_in: int
    cfg: PimConfig
    obuf: int | None = None  # OBuf entries the kernel may use (default: all)
    base_row: int = 0
    acc_init: str = "bias"
    halves: bool = False  # ping-pong: GB and OBuf entries in two alternating halves

    def __post_init__(self) -> None:
        g = self.cfg.geometry
        if self.d_out <= 0 or self.d_out % g.banks:
            raise KernelError(f"d_out = {self.d_out} must be a positive multiple of {g.banks}")
        if self.d_in <= 0 or self.d_in % g.lanes:
            raise KernelError(f"d_in = {self.d_in} must be a positive multiple of {g.lanes}")
        _check_obuf(self.cfg, self.entries)
        if self.base_row + self.rows > g.rows_per_bank:
            raise KernelError(
                f"weights need {self.rows} rows from row {self.base_row}, "
                f"the bank has {g.rows_per_bank}"
            )

    @property
    def entries(self) -> int:
        return self.obuf or self.cfg.buffers.obuf_entries

    @property
    def tile(self) -> int:
        g, b = self.cfg.geometry, self.cfg.buffers
        return min(half(b.gb_entries, self.halves), g.columns_per_row) * g.lanes

    def gb_base(self, tile: int) -> int:
        """First GB entry of input tile ``tile`` (ping-pong: alternate halves)."""
        return (tile % 2) * half(self.cfg.buffers.gb_entries, True) if self.halves else 0

    @property
    def seg_cols(self) -> int:
        return min(self.d_in, self.tile) // self.cfg.geometry.lanes

    @property
    def tiles(self) -> int:
        return -(-self.d_in // self.tile)

    def tile_cols(self, tile: int) -> int:
        """Columns (= GB entries) of input tile ``tile``; only the last may be short."""
        return min(self.seg_cols, self.d_in // self.cfg.geometry.lanes - tile * self.seg_cols)

    @property
    def groups(self) -> int:
        return self.d_out // self.cfg.geometry.banks

    @property
    def segs_per_row(self) -> int:
        return self.cfg.geometry.columns_per_row // self.seg_cols

    @property
    def rows(self) -> int:
        return -(-self.groups * self.tiles // self.segs_per_row)

    @property
    def out_gpr(self) -> int:
        return GPR_IN + self.d_in // self.cfg.geometry.lanes

    @property
    def block_groups(self) -> int:
        """Output groups accumulated together (one OBuf fill)."""
        return half(self.entries, self.halves)

    def place(self, group: int, tile: int) -> tuple[int, int]:
        """(row, column) of the weights of ``group`` x input ``tile``: segments are packed into
        rows in the order the program's MACs read them (block, tile, group), so a row that holds
        several segments serves consecutive MACs."""
        first = group - group % self.block_groups
        in_block = min(self.block_groups, self.groups - first)
        seg = first * self.tiles + tile * in_block + group - first
        return self.base_row + seg // self.segs_per_row, (seg % self.segs_per_row) * self.seg_cols

    def program(self) -> list[Instruction]:
        prog: list[Instruction] = []
        flush = _Flusher(self.cfg, self.entries, self.out_gpr, self.acc_init, self.halves)
        n_tiles = 0  # tiles written so far (ping-pong alternates GB halves across blocks too)
        for first in range(0, self.groups, self.block_groups):
            block = range(first, min(first + self.block_groups, self.groups))
            outs: list[int] = []
            for tile in range(self.tiles):
                cols, gb = self.tile_cols(tile), self.gb_base(n_tiles)
                n_tiles += 1
                prog.append(
                    Instruction(
                        InstOp.WR_INP,
                        ch_mask=1,
                        op_size=cols,
                        gpr=GPR_IN + tile * self.seg_cols,
                        gb=gb,
                    )
                )
                for j, grp in enumerate(block):
                    row, col = self.place(grp, tile)
                    out = flush.take() if tile == 0 else outs[j]
                    if tile == 0:
                        outs.append(out)
                        prog.extend(flush.init(out))
                    prog.append(_mac(op_size=cols, gb=gb, row=row, col=col, out=out))
            prog.extend(flush.flush())
        return prog

    def data(self, rng: np.random.Generator) -> KernelData:
        g = self.cfg.geometry
        w = random_bf16(rng, (self.d_out, self.d_in))
        x = random_bf16(rng, (self.d_in,))
        rows: dict[int, U16] = {}
        for grp in range(self.groups):
            for tile in range(self.tiles):
                row, col = self.place(grp, tile)
                arr = rows.setdefault(
                    row, np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
                )
                cols = self.tile_cols(tile)
                first = tile * self.seg_cols * g.lanes
                seg = w[grp * g.banks : (grp + 1) * g.banks, first : first + cols * g.lanes]
                arr[:, col : col + cols, :] = seg.reshape(g.banks, cols, g.lanes)
        y = _dot_reference(w, x, g.lanes)
        return KernelData(
            rows,
            _with_bias(self.cfg, _vector_to_gpr(x, GPR_IN, g.lanes)),
            _vector_to_gpr(y, self.out_gpr, g.banks),
            {"w": w, "x": x},
        )


# ---------------------------------------------------------------------------- QK^T


@dataclass(frozen=True)
class QkKernel:
    tokens: int
    cfg: PimConfig
    d_head: int = 128
    group: int = 1  # queries of one GQA group sharing the open K row
    obuf: int | None = None
    base_row: int = 0
    acc_init: str = "bias"
    halves: bool = False  # ping-pong OBuf halves (the queries stay resident in the GB)

    def __post_init__(self) -> None:
        g, b = self.cfg.geometry, self.cfg.buffers
        if self.tokens <= 0:
            raise KernelError(f"tokens = {self.tokens} must be positive")
        if self.d_head % g.lanes or self.d_head > g.row_bytes // 2:
            raise KernelError(
                f"d_head = {self.d_head} must be a multiple of {g.lanes} up to {g.row_bytes // 2}"
            )
        if self.group < 1 or self.group * self.head_cols > b.gb_entries:
            raise KernelError(
                f"group = {self.group}: {self.group} queries x {self.head_cols} "
                f"GB entries exceed gb_entries = {b.gb_entries}"
            )
        _check_obuf(self.cfg, self.entries)
        if self.base_row + self.rows > g.rows_per_bank:
            raise KernelError(
                f"K needs {self.rows} rows from row {self.base_row}, the bank has {g.rows_per_bank}"
            )

    @property
    def entries(self) -> int:
        return self.obuf or self.cfg.buffers.obuf_entries

    @property
    def head_cols(self) -> int:
        return self.d_head // self.cfg.geometry.lanes

    @property
    def slots(self) -> int:
        return -(-self.tokens // self.cfg.geometry.banks)

    @property
    def slots_per_row(self) -> int:
        return self.cfg.geometry.columns_per_row // self.head_cols

    @property
    def rows(self) -> int:
        return -(-self.slots // self.slots_per_row)

    @property
    def out_gpr(self) -> int:
        return GPR_IN + self.group * self.head_cols

    def program(self) -> list[Instruction]:
        prog = [
            Instruction(
                InstOp.WR_INP, ch_mask=1, op_size=self.group * self.head_cols, gpr=GPR_IN, gb=0
            )
        ]
        flush = _Flusher(self.cfg, self.entries, self.out_gpr, self.acc_init, self.halves)
        for slot in range(self.slots):
            row = self.base_row + slot // self.slots_per_row
            col = (slot % self.slots_per_row) * self.head_cols
            for q in range(self.group):
                out = flush.take()
                prog.extend(flush.init(out))
                prog.append(
                    _mac(op_size=self.head_cols, gb=q * self.head_cols, row=row, col=col, out=out)
                )
                if flush.full():
                    prog.extend(flush.flush())
        prog.extend(flush.flush())
        return prog

    def data(self, rng: np.random.Generator) -> KernelData:
        g = self.cfg.geometry
        k = random_bf16(rng, (self.slots * g.banks, self.d_head))
        k[self.tokens :] = 0
        q = random_bf16(rng, (self.group, self.d_head))
        rows: dict[int, U16] = {}
        for slot in range(self.slots):
            row = self.base_row + slot // self.slots_per_row
            col = (slot % self.slots_per_row) * self.head_cols
            arr = rows.setdefault(
                row, np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
            )
            arr[:, col : col + self.head_cols, :] = k[
                slot * g.banks : (slot + 1) * g.banks
            ].reshape(g.banks, self.head_cols, g.lanes)
        scores = np.stack([_dot_reference(k, q[i], g.lanes) for i in range(self.group)])
        # flat index f = slot * group + i -> GPR out_gpr + f, lanes = the slot's 16 tokens
        expected = {
            self.out_gpr + slot * self.group + i: scores[i, slot * g.banks : (slot + 1) * g.banks]
            for slot in range(self.slots)
            for i in range(self.group)
        }
        inputs = _with_bias(self.cfg, _vector_to_gpr(q.reshape(-1), GPR_IN, g.lanes))
        return KernelData(rows, inputs, expected)


# ---------------------------------------------------------------------------- SV


@dataclass(frozen=True)
class SvKernel:
    tokens: int
    cfg: PimConfig
    d_head: int = 128
    obuf: int | None = None
    base_row: int = 0
    acc_init: str = "bias"
    halves: bool = False  # ping-pong: score blocks in alternating GB halves, OBuf halves

    def __post_init__(self) -> None:
        g = self.cfg.geometry
        if self.tokens <= 0:
            raise KernelError(f"tokens = {self.tokens} must be positive")
        if self.d_head <= 0 or self.d_head % g.banks:
            raise KernelError(f"d_head = {self.d_head} must be a positive multiple of {g.banks}")
        _check_obuf(self.cfg, self.entries)
        if self.base_row + self.rows > g.rows_per_bank:
            raise KernelError(
                f"V needs {self.rows} rows from row {self.base_row}, the bank has {g.rows_per_bank}"
            )

    @property
    def entries(self) -> int:
        return self.obuf or self.cfg.buffers.obuf_entries

    @property
    def dim_slots(self) -> int:
        return self.d_head // self.cfg.geometry.banks

    @property
    def block_cols(self) -> int:
        """Columns (= GB entries) per block of tokens."""
        g, b = self.cfg.geometry, self.cfg.buffers
        return min(g.columns_per_row, half(b.gb_entries, self.halves))

    @property
    def blocks(self) -> int:
        return -(-self.tokens // (self.block_cols * self.cfg.geometry.lanes))

    @property
    def rows(self) -> int:
        return self.blocks * self.dim_slots

    @property
    def score_entries(self) -> int:
        return -(-self.tokens // self.cfg.geometry.lanes)

    @property
    def resident(self) -> bool:
        """Each dim slot keeps one accumulator over all token blocks."""
        return self.entries >= self.dim_slots

    @property
    def out_gpr(self) -> int:
        return GPR_IN + self.score_entries

    def row_of(self, block: int, dim_slot: int) -> int:
        return self.base_row + block * self.dim_slots + dim_slot

    def _cols(self, block: int) -> int:
        return min(self.block_cols, self.score_entries - block * self.block_cols)

    def program(self) -> list[Instruction]:
        prog: list[Instruction] = []
        flush = _Flusher(self.cfg, self.entries, self.out_gpr, self.acc_init, self.halves)
        for blk in range(self.blocks):
            cols = self._cols(blk)
            gb = (blk % 2) * self.block_cols if self.halves else 0
            prog.append(
                Instruction(
                    InstOp.WR_INP,
                    ch_mask=1,
                    op_size=cols,
                    gpr=GPR_IN + blk * self.block_cols,
                    gb=gb,
                )
            )
            for j in range(self.dim_slots):
                if self.resident:
                    out = j
                    if blk == 0:
                        flush.take()
                        prog.extend(flush.init(out))
                else:
                    out = flush.take()
                    prog.extend(flush.init(out))
                prog.append(_mac(op_size=cols, gb=gb, row=self.row_of(blk, j), col=0, out=out))
                if not self.resident and flush.full():
                    prog.extend(flush.flush())
            if not self.resident:
                prog.extend(flush.flush())
        if self.resident:
            prog.extend(flush.flush())
        return prog

    def data(self, rng: np.random.Generator) -> KernelData:
        g = self.cfg.geometry
        padded = self.score_entries * g.lanes
        s = random_bf16(rng, (padded,))
        s[self.tokens :] = 0
        v = random_bf16(rng, (padded, self.d_head))
        rows: dict[int, U16] = {}
        per_block = self.block_cols * g.lanes
        for blk in range(self.blocks):
            cols = self._cols(blk)
            for j in range(self.dim_slots):
                arr = np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
                toks = v[
                    blk * per_block : blk * per_block + cols * g.lanes,
                    j * g.banks : (j + 1) * g.banks,
                ]  # tokens x banks
                arr[:, :cols, :] = toks.T.reshape(g.banks, cols, g.lanes)
                rows[self.row_of(blk, j)] = arr
        vt = v.T  # d_head x tokens
        if self.resident:
            out = _dot_reference(vt, s, g.lanes)
            expected = _vector_to_gpr(out, self.out_gpr, g.banks)
        else:
            partial_rows = []
            for blk in range(self.blocks):
                lo, hi = blk * per_block, blk * per_block + self._cols(blk) * g.lanes
                partial_rows.append(_dot_reference(vt[:, lo:hi], s[lo:hi], g.lanes))
            expected = {}
            for blk, part in enumerate(partial_rows):
                expected |= _vector_to_gpr(part, self.out_gpr + blk * self.dim_slots, g.banks)
        return KernelData(rows, _with_bias(self.cfg, _vector_to_gpr(s, GPR_IN, g.lanes)), expected)

    def combine(self, gpr: dict[int, U16]) -> U16:
        """The SV output (d_head bf16) from the GPR after the program: partial sums, if any, are
        added by the host in float32 in block order and rounded to bf16 once."""
        n_sets = 1 if self.resident else self.blocks
        acc = np.zeros(self.d_head, dtype=np.float32)
        for blk in range(n_sets):
            base = self.out_gpr + blk * self.dim_slots
            part = np.concatenate([gpr[base + j] for j in range(self.dim_slots)])
            acc += from_bf16(part)
        return to_bf16(acc)


# ---------------------------------------------------------------------------- helpers


def _check_obuf(cfg: PimConfig, entries: int) -> None:
    if not 1 <= entries <= cfg.buffers.obuf_entries:
        raise KernelError(
            f"obuf = {entries} out of range [1, {cfg.buffers.obuf_entries}] (buffers.obuf_entries)"
        )


def _dot_reference(m: U16, x: U16, lanes: int) -> U16:
    """bf16 rows of ``m`` dotted with ``x`` with the channel's arithmetic (see
    pymodel.golden.channel)."""
    mf, xf = from_bf16(m), from_bf16(x)
    acc = np.zeros(m.shape[0], dtype=np.float32)
    for start in range(0, m.shape[1], lanes):
        acc += adder_tree(mf[:, start : start + lanes] * xf[start : start + lanes])
    return to_bf16(acc)


def _with_bias(cfg: PimConfig, gpr: dict[int, U16]) -> dict[int, U16]:
    """The kernel's GPR inputs plus the zero bias WR_BIAS writes."""
    return gpr | {bias_gpr(cfg): np.zeros(cfg.geometry.lanes, dtype=np.uint16)}


def _vector_to_gpr(v: U16, base: int, per_entry: int) -> dict[int, U16]:
    return {base + i: v[i * per_entry : (i + 1) * per_entry] for i in range(len(v) // per_entry)}
