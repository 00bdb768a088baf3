"""Kernel layouts and instruction streams of the compiler (pure Python; the passes wrap them in IR).

STATIC memory reuses the layouts and instruction streams of :mod:`pymodel.kernels` (one source of
truth), broadcast to every channel of ``ch_mask``: all channels run the same stream at the same
addresses on their own data. DPA memory uses looped kernels whose addresses are *virtual*:

* a virtual column address is ``va = row * columns_per_row + col``; ``DYN_MODI COL s`` advances it
  by ``s`` columns per iteration (carrying into the row); rows translate through the request's
  page table in chunks of ``dpa.chunk_rows`` rows;
* ``DYN_LOOP req n`` repeats the next ``n`` instructions once per KV block (16 tokens = one column
  of 16 banks) of request ``req`` on that channel; a ``DYN_MODI f s`` applies to every later
  instruction of the body that has operand ``f`` (``base + i * s`` in iteration ``i``);
* K is token-major as in STATIC; V is dim-major *interleaved*: the slot ``s`` of 16 tokens sits at
  ``va = base + s * dim_slots + j`` for dim slot ``j`` (so K and V blocks advance linearly).

Token-centric partitioning (TCP) deals 16-token slots round-robin over the channels (slot ``s`` on
channel ``s % C``, local slot ``s // C``); head-first (HFP) puts KV head ``h`` on channel ``h % C``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from pymodel.config import PimConfig
from pymodel.isa import InstOp, Instruction, ModiField
from pymodel.kernels import GPR_IN, GemvKernel, KernelError, QkKernel, SvKernel


@dataclass
class Loop:
    """A DYN_LOOP over request ``req``'s KV blocks."""

    req: int
    body: list[Instruction]


Item = Union[Instruction, Loop]


def flatten(items: list[Item]) -> list[Instruction]:
    """The HUB program words: a loop is ``DYN_LOOP req len`` followed by its body."""
    out: list[Instruction] = []
    for it in items:
        if isinstance(it, Loop):
            out.append(Instruction(InstOp.DYN_LOOP, req=it.req, body_len=len(it.body)))
            out.extend(it.body)
        else:
            out.append(it)
    return out


def mask(n: int) -> int:
    return (1 << n) - 1


def with_mask(prog: list[Instruction], ch_mask: int) -> list[Instruction]:
    from dataclasses import replace

    return [replace(i, ch_mask=ch_mask) for i in prog]


# ---------------------------------------------------------------------------- GEMV


def gemv_channels(cfg: PimConfig, d_out: int) -> int:
    """Channels a GEMV's outputs are split over: the most (<= C) that divide d_out in 16s."""
    banks = cfg.geometry.banks
    if d_out % banks:
        raise KernelError(f"d_out = {d_out} must be a multiple of {banks}")
    groups = d_out // banks
    return max(n for n in range(1, min(cfg.module.channels, groups) + 1) if groups % n == 0)


