"""Kernel layouts and instruction streams of the compiler (pure Python; the passes wrap them in IR).

STATIC memory reuses the layouts and instruction streams of :mod:`pymodel.golden.kernels` (one
source of truth), broadcast to every channel of ``ch_mask``: all channels run the same stream at the
same addresses on their own data. Head-first (HFP) puts KV head ``h`` on channel ``h % C``;
token-centric (TCP) deals 16-token slots round-robin over the channels (slot ``s`` on channel
``s % C``, local slot ``s // C``) and every channel holds every head. Attention runs in softmax
segments of a head's local tokens (:attr:`AttnShape.segment_tokens`: whole K rows and V blocks whose
scores fit the GPR; one segment when the head fits): per segment the STATIC QK^T and SV kernels over
the segment's tokens from its first row, the EPU's online softmax step between them.

DPA memory uses the one DPA semantics of :mod:`pymodel.golden.dpa` (its docstring is the spec): one
DPA request id per (batch request, KV head); K of KV block ``b`` in virtual row ``2b``, V in ``2b +
1``; virtual chunk ``v`` of id ``r`` on channel ``(r + v) % C`` (the dispatcher's spreading, for HFP
and TCP alike: the device has no pinned-channel placement). Attention is
``pymodel.golden.dpa.qk_template`` and ``sv_template`` per (id, query head) and softmax segment (a
DYN_LOOP block window of as many blocks as the GPR holds scores for) and KV append is one ``APPEND``
instruction per (id, step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pymodel.config import PimConfig
from pymodel.golden import dpa
from pymodel.golden.kernels import GemvKernel, KernelError, QkKernel, SvKernel
from pymodel.isa import InstOp, Instruction

#: The compiler targets PIMphony's HUB: accumulators cleared on read-out (RD_OUT), like the DPA
#: templates (pymodel.golden.dpa), no WR_BIAS on the data bus.
ACC_INIT = "clear"


@dataclass
class Loop:
    """A DYN_LOOP over request ``req``'s KV blocks (window ``first``/``count``; 0 = all)."""

    req: int
    body: list[Instruction]
    first: int = 0
    count: int = 0


Item = Instruction | Loop


def flatten(items: list[Item]) -> list[Instruction]:
    """The HUB program words: a loop is ``DYN_LOOP req len`` followed by its body."""
    out: list[Instruction] = []
    for it in items:
        if isinstance(it, Loop):
            out.append(
                Instruction(
                    InstOp.DYN_LOOP,
                    req=it.req,
                    body_len=len(it.body),
                    first=it.first,
                    count=it.count,
                )
            )
            out.extend(it.body)
        else:
            out.append(it)
    return out


def items_of(prog: list[Instruction]) -> list[Item]:
    """Inverse of :func:`flatten`: group each DYN_LOOP with its body."""
    out: list[Item] = []
    k = 0
    while k < len(prog):
        inst = prog[k]
        if inst.op is InstOp.DYN_LOOP:
            out.append(Loop(inst.req, prog[k + 1 : k + 1 + inst.body_len], inst.first, inst.count))
            k += 1 + inst.body_len
        else:
            out.append(inst)
            k += 1
    return out


def mask(n: int) -> int:
    return (1 << n) - 1


def with_mask(prog: list[Instruction], ch_mask: int) -> list[Instruction]:
    return [replace(i, ch_mask=ch_mask) for i in prog]


def gpr_entries(cfg: PimConfig) -> int:
    return cfg.module.gpr_bytes // cfg.geometry.column_bytes


# ---------------------------------------------------------------------------- GEMV


def gemv_channels(cfg: PimConfig, d_out: int, channels: int = 0) -> int:
    """Channels a GEMV's outputs are split over: the most (<= ``channels``, default C) that
    divide d_out in 16s."""
    banks = cfg.geometry.banks
    if d_out % banks:
        raise KernelError(f"d_out = {d_out} must be a multiple of {banks}")
    groups = d_out // banks
    avail = channels or cfg.module.channels
    return max(n for n in range(1, min(avail, groups) + 1) if groups % n == 0)


