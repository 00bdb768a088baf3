"""Run compiled programs: per-channel kernel streams (for pymodel.golden.sched / the system
simulator) and a golden-model execution of a layer's attention and FFN with real numbers.

The runtime (this module) follows the execution table:

* **DPA**: per module one :class:`pymodel.golden.dpa.DpaModel`: first the ``dpa.reserve`` pseudo
  requests are OPENed (they hold the chunks under the weight rows), then one id per (request,
  KV head) with the request's length before the step. Every kernel is expanded by
  :func:`pymodel.golden.dpa.expand` (the dispatcher): the KV-append kernel is one ``APPEND`` per id
  (the DPA grows the id by the step's token and writes its K and V); attention kernels run per
  softmax segment (``segment`` in the table: a block window), and the host skips the segments
  that start past a request's length. Nothing is patched by the host.
* **STATIC**: kernels run as compiled, except KV append (``issue = static_position``): the
  compiled words are those of token 0; per step the runtime takes
  :func:`pymodel.compiler.layout.kv_append_static` for token ``t = length - 1`` (same opcodes,
  op_size and GPR; ``row``, ``col``, ``bank`` and ``ch_mask`` follow ``t``).
* Each expanded instruction goes to every channel its ``ch_mask`` names (with ``ch_mask = 1``).

:func:`kernel_streams` is the entry point for the full-system simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pymodel.compiler import layout as L
from pymodel.compiler.pipeline import Compiled
from pymodel.config import PimConfig
from pymodel.golden import dpa
from pymodel.golden.bf16 import U16, from_bf16, to_bf16
from pymodel.golden.channel import Channel
from pymodel.golden.decode import EpuSoftmax, k_row, v_row
from pymodel.golden.kernels import GPR_IN, GemvKernel
from pymodel.golden.sched import Mode, Scheduler, run_kernel
from pymodel.isa import Instruction


class RunError(ValueError):
    """The runtime cannot run the compiled program for these lengths (names the limit)."""


def _shape(cfg: PimConfig, k: dict[str, Any]) -> L.AttnShape:
    return L.AttnShape(cfg, k["kv_heads"], k["group"], k["d_head"], k["tokens"], k["layout"])


def _words(compiled: Compiled, k: dict[str, Any]) -> list[Instruction]:
    p = k["program"]
    return compiled.programs[p["module"]][p["start"] : p["start"] + p["count"]]


def _lengths(
    compiled: Compiled, lengths: dict[int, int] | Sequence[int] | int | None
) -> dict[int, int]:
    n = len(compiled.table["requests"])
    if lengths is None:
        return dict.fromkeys(range(n), compiled.table["program"]["context"])
    if isinstance(lengths, int):
        return dict.fromkeys(range(n), lengths)
    if isinstance(lengths, dict):
        return dict(lengths)
    return dict(enumerate(lengths))


def dpa_model(compiled: Compiled, module: int, lengths: dict[int, int]) -> dpa.DpaModel:
    """The module's page table as the runtime sets it up (see the module docstring)."""
    t = compiled.table["dpa"]
    limit = t["max_tokens_per_request"]
    for r, n in lengths.items():
        if n > limit:
            raise RunError(
                f"request {r}: {n} tokens > {limit}, the most the compiled "
                f"{t['segments']} softmax segment(s) of {t['segment_blocks']} KV "
                f"blocks cover (or the page table maps)"
            )
    d = dpa.DpaModel(compiled.cfg, d_head=t["d_head"])
    for res in t["reserve"].get(str(module), []):
        d.open(res["req"], res["tokens"])
    for req in compiled.table["requests"]:
        for rid in req["modules"].get(str(module), {}).get("dpa_ids", []):
            d.open(rid, lengths[req["req"]])
    return d