def gemv(cfg: PimConfig, d_out: int, d_in: int, base_row: int) -> tuple[GemvKernel, int]:
    n = gemv_channels(cfg, d_out)
    return GemvKernel(d_out // n, d_in, cfg, base_row=base_row), n


# ---------------------------------------------------------------------------- attention


@dataclass(frozen=True)
class AttnShape:
    cfg: PimConfig
    kv_heads: int  # on this module
    group: int
    d_head: int
    tokens: int  # T_max
    layout: str  # hfp | tcp

    @property
    def channels(self) -> int:
        return self.cfg.module.channels

    @property
    def slots(self) -> int:
        return -(-self.tokens // self.cfg.geometry.banks)

    @property
    def rounds(self) -> int:
        """HFP: heads one channel holds; TCP: every channel holds every head."""
        return -(-self.kv_heads // self.channels) if self.layout == "hfp" else self.kv_heads

    @property
    def used_channels(self) -> int:
        if self.layout == "hfp":
            return min(self.channels, self.kv_heads)
        return min(self.channels, self.slots)

    @property
    def local_tokens(self) -> int:
        """Tokens per channel per head (T_max)."""
        if self.layout == "hfp":
            return self.tokens
        return -(-self.slots // self.channels) * self.cfg.geometry.banks

    def head_place(self, h: int) -> tuple[int, int]:
        """(channel mask bit or -1 for all, round) of local KV head ``h``."""
        if self.layout == "hfp":
            return h % self.channels, h // self.channels
        return -1, h

    def round_mask(self, r: int) -> int:
        if self.layout == "tcp":
            return mask(self.used_channels)
        heads = range(r * self.channels, min((r + 1) * self.channels, self.kv_heads))
        return sum(1 << (h % self.channels) for h in heads)

    def qk(self, base_row: int = 0) -> QkKernel:
        return QkKernel(self.local_tokens, self.cfg, self.d_head, self.group, base_row=base_row)

    def sv(self, base_row: int = 0) -> SvKernel:
        return SvKernel(self.local_tokens, self.cfg, self.d_head, base_row=base_row)

    @property
    def head_cols(self) -> int:
        return self.d_head // self.cfg.geometry.lanes

    @property
    def dim_slots(self) -> int:
        return self.d_head // self.cfg.geometry.banks

    def k_rows(self, memory: str) -> int:
        """Rows one head's K takes per channel (STATIC) or spans virtually (DPA)."""
        if memory == "static":
            return self.qk().rows
        return -(-self.local_tokens // self.cfg.geometry.banks * self.head_cols // self.cols)

    def v_rows(self, memory: str) -> int:
        if memory == "static":
            return self.sv().rows
        return -(-self.local_tokens // self.cfg.geometry.banks * self.dim_slots // self.cols)

    @property
    def cols(self) -> int:
        return self.cfg.geometry.columns_per_row

    def local_slots(self, length: int, channel: int) -> int:
        """16-token slots of a ``length``-token request on ``channel`` (for one head)."""
        s = -(-length // self.cfg.geometry.banks)
        if self.layout == "hfp":
            return s
        return max(0, -(-(s - channel) // self.channels))


def qk_static(a: AttnShape, k_base: int) -> list[tuple[str, list[Item], int]]:
    """(name suffix, stream, round) per round: HFP rounds or TCP heads."""
    out: list[tuple[str, list[Item], int]] = []
    for r in range(a.rounds):
        prog = a.qk(k_base + r * a.k_rows("static")).program()
        out.append((f"r{r}", list(with_mask(prog, a.round_mask(r))), r))
    return out


def sv_static(a: AttnShape, v_base: int) -> list[tuple[str, list[Item], int]]:
    out: list[tuple[str, list[Item], int]] = []
    for r in range(a.rounds):
        prog = with_mask(a.sv(v_base + r * a.v_rows("static")).program(), a.round_mask(r))
        for q in range(a.group):
            out.append((f"r{r}q{q}", list(prog), r))
    return out


def _check_dpa(a: AttnShape) -> None:
    body = a.cfg.dpa.max_body_len
    if a.group + 3 > body or a.dim_slots + 3 > body:
        raise KernelError(
            f"DPA loop body of {max(a.group, a.dim_slots) + 3} instructions exceeds "
            f"dpa.max_body_len = {body}"
        )
    if a.group > a.cfg.buffers.obuf_entries or a.dim_slots > a.cfg.buffers.obuf_entries:
        raise KernelError(
            f"DPA kernels need group = {a.group} and d_head/banks = {a.dim_slots} "
            f"<= obuf_entries = {a.cfg.buffers.obuf_entries}"
        )
    if a.cols % a.head_cols:
        raise KernelError(f"d_head/lanes = {a.head_cols} must divide columns_per_row")


def qk_dpa(a: AttnShape, req: int, k_base: int) -> list[tuple[str, list[Item], int]]:
    """Per round: WR_INP the group's queries, loop over KV blocks (one MAC per query, one
    RD_OUT of the block's ``group`` scores to GPR ``out_gpr + slot * group + q``)."""
    _check_dpa(a)
    hc, g = a.head_cols, a.group
    out: list[tuple[str, list[Item], int]] = []
    for r in range(a.rounds):
        m = a.round_mask(r)
        row = k_base + r * a.k_rows("dpa")
        body = [
            Instruction(InstOp.DYN_MODI, field=int(ModiField.COL), stride=hc),
            Instruction(InstOp.DYN_MODI, field=int(ModiField.GPR), stride=g),
        ]
        body += [
            Instruction(InstOp.MAC, ch_mask=m, op_size=hc, gb=q * hc, row=row, col=0, out=q)
            for q in range(g)
        ]
        body.append(Instruction(InstOp.RD_OUT, ch_mask=m, op_size=g, gpr=GPR_IN + g * hc, out=0))
        items: list[Item] = [
            Instruction(InstOp.WR_INP, ch_mask=m, op_size=g * hc, gpr=GPR_IN, gb=0),
            Loop(req, body),
        ]
        out.append((f"r{r}", items, r))
    return out


def sv_out_gpr(cfg: PimConfig, d_head: int) -> int:
    """DPA SV results sit at the top of the GPR (the score region grows with the length)."""
    return cfg.module.gpr_bytes // cfg.geometry.column_bytes - d_head // cfg.geometry.banks


def sv_dpa(a: AttnShape, req: int, v_base: int) -> list[tuple[str, list[Item], int]]:
    """Per query: loop over KV blocks (WR_INP the block's 16 scores, one MAC per dim slot into
    a resident accumulator), then RD_OUT the d_head outputs."""
    _check_dpa(a)
    ds = a.dim_slots
    out: list[tuple[str, list[Item], int]] = []
    for r in range(a.rounds):
        m = a.round_mask(r)
        row = v_base + r * a.v_rows("dpa")
        body = [
            Instruction(InstOp.DYN_MODI, field=int(ModiField.COL), stride=ds),
            Instruction(InstOp.DYN_MODI, field=int(ModiField.GPR), stride=1),
            Instruction(InstOp.WR_INP, ch_mask=m, op_size=1, gpr=GPR_IN, gb=0),
        ]
        body += [
            Instruction(InstOp.MAC, ch_mask=m, op_size=1, gb=0, row=row, col=j, out=j)
            for j in range(ds)
        ]
        tail = Instruction(
            InstOp.RD_OUT, ch_mask=m, op_size=ds, gpr=sv_out_gpr(a.cfg, a.d_head), out=0
        )
        for q in range(a.group):
            out.append((f"r{r}q{q}", [Loop(req, list(body)), tail], r))
    return out


# ---------------------------------------------------------------------------- KV append


def kv_slot_place(a: AttnShape, kind: str, memory: str, pos: int) -> tuple[int, int, int]:
    """(channel or -1, local slot, bank) of token ``pos``."""
    slot, bank = divmod(pos, a.cfg.geometry.banks)
    if a.layout == "tcp":
        return slot % a.channels, slot // a.channels, bank
    return -1, slot, bank


def kv_append(
    a: AttnShape, kind: str, memory: str, base: int, pos: int
) -> list[Instruction]:
    """WR_BANK instructions writing token ``pos`` of every local head (rows virtual under DPA).
    GPR holds the column(s) to write from entry 0 (the host keeps the 16-token column of V)."""
    ch, slot, bank = kv_slot_place(a, kind, memory, pos)
    cols = a.cols
    out: list[Instruction] = []
    for h in range(a.kv_heads):
        hch, r = a.head_place(h)
        m = 1 << (ch if ch >= 0 else hch)
        if kind == "k":
            spr = cols // a.head_cols
            row = base + r * a.k_rows(memory) + slot // spr
            col = (slot % spr) * a.head_cols
            out.append(
                Instruction(
                    InstOp.WR_BANK, ch_mask=m, op_size=a.head_cols, gpr=0, bank=bank,
                    row=row, col=col,
                )
            )
            continue
        for j in range(a.dim_slots):
            if memory == "static":
                sv = a.sv()
                blk, rem = divmod(slot, sv.block_cols)
                row, col = base + r * a.v_rows(memory) + blk * a.dim_slots + j, rem
            else:
                va = slot * a.dim_slots + j
                row, col = base + r * a.v_rows(memory) + va // cols, va % cols
            for b in range(a.cfg.geometry.banks):
                out.append(
                    Instruction(
                        InstOp.WR_BANK, ch_mask=m, op_size=1, gpr=j * a.cfg.geometry.banks + b,
                        bank=b, row=row, col=col,
                    )
                )
    return out


# ---------------------------------------------------------------------------- DPA expansion


Translate = Callable[[int, int], int]  # (req, virtual row) -> physical row


@dataclass
class PageTable:
    """A minimal VA2PA for the compiler's own runs: chunks allocated on first touch."""

    chunk_rows: int
    first_free_row: int
    table: dict[tuple[int, int], int] = field(default_factory=dict)

    def __call__(self, req: int, vrow: int) -> int:
        key = (req, vrow // self.chunk_rows)
        if key not in self.table:
            self.table[key] = self.first_free_row + len(self.table) * self.chunk_rows
        return self.table[key] + vrow % self.chunk_rows


def _modify(inst: Instruction, mods: dict[int, int], i: int, cols: int) -> Instruction:
    from dataclasses import replace

    kw: dict[str, int] = {}
    for fld, stride in mods.items():
        name = ModiField(fld).name.lower()
        if name == "col" and inst.op in (InstOp.MAC, InstOp.WR_BANK):
            va = inst.row * cols + inst.col + i * stride
            kw["row"], kw["col"] = divmod(va, cols)
        elif name == "row" and inst.op in (InstOp.MAC, InstOp.WR_BANK):
            kw["row"] = inst.row + i * stride
        elif name in ("gb", "out", "gpr") and name in _fields(inst.op):
            kw[name] = getattr(inst, name) + i * stride
    return replace(inst, **kw)  # type: ignore[arg-type]


def _fields(op: InstOp) -> tuple[str, ...]:
    from pymodel.isa import INST_FIELDS

    return INST_FIELDS[op]


def expand(
    prog: list[Instruction],
    cfg: PimConfig,
    trips: Callable[[int], int],
    translate: Translate | None,
    virtual: bool,
    req: int = 0,
) -> list[Instruction]:
    """Expand DYN_LOOP/DYN_MODI for one channel (``trips(req)`` = its KV blocks) and translate
    virtual rows (``virtual``) through ``translate``."""
    cols = cfg.geometry.columns_per_row
    out: list[Instruction] = []
    k = 0

    def phys(inst: Instruction, r: int) -> Instruction:
        from dataclasses import replace

        if virtual and translate is not None and inst.op in (InstOp.MAC, InstOp.WR_BANK):
            return replace(inst, row=translate(r, inst.row))
        return inst

    while k < len(prog):
        inst = prog[k]
        if inst.op is InstOp.DYN_LOOP:
            body = prog[k + 1 : k + 1 + inst.body_len]
            for i in range(trips(inst.req)):
                mods: dict[int, int] = {}
                for b in body:
                    if b.op is InstOp.DYN_MODI:
                        mods[b.field] = b.stride
                        continue
                    out.append(phys(_modify(b, mods, i, cols), inst.req))
            k += 1 + inst.body_len
            continue
        out.append(phys(inst, req))
        k += 1
    return out