def gemv(
    cfg: PimConfig, d_out: int, d_in: int, base_row: int, channels: int = 0
) -> tuple[GemvKernel, int]:
    """The per-channel GEMV kernel and the number of channels (at most ``channels``) it uses."""
    n = gemv_channels(cfg, d_out, channels)
    kern = GemvKernel(d_out // n, d_in, cfg, base_row=base_row, acc_init=ACC_INIT)
    need = kern.out_gpr + kern.groups
    if need > gpr_entries(cfg):
        raise KernelError(
            f"GEMV {d_in} -> {d_out // n} per channel needs {need} GPR entries > {gpr_entries(cfg)}"
        )
    return kern, n


# ---------------------------------------------------------------------------- STATIC attention


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
        """(channel or -1 for all, round) of local KV head ``h``."""
        if self.layout == "hfp":
            return h % self.channels, h // self.channels
        return -1, h

    def head_of(self, r: int, channel: int) -> int:
        """Local KV head that ``channel`` works on in round ``r``."""
        return r * self.channels + channel if self.layout == "hfp" else r

    def round_mask(self, r: int) -> int:
        if self.layout == "tcp":
            return mask(self.used_channels)
        heads = range(r * self.channels, min((r + 1) * self.channels, self.kv_heads))
        return sum(1 << (h % self.channels) for h in heads)

    def qk(self, base_row: int = 0) -> QkKernel:
        return QkKernel(
            self.local_tokens,
            self.cfg,
            self.d_head,
            self.group,
            base_row=base_row,
            acc_init=ACC_INIT,
        )

    def sv(self, base_row: int = 0) -> SvKernel:
        return SvKernel(
            self.local_tokens, self.cfg, self.d_head, base_row=base_row, acc_init=ACC_INIT
        )

    @property
    def head_cols(self) -> int:
        return self.d_head // self.cfg.geometry.lanes

    @property
    def dim_slots(self) -> int:
        return self.d_head // self.cfg.geometry.banks

    @property
    def k_rows(self) -> int:
        """Rows one head's K takes per channel."""
        return self.qk().rows

    @property
    def v_rows(self) -> int:
        return self.sv().rows

    @property
    def cols(self) -> int:
        return self.cfg.geometry.columns_per_row

    # ---------------------------------------------------------------- softmax segments

    @property
    def segment_unit(self) -> int:
        """Local tokens a segment is a multiple of: whole K rows and whole V row blocks, so a
        segment's kernels are the STATIC kernels over fewer tokens from a later base row."""
        k_row = self.qk().slots_per_row * self.cfg.geometry.banks
        return math.lcm(k_row, self.sv().block_cols * self.cfg.geometry.lanes)

    def segment_fits(self, tokens: int) -> bool:
        """QK^T of the group writes ``group * tokens / 16`` score entries after the queries; SV
        reads ``tokens / 16`` weight entries and writes its partial sums after them; both below
        the GPR's last entry (the flusher's bias entry)."""
        qk = QkKernel(tokens, self.cfg, self.d_head, self.group, acc_init=ACC_INIT)
        sv = SvKernel(tokens, self.cfg, self.d_head, acc_init=ACC_INIT)
        sets = 1 if sv.resident else sv.blocks
        last = gpr_entries(self.cfg) - 1
        return max(qk.out_gpr + self.group * qk.slots, sv.out_gpr + sets * self.dim_slots) <= last

    @property
    def segment_tokens(self) -> int:
        """Local tokens per softmax segment: the most (in segment units) whose scores fit the GPR,
        or the whole head when it fits in one."""
        unit = self.segment_unit
        whole = -(-self.local_tokens // unit)
        if self.segment_fits(self.local_tokens):
            return self.local_tokens
        lo, hi = 0, whole  # units: segment_fits(lo * unit) (or lo = 0), not hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.segment_fits(mid * unit) else (lo, mid)
        if lo == 0:
            raise KernelError(
                f"{self.layout.upper()} STATIC attention: one segment of {unit} tokens (whole K "
                f"rows and V blocks) of the {self.group}-query group does not fit the GPR "
                f"({gpr_entries(self.cfg)} entries, module.gpr_bytes / column_bytes)"
            )
        return lo * unit

    @property
    def segments(self) -> int:
        return -(-self.local_tokens // self.segment_tokens)

    def segment(self, s: int) -> tuple[int, int]:
        """(first local token, tokens) of segment ``s``."""
        first = s * self.segment_tokens
        return first, min(self.segment_tokens, self.local_tokens - first)

    def qk_segment(self, k_base: int, r: int, s: int) -> QkKernel:
        first, n = self.segment(s)
        row = (
            k_base + r * self.k_rows + first // (self.qk().slots_per_row * self.cfg.geometry.banks)
        )
        return QkKernel(n, self.cfg, self.d_head, self.group, base_row=row, acc_init=ACC_INIT)

    def sv_segment(self, v_base: int, r: int, s: int) -> SvKernel:
        first, n = self.segment(s)
        sv = self.sv()
        blocks = first // (sv.block_cols * self.cfg.geometry.lanes)
        row = v_base + r * self.v_rows + blocks * sv.dim_slots
        return SvKernel(n, self.cfg, self.d_head, base_row=row, acc_init=ACC_INIT)

    def kv_rows(self, batch: int = 1) -> int:
        """Rows per bank K and V take on a channel holding KV (``batch`` requests)."""
        return batch * self.rounds * (self.k_rows + self.v_rows)

    # ---------------------------------------------------------------- KV placement

    def token_place(self, t: int) -> tuple[int, int, int]:
        """(channel or -1 = the head's channel, local token index, bank) of token ``t``."""
        slot, bank = divmod(t, self.cfg.geometry.banks)
        if self.layout == "tcp":
            ls = slot // self.channels
            return slot % self.channels, ls * self.cfg.geometry.banks + bank, bank
        return -1, t, bank

    def k_place(self, k_base: int, r: int, local: int) -> tuple[int, int]:
        """(row, first column) of local token ``local``'s K (QkKernel layout, round ``r``)."""
        spr = self.cols // self.head_cols
        ls = local // self.cfg.geometry.banks
        return k_base + r * self.k_rows + ls // spr, (ls % spr) * self.head_cols

    def v_place(self, v_base: int, r: int, local: int, j: int) -> tuple[int, int, int]:
        """(row, column, lane) of local token ``local``'s dims of slot ``j`` (SvKernel)."""
        sv = self.sv(v_base + r * self.v_rows)
        lanes = self.cfg.geometry.lanes
        blk, rem = divmod(local, sv.block_cols * lanes)
        return sv.row_of(blk, j), rem // lanes, rem % lanes


@dataclass(frozen=True)
class StaticKernel:
    """One STATIC attention kernel of a round (HFP: heads on their channels; TCP: one head) and
    softmax segment: QK^T of the whole group, or SV of query ``query``."""

    kind: str  # qk | sv
    round: int
    segment: int
    query: int  # -1 for QK^T
    items: list[Item]

    def suffix(self, segments: int) -> str:
        q = f"q{self.query}" if self.kind == "sv" else ""
        return f"r{self.round}{q}" + (f".s{self.segment}" if segments > 1 else "")


def attention_static(a: AttnShape, k_base: int, v_base: int) -> list[StaticKernel]:
    """Per round and softmax segment: QK^T of the group, (the EPU's segment step), SV per query."""
    out: list[StaticKernel] = []
    for r in range(a.rounds):
        m = a.round_mask(r)
        for s in range(a.segments):
            qk = with_mask(a.qk_segment(k_base, r, s).program(), m)
            out.append(StaticKernel("qk", r, s, -1, list(qk)))
            sv = with_mask(a.sv_segment(v_base, r, s).program(), m)
            out.extend(StaticKernel("sv", r, s, q, list(sv)) for q in range(a.group))
    return out


#: GPR entry the host stages the appended token's K (``d_head/lanes`` entries) or V columns
#: (``banks * d_head/banks`` entries, bank-major) at, before a KV-append kernel.
GPR_KV_STAGE = 0


def kv_append_static(a: AttnShape, kind: str, base: int, h: int, t: int) -> list[Instruction]:
    """WR_BANKs writing token ``t`` of local head ``h`` into the STATIC layout. K: one word
    (``d_head/lanes`` columns of the token's bank); V: per (bank ``k``, dim slot ``j``) the
    column holding the token, rewritten whole from GPR ``GPR_KV_STAGE + k * dim_slots + j``."""
    ch, local, bank = a.token_place(t)
    hch, r = a.head_place(h)
    m = 1 << (ch if ch >= 0 else hch)
    if kind == "k":
        row, col = a.k_place(base, r, local)
        return [
            Instruction(
                InstOp.WR_BANK,
                ch_mask=m,
                op_size=a.head_cols,
                gpr=GPR_KV_STAGE,
                bank=bank,
                row=row,
                col=col,
            )
        ]
    out: list[Instruction] = []
    for k in range(a.cfg.geometry.banks):
        for j in range(a.dim_slots):
            row, col, _ = a.v_place(base, r, local, j)
            out.append(
                Instruction(
                    InstOp.WR_BANK,
                    ch_mask=m,
                    op_size=1,
                    gpr=GPR_KV_STAGE + k * a.dim_slots + j,
                    bank=k,
                    row=row,
                    col=col,
                )
            )
    return out


# ---------------------------------------------------------------------------- DPA attention


@dataclass(frozen=True)
class DpaGpr:
    """GPR map of the DPA attention kernels (every channel's view, as in pymodel.golden.decode)."""

    query: int  # qk_template's WR_INP source: d_head/lanes entries
    scores: int  # block b's scores at scores + b * slots; the host overwrites them with probs
    out: int  # sv_template's partial sums: d_head/banks entries
    max_blocks: int  # KV blocks a request may hold before the score region reaches ``out``

    @staticmethod
    def of(cfg: PimConfig, d_head: int) -> DpaGpr:
        g = cfg.geometry
        head_cols = d_head // g.lanes
        lay = dpa.DpaLayout.of(cfg, d_head)
        slots = g.columns_per_row // head_cols
        if slots != lay.block_tokens // g.lanes:
            raise KernelError(
                f"DPA: score entries per K row ({slots}) != probability entries "
                f"per V row ({lay.block_tokens // g.lanes}) (banks != lanes)"
            )
        out = gpr_entries(cfg) - d_head // g.banks
        return DpaGpr(0, head_cols, out, (out - head_cols) // slots)

    def max_tokens(self, cfg: PimConfig, d_head: int) -> int:
        return self.max_blocks * dpa.DpaLayout.of(cfg, d_head).block_tokens


def dpa_attention(
    cfg: PimConfig, req: int, d_head: int, first: int = 0, count: int = 0
) -> tuple[list[Item], list[Item]]:
    """(QK^T, SV) kernels of one (DPA id, query head) over the block window (softmax segment)
    ``first``/``count``: pymodel.golden.dpa's templates."""
    try:
        gpr = DpaGpr.of(cfg, d_head)
        qk = dpa.qk_template(cfg, req, d_head, first, count)
        sv = dpa.sv_template(
            cfg, req, score_gpr=gpr.scores, out_gpr=gpr.out, d_head=d_head, first=first, count=count
        )
    except dpa.DpaConfigError as exc:
        raise KernelError(f"DPA (d_head = {d_head}): {exc}") from None
    for prog in (qk, sv):
        body = max(i.body_len for i in prog if i.op is InstOp.DYN_LOOP)
        if body > cfg.dpa.max_body_len:
            raise KernelError(
                f"DPA loop body of {body} instructions (d_head = {d_head}) exceeds "
                f"dpa.max_body_len = {cfg.dpa.max_body_len}"
            )
    return items_of(qk), items_of(sv)
