"""Run compiled programs: per-channel kernel streams (for pymodel.sched / the system simulator)
and a golden-model execution of a layer's attention and FFN with real numbers.

:func:`kernel_streams` is the entry point for the full-system simulator: it takes the module
program and table written by ``pimphony compile`` and returns, for one channel, every kernel's
instruction stream with ``ch_mask = 1`` and (DPA) the loops expanded for the request lengths and
the rows translated through a page table.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from pymodel.bf16 import U16, from_bf16, to_bf16
from pymodel.compiler import layout as L
from pymodel.compiler.pipeline import Compiled
from pymodel.config import PimConfig
from pymodel.isa import InstOp, Instruction
from pymodel.kernels import GPR_IN, GemvKernel
from pymodel.sched import Mode, run_kernel


def _shape(cfg: PimConfig, k: dict[str, Any]) -> L.AttnShape:
    return L.AttnShape(cfg, k["kv_heads"], k["group"], k["d_head"], k["tokens"], k["layout"])


def _in_mask(inst: Instruction, channel: int) -> bool:
    return inst.op in (InstOp.DYN_LOOP, InstOp.DYN_MODI) or bool(inst.ch_mask >> channel & 1)


def kernel_streams(
    compiled: Compiled,
    module: int,
    channel: int,
    lengths: dict[int, int] | None = None,
    page_table: L.PageTable | None = None,
) -> list[tuple[str, list[Instruction]]]:
    """(kernel name, instruction stream) of every kernel ``channel`` of ``module`` takes part in,
    in program order. ``lengths`` (request -> tokens, default the compiled context) sets the DPA
    loop trip counts; ``page_table`` translates DPA virtual rows (default: chunks allocated after
    the module's weight rows)."""
    cfg, table = compiled.cfg, compiled.table
    prog = compiled.programs.get(module, [])
    ctx = table["program"]["context"]
    lengths = lengths or {0: ctx}
    dpa = table["program"]["memory"] == "dpa"
    if dpa and page_table is None:
        weights = sum(r["rows"] for r in table["buffers"].get(str(module), []))
        chunk = cfg.dpa.chunk_rows
        page_table = L.PageTable(chunk, -(-weights // chunk) * chunk)
    out: list[tuple[str, list[Instruction]]] = []
    for k in table["kernels"]:
        p = k["program"]
        if p["module"] != module:
            continue
        insts = [i for i in prog[p["start"] : p["start"] + p["count"]] if _in_mask(i, channel)]
        if not any(i.op not in (InstOp.DYN_LOOP, InstOp.DYN_MODI) for i in insts):
            continue
        if dpa and k["kind"] != "gemv":
            a = _shape(cfg, k)

            def trips(req: int, a: L.AttnShape = a) -> int:
                return a.local_slots(lengths[req], channel)

            insts = L.expand(insts, cfg, trips, page_table, virtual=True)
        out.append((k["name"], [replace(i, ch_mask=1) for i in insts]))
    return out


# ---------------------------------------------------------------------------- numerics


def _gpr(v: U16, base: int, per: int) -> dict[int, U16]:
    return {base + i: v[i * per : (i + 1) * per] for i in range(len(v) // per)}


def _rows_empty(cfg: PimConfig) -> U16:
    g = cfg.geometry
    return np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)


def run_gemv(compiled: Compiled, name: str, w: U16, x: U16, mode: Mode = Mode.DCS) -> U16:
    """``x[d_in] @ w[d_in, d_out]`` with the compiled GEMV ``name`` (module 0 of its TP group
    and the others), each channel on the golden model."""
    cfg = compiled.cfg
    g = cfg.geometry
    y = np.zeros(w.shape[1], dtype=np.uint16)
    for k in compiled.table["kernels"]:
        if k.get("op") != name:
            continue
        kern = GemvKernel(k["d_out"], k["d_in"], cfg, base_row=k["base_row"])
        streams = dict(kernel_streams(compiled, k["module"], 0))
        for c in range(k["channels"]):
            stream = dict(kernel_streams(compiled, k["module"], c))[k["name"]]
            assert stream == streams[k["name"]]  # broadcast: same stream on every channel
            lo = k["out_offset"] + c * k["d_out"]
            wt = w[:, lo : lo + k["d_out"]].T  # d_out x d_in
            rows: dict[int, U16] = {}
            for grp in range(kern.groups):
                for tile in range(kern.tiles):
                    row, col = kern.place(grp, tile)
                    arr = rows.setdefault(row, _rows_empty(cfg))
                    seg = wt[grp * g.banks : (grp + 1) * g.banks,
                             tile * kern.seg_cols * g.lanes : (tile + 1) * kern.seg_cols * g.lanes]
                    arr[:, col : col + kern.seg_cols, :] = seg.reshape(g.banks, kern.seg_cols,
                                                                       g.lanes)
            res = run_kernel(cfg, mode, stream, rows, _gpr(x, GPR_IN, g.lanes))
            y[lo : lo + k["d_out"]] = np.concatenate(
                [res.gpr[kern.out_gpr + i] for i in range(kern.groups)])
    return y


def _tokens_of(a: L.AttnShape, channel: int, head: int, t_max: int) -> list[int]:
    """Global token ids held by ``channel`` for ``head``, in local order (padded with -1)."""
    lanes = a.cfg.geometry.banks
    if a.layout == "hfp":
        ids = list(range(a.slots * lanes))
    else:
        ids = [s * lanes + i for s in range(channel, a.slots, a.channels) for i in range(lanes)]
    ids = [t if t < t_max else -1 for t in ids]
    return ids + [-1] * (a.local_tokens - len(ids))


def run_attention(
    compiled: Compiled, q: U16, k_cache: U16, v_cache: U16, length: int, mode: Mode = Mode.DCS
) -> tuple[U16, np.ndarray]:
    """Attention of one layer on the golden model: QK^T kernels, host softmax (float32, scaled by
    1/sqrt(d_head), tokens >= ``length`` masked), SV kernels, TCP partial sums added in float32.
    ``q``: [kv, g, d]; caches: [T, kv, d] (bf16 bits). Returns (o [kv, g, d], scores [kv, g, T])."""
    cfg = compiled.cfg
    geo = cfg.geometry
    kv, grp, d = q.shape
    t_max = k_cache.shape[0]
    dpa = compiled.table["program"]["memory"] == "dpa"
    kerns = compiled.table["kernels"]
    scores = np.zeros((kv, grp, t_max), dtype=np.float32)
    out = np.zeros((kv, grp, d), dtype=np.float32)
    lengths = {0: length}
    probs: U16 = np.zeros((kv, grp, t_max), dtype=np.uint16)
    for k in kerns:
        if k["kind"] not in ("qk", "sv"):
            continue
        a = _shape(cfg, k)
        m = k["module"]
        heads_before = m * a.kv_heads  # TP: module m holds heads [m*kv_m, (m+1)*kv_m)
        chans = [c for c in range(a.channels) if k["ch_mask"] >> c & 1]
        qi = int(k["name"].rsplit("q", 1)[1]) if k["kind"] == "sv" else 0
        for c in chans:
            h = heads_before + (k["round"] * a.channels + c if a.layout == "hfp" else k["round"])
            ids = _tokens_of(a, c, h, t_max)
            pt = L.PageTable(cfg.dpa.chunk_rows, 1 << 10) if dpa else None
            stream = dict(kernel_streams(compiled, m, c, lengths, pt))[k["name"]]
            rows: dict[int, U16] = {}

            def put(
                row: int, bank: int, col: int, lanes: slice, data: U16,
                pt: L.PageTable | None = pt, rows: dict[int, U16] = rows,
            ) -> None:
                r = pt(0, row) if pt is not None else row
                rows.setdefault(r, _rows_empty(cfg))[bank, col, lanes] = data

            if k["kind"] == "qk":
                hc = a.head_cols
                for i, t in enumerate(ids):
                    if t < 0:
                        continue
                    slot, bank = divmod(i, geo.banks)
                    va = (k["base_row"] + k["round"] * a.k_rows(k["memory"])) * a.cols
                    va += slot * hc
                    for cc in range(hc):
                        put((va + cc) // a.cols, bank, (va + cc) % a.cols, slice(None),
                            k_cache[t, h, cc * geo.lanes : (cc + 1) * geo.lanes])
                gpr = _gpr(q[h].reshape(-1), GPR_IN, geo.lanes)
                res = run_kernel(cfg, mode, stream, rows, gpr)
                base = GPR_IN + grp * hc
                for i, t in enumerate(ids):
                    if t >= 0:
                        slot = i // geo.banks
                        for qq in range(grp):
                            v = res.gpr.get(base + slot * grp + qq)
                            if v is not None:
                                scores[h, qq, t] = from_bf16(v)[i % geo.banks]
                continue
            # SV: scores of query qi (probabilities, bf16) in local token order
            p = probs[h, qi]
            local = np.array([p[t] if 0 <= t < length else 0 for t in ids], dtype=np.uint16)
            ds = a.dim_slots
            sv = a.sv(k["base_row"] + k["round"] * a.v_rows("static"))
            for i, t in enumerate(ids):
                if t < 0 or t >= length:
                    continue
                slot, lane = divmod(i, geo.lanes)
                for j in range(ds):
                    dims = v_cache[t, h, j * geo.banks : (j + 1) * geo.banks]
                    if dpa:
                        va = (k["base_row"] + k["round"] * a.v_rows("dpa")) * a.cols
                        va += slot * ds + j
                        row, col = divmod(va, a.cols)
                    else:
                        blk, rem = divmod(i, sv.block_cols * geo.lanes)
                        row, col = sv.row_of(blk, j), rem // geo.lanes
                    for b in range(geo.banks):
                        put(row, b, col, slice(lane, lane + 1), dims[b : b + 1])
            res = run_kernel(cfg, mode, stream, rows, _gpr(local, GPR_IN, geo.lanes))
            if dpa:
                top = L.sv_out_gpr(cfg, d)
                part = np.concatenate([res.gpr[top + j] for j in range(ds)])
            else:
                part = sv.combine(res.gpr)
            out[h, qi] += from_bf16(part)
        if k["kind"] == "qk" and k is _last(kerns, "qk"):
            probs = _softmax(scores, length, d)
    return to_bf16(out), scores


def _last(kerns: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return [k for k in kerns if k["kind"] == kind][-1]


def _softmax(scores: np.ndarray, length: int, d: int) -> U16:
    s = scores.astype(np.float32) * np.float32(1.0 / np.sqrt(d))
    s[..., length:] = -np.inf
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return to_bf16((e / e.sum(axis=-1, keepdims=True)).astype(np.float32))