def expand_kernel(
    compiled: Compiled, k: dict[str, Any], lengths: dict[int, int], model: dpa.DpaModel | None
) -> list[Instruction]:
    """The kernel's instructions as the channels receive them (ch_mask still the module's)."""
    words = _words(compiled, k)
    if k["kind"] == "gemv":
        return list(words)
    if k["memory"] == "dpa":
        assert model is not None
        return dpa.expand(model, words)
    if k["kind"] == "kv_append":
        a = _shape(compiled.cfg, k)
        return L.kv_append_static(a, k["kv"], k["base_row"], k["head"], lengths[k["req"]] - 1)
    return list(words)


def past_end(compiled: Compiled, k: dict[str, Any], length: int) -> bool:
    """A segment kernel whose window starts beyond the request's blocks (the host skips it)."""
    seg = k.get("segment")
    if seg is None:
        return False
    return bool(seg["first"] * compiled.table["dpa"]["block_tokens"] >= length)


def split(prog: Sequence[Instruction], channels: int) -> list[list[Instruction]]:
    """Per-channel streams: each instruction to every channel its ch_mask names (ch_mask 1)."""
    out: list[list[Instruction]] = [[] for _ in range(channels)]
    for inst in prog:
        one = replace(inst, ch_mask=1)
        for c in range(channels):
            if inst.ch_mask >> c & 1:
                out[c].append(one)
    return out


def kernel_streams(
    compiled: Compiled,
    module: int,
    channel: int,
    lengths: dict[int, int] | Sequence[int] | int | None = None,
) -> list[tuple[str, list[Instruction]]]:
    """(kernel name, instruction stream) of every kernel ``channel`` of ``module`` takes part in,
    in program order. ``lengths`` (request -> tokens, default the compiled context for every
    request; tokens after the step's KV append) sets the DPA loop trip counts and the KV-append
    position (``length - 1``)."""
    lens = _lengths(compiled, lengths)
    model = (
        dpa_model(compiled, module, {r: max(n - 1, 0) for r, n in lens.items()})
        if compiled.table["program"]["memory"] == "dpa"
        else None
    )
    out: list[tuple[str, list[Instruction]]] = []
    for k in compiled.table["kernels"]:
        if k["program"]["module"] != module or past_end(compiled, k, lens[k.get("req", 0)]):
            continue
        stream = split(expand_kernel(compiled, k, lens, model), compiled.cfg.module.channels)
        if stream[channel]:
            out.append((k["name"], stream[channel]))
    return out


# ---------------------------------------------------------------------------- numerics


def _gpr(v: U16, base: int, per: int) -> dict[int, U16]:
    return {base + i: v[i * per : (i + 1) * per] for i in range(len(v) // per)}


def _rows_empty(cfg: PimConfig) -> U16:
    g = cfg.geometry
    return np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)


def run_gemv(
    compiled: Compiled,
    name: str,
    w: U16,
    x: U16,
    mode: Mode = Mode.DCS,
    channels: Sequence[int] | None = None,
) -> U16:
    """``x[d_in] @ w[d_in, d_out]`` with the compiled GEMV ``name`` (request 0; every module of
    its TP group), each channel on the golden model (``channels``: only those, the other
    outputs stay 0)."""
    cfg = compiled.cfg
    g = cfg.geometry
    y = np.zeros(w.shape[1], dtype=np.uint16)
    for k in compiled.table["kernels"]:
        if k.get("op") != name or k["req"] != 0:
            continue
        kern = GemvKernel(k["d_out"], k["d_in"], cfg, base_row=k["base_row"], acc_init=L.ACC_INIT)
        stream = split(_words(compiled, k), cfg.module.channels)
        ch0 = k.get("first_channel", 0)  # HFP STATIC: the weights may sit past the KV channels
        for c in range(k["channels"]) if channels is None else channels:
            assert stream[ch0 + c] == stream[ch0]  # broadcast: one stream on every channel
            lo = k["out_offset"] + c * k["d_out"]
            wt = w[:, lo : lo + k["d_out"]].T  # d_out x d_in
            rows: dict[int, U16] = {}
            for grp in range(kern.groups):
                for tile in range(kern.tiles):
                    row, col = kern.place(grp, tile)
                    n = kern.tile_cols(tile)
                    first = tile * kern.seg_cols * g.lanes
                    arr = rows.setdefault(row, _rows_empty(cfg))
                    seg = wt[grp * g.banks : (grp + 1) * g.banks, first : first + n * g.lanes]
                    arr[:, col : col + n, :] = seg.reshape(g.banks, n, g.lanes)
            res = run_kernel(cfg, mode, stream[ch0 + c], rows, _gpr(x, GPR_IN, g.lanes))
            y[lo : lo + k["d_out"]] = np.concatenate(
                [res.gpr[kern.out_gpr + i] for i in range(kern.groups)]
            )
    return y


class _Module:
    """The channels of one module with their GPR views and clocks (as pymodel.golden.decode)."""

    def __init__(self, cfg: PimConfig, mode: Mode) -> None:
        n = cfg.module.channels
        self.cfg = cfg
        self.channels = [Channel(cfg) for _ in range(n)]
        self.scheds = [Scheduler(cfg, mode, ch) for ch in self.channels]
        self.gpr: list[dict[int, U16]] = [{} for _ in range(n)]
        self.clock = [0] * n
        self.rows: list[dict[int, U16]] = [{} for _ in range(n)]  # prefill, loaded once

    def put(self, ch: int, row: int, bank: int, col: int, lanes: slice, data: U16) -> None:
        self.rows[ch].setdefault(row, _rows_empty(self.cfg))[bank, col, lanes] = data

    def load(self) -> None:
        for ch, rows in enumerate(self.rows):
            for row, data in rows.items():
                self.channels[ch].load_row(row, data)
        self.rows = [{} for _ in self.channels]

    def run(self, prog: Sequence[Instruction]) -> None:
        for c, stream in enumerate(split(prog, len(self.channels))):
            if stream:
                res = self.scheds[c].run(stream, self.gpr[c], start_cycle=self.clock[c])
                self.clock[c] += res.stats.cycles


def _tokens_of(a: L.AttnShape, channel: int, t_max: int) -> list[int]:
    """Global token ids ``channel`` holds for a head (STATIC), in local order (-1 = padding)."""
    lanes = a.cfg.geometry.banks
    if a.layout == "hfp":
        ids = list(range(a.slots * lanes))
    else:
        ids = [s * lanes + i for s in range(channel, a.slots, a.channels) for i in range(lanes)]
    ids = [t if t < t_max else -1 for t in ids]
    return ids + [-1] * (a.local_tokens - len(ids))


@dataclass
class _Step:
    """The state of one decode step of ``run_attention``: inputs, the modules' channels and DPA
    page tables, the EPU per (request, head, query), and the outputs."""

    compiled: Compiled
    q: U16
    k_cache: U16
    v_cache: U16
    lens: list[int]
    mods: dict[int, _Module]
    models: dict[int, dpa.DpaModel | None]
    epus: dict[tuple[int, int, int], EpuSoftmax] = field(default_factory=dict)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def epu(self, b: int, head: int, query: int) -> EpuSoftmax:
        return self.epus.setdefault((b, head, query), EpuSoftmax(self.q.shape[-1]))


def run_attention(
    compiled: Compiled,
    q: U16,
    k_cache: U16,
    v_cache: U16,
    lengths: Sequence[int] | int,
    mode: Mode = Mode.DCS,
) -> tuple[U16, np.ndarray]:
    """One decode step of the layer's attention on the golden model, following the table.

    ``q``: [B, kv, g, d]; caches [B, T, kv, d] (bf16 bits; 3-D = batch 1). Request ``b`` has
    ``lengths[b]`` tokens *after* this step: tokens ``< length - 1`` are prefill (placed by
    backdoor where the layout/page table says), token ``length - 1`` is appended by the
    compiled KV-append kernels (DPA: after ``GROW(id, 1)``). Per softmax segment the EPU
    (:class:`pymodel.golden.decode.EpuSoftmax`, STATIC and DPA alike) turns the segment's scores
    into weights and adds the SV partial sums. Returns (o [B, kv, g, d] bf16, scores [B, kv, g,
    T] float32 as read from the GPR)."""
    if q.ndim == 3:
        q, k_cache, v_cache = q[None], k_cache[None], v_cache[None]
    lens = [lengths] * q.shape[0] if isinstance(lengths, int) else list(lengths)
    table = compiled.table
    attn = [k for k in table["kernels"] if k["kind"] != "gemv"]
    st = _Step(compiled, q, k_cache, v_cache, lens, {}, {})
    for m in sorted({k["module"] for k in attn}):
        st.mods[m] = _Module(compiled.cfg, mode)
        if table["program"]["memory"] == "dpa":
            st.models[m] = dpa_model(compiled, m, {b: n - 1 for b, n in enumerate(lens)})
    _prefill(st, [k for k in attn if k["kind"] == "kv_append"])
    n_b, kv, grp, d = q.shape
    st.scores = np.zeros((n_b, kv, grp, k_cache.shape[1]), dtype=np.float32)
    st.out = np.zeros((n_b, kv, grp, d), dtype=np.float32)
    kerns = {k["name"]: k for k in table["kernels"]}
    for step in table["steps"]:
        if "kernel" not in step or kerns[step["kernel"]]["kind"] == "gemv":
            continue  # host steps: the EPU's work is done where the kernels need it below
        k = kerns[step["kernel"]]
        if past_end(compiled, k, lens[k["req"]]):
            continue
        if k["kind"] == "kv_append":
            _append(st, k)
        elif k["memory"] == "dpa":
            _run_dpa(st, k)
        else:
            _run_static(st, k)
    return to_bf16(st.out), st.scores


def _prefill(st: _Step, appends: list[dict[str, Any]]) -> None:
    """Backdoor: every token but the newest of every (request, head), where the layout/page
    table puts it."""
    for k in appends:
        m, b = k["module"], k["req"]
        mod, head = st.mods[m], k["head_offset"] + k["head"]
        prefill = st.lens[b] - 1
        model = st.models.get(m)
        if model is not None:
            for kind, cache in (("k", st.k_cache), ("v", st.v_cache)):
                _prefill_dpa(model, mod, k["dpa_req"], kind, cache[b, :prefill, head])
        else:
            cache = st.k_cache if k["kv"] == "k" else st.v_cache
            _prefill_static(_shape(st.compiled.cfg, k), mod, k, cache[b, :prefill, head])
    for mod in st.mods.values():
        mod.load()


def _append(st: _Step, k: dict[str, Any]) -> None:
    """Stage the newest token's K / V columns, then run the KV-append kernel (DPA's APPEND writes
    when it is expanded)."""
    cfg, m, b = st.compiled.cfg, k["module"], k["req"]
    mod, d = st.mods[m], st.q.shape[-1]
    t, head = st.lens[b] - 1, k["head_offset"] + k["head"]
    for kind, cache in (("k", st.k_cache), ("v", st.v_cache)):
        if k["kv"] in (kind, "kv"):
            at = L.GPR_KV_STAGE + (
                d // cfg.geometry.lanes if k["kv"] == "kv" and kind == "v" else 0
            )
            _stage_kv(cfg, mod, kind, cache[b, :, head], t, d, at)
    mod.run(expand_kernel(st.compiled, k, dict(enumerate(st.lens)), st.models.get(m)))


def _run_static(st: _Step, k: dict[str, Any]) -> None:
    """One STATIC QK^T (the group, one round and segment) or SV (one query) kernel. Every channel
    of the round works on its own head (HFP) or its tokens of the round's head (TCP); before SV
    the EPU turns each head's segment scores (all its channels) into weights."""
    cfg, b = st.compiled.cfg, k["req"]
    lanes, mod = cfg.geometry.lanes, st.mods[k["module"]]
    a = _shape(cfg, k)
    seg = k["static_segment"]
    # the GPR entries the segment's kernels use: whole 16-token slots (the last one padded)
    window = slice(seg["first"], seg["first"] + -(-seg["tokens"] // lanes) * lanes)
    by_head: dict[int, list[tuple[int, list[int]]]] = {}
    for c in (c for c in range(a.channels) if k["ch_mask"] >> c & 1):
        head = k["head_offset"] + a.head_of(k["round"], c)
        by_head.setdefault(head, []).append((c, _tokens_of(a, c, st.k_cache.shape[1])[window]))
    if k["kind"] == "qk":
        for head, chans in by_head.items():
            for c, _ in chans:
                mod.gpr[c].update(_gpr(st.q[b, head].reshape(-1), GPR_IN, lanes))
    else:
        for head, chans in by_head.items():
            _static_weights(st, mod, k, head, chans)
    mod.run(expand_kernel(st.compiled, k, dict(enumerate(st.lens)), None))
    for head, chans in by_head.items():
        if k["kind"] == "qk":
            _read_static_scores(st, mod, k, head, chans)
            continue
        sv = a.sv_segment(0, 0, seg["index"])
        epu = st.epu(b, head, k["query"])
        epu.add([sv.combine(mod.gpr[c]) for c, _ in chans])
        if seg["index"] == seg["of"] - 1:
            st.out[b, head, k["query"]] = from_bf16(epu.output())


def _read_static_scores(
    st: _Step, mod: _Module, k: dict[str, Any], head: int, chans: list[tuple[int, list[int]]]
) -> None:
    """Scores of the group's queries: local token ``i`` of query ``qq`` is lane ``i % banks`` of
    GPR ``scores + (i // banks) * group + qq`` (QkKernel's order)."""
    banks, grp, base = st.compiled.cfg.geometry.banks, st.q.shape[2], k["gpr"]["scores"]
    for c, ids in chans:
        for i, t in enumerate(ids):
            if t >= 0:
                for qq in range(grp):
                    v = mod.gpr[c][base + (i // banks) * grp + qq]
                    st.scores[k["req"], head, qq, t] = from_bf16(v)[i % banks]


def _static_weights(
    st: _Step, mod: _Module, k: dict[str, Any], head: int, chans: list[tuple[int, list[int]]]
) -> None:
    """The EPU step before a segment's SV: weights of the segment's real tokens of ``head`` (over
    every channel holding some), staged at GPR_IN in each channel's local order (0 elsewhere)."""
    b, qi, lanes = k["req"], k["query"], st.compiled.cfg.geometry.lanes
    real = [t for _, ids in chans for t in ids if 0 <= t < st.lens[b]]
    w: dict[int, int] = {}
    if real:  # a segment past the length runs with zero weights and leaves the EPU as it is
        wts = st.epu(b, head, qi).weights(to_bf16(st.scores[b, head, qi, real]), len(real))
        w = dict(zip(real, wts.tolist(), strict=True))
    for c, ids in chans:
        local = np.array([w.get(t, 0) for t in ids], dtype=np.uint16)
        mod.gpr[c].update(_gpr(local, GPR_IN, lanes))


def _last_segment(k: dict[str, Any], length: int, block_tokens: int) -> bool:
    seg = k.get("segment", {"first": 0, "count": 0})
    return bool(seg["count"] == 0 or (seg["first"] + seg["count"]) * block_tokens >= length)


def _prefill_dpa(model: dpa.DpaModel, mod: _Module, rid: int, kind: str, toks: U16) -> None:
    """Backdoor K (row 2b) or V (row 2b + 1) rows of id ``rid`` (pymodel.golden.dpa layout)."""
    geo = mod.cfg.geometry
    bt = model.lay.block_tokens
    n, d = toks.shape
    for blk in range(-(-n // bt)):
        block = np.zeros((bt, d), dtype=np.uint16)
        part = toks[blk * bt : (blk + 1) * bt]
        block[: len(part)] = part
        v = int(kind == "v")
        ch, row = model.translate(rid, dpa.ROWS_PER_BLOCK * blk + v)
        data = (v_row if v else k_row)(block, geo.banks, geo.lanes)
        mod.rows[ch][row] = data


def _prefill_static(a: L.AttnShape, mod: _Module, k: dict[str, Any], toks: U16) -> None:
    geo = a.cfg.geometry
    hch, r = a.head_place(k["head"])
    for t in range(toks.shape[0]):
        ch, local, bank = a.token_place(t)
        ch = ch if ch >= 0 else hch
        if k["kv"] == "k":
            row, col = a.k_place(k["base_row"], r, local)
            for cc in range(a.head_cols):
                mod.put(
                    ch,
                    row,
                    bank,
                    col + cc,
                    slice(None),
                    toks[t, cc * geo.lanes : (cc + 1) * geo.lanes],
                )
            continue
        for j in range(a.dim_slots):
            row, col, lane = a.v_place(k["base_row"], r, local, j)
            for kk in range(geo.banks):
                mod.put(
                    ch,
                    row,
                    kk,
                    col,
                    slice(lane, lane + 1),
                    toks[t, j * geo.banks + kk : j * geo.banks + kk + 1],
                )


def _stage_kv(
    cfg: PimConfig, mod: _Module, kind: str, cache: U16, t: int, d: int, base: int
) -> None:
    """Host step before a KV-append kernel: ``base..`` on every channel holds token ``t``'s
    K (``d/lanes`` entries) or, for V, entry ``k * d/banks + j`` = the column of dims
    ``j * banks + k`` over tokens ``t - t % lanes .. t`` (lanes after ``t`` zero)."""
    geo = cfg.geometry
    if kind == "k":
        stage = _gpr(cache[t], base, geo.lanes)
    else:
        first = t - t % geo.lanes
        col = np.zeros((geo.lanes, d), dtype=np.uint16)
        col[: t - first + 1] = cache[first : t + 1]
        ds = d // geo.banks
        stage = {
            base + kk * ds + j: col[:, j * geo.banks + kk].copy()
            for kk in range(geo.banks)
            for j in range(ds)
        }
    for g in mod.gpr:
        g.update(stage)


def _run_dpa(st: _Step, k: dict[str, Any]) -> None:
    """One DPA QK^T or SV kernel of (id, query head, segment): stage its GPR inputs, run, read
    back; the EPU's online softmax turns the segment's scores into weights before its SV."""
    m, b = k["module"], k["req"]
    mod, model, geo = st.mods[m], st.models[m], st.compiled.cfg.geometry
    assert model is not None
    head, qi = k["head_offset"] + k["head"], k["query"]
    q, length, scores, epu = (
        st.q[b, head, qi],
        st.lens[b],
        st.scores[b, head, qi],
        st.epu(b, head, qi),
    )
    prog = expand_kernel(st.compiled, k, dict(enumerate(st.lens)), model)
    gpr = k["gpr"]
    bt = model.lay.block_tokens
    slots = bt // geo.lanes
    seg = k.get("segment", {"first": 0, "count": 0})
    first = seg["first"]
    total = -(-length // bt)
    blocks = (total if seg["count"] == 0 else min(total, first + seg["count"])) - first
    rid = k["dpa_req"]
    chans = [model.translate(rid, dpa.ROWS_PER_BLOCK * (first + b))[0] for b in range(blocks)]
    if k["kind"] == "qk":
        for g in mod.gpr:
            g.update(_gpr(q, gpr["query"], geo.lanes))
        mod.run(prog)
        for blk, ch in enumerate(chans):
            for s in range(slots):
                v = from_bf16(mod.gpr[ch][gpr["scores"] + blk * slots + s])
                lo = (first + blk) * bt + s * geo.lanes
                scores[lo : lo + geo.lanes] = v[: max(0, min(geo.lanes, len(scores) - lo))]
        return
    lo, real = first * bt, min(blocks * bt, length - first * bt)
    w = epu.weights(to_bf16(scores[lo : lo + real]), blocks * bt)
    for blk, ch in enumerate(chans):
        base = gpr["probs"] + blk * slots
        mod.gpr[ch].update(_gpr(w[blk * bt : (blk + 1) * bt], base, geo.lanes))
    mod.run(prog)
    ds = k["d_head"] // geo.banks
    epu.add([np.concatenate([g[gpr["out"] + j] for j in range(ds)]) for g in mod.gpr])
    if _last_segment(k, length, bt):
        st.out[b, head, qi] = from_bf16(epu.output())
