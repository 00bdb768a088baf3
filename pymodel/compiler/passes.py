"""The compiler passes (xDSL ``ModulePass``) and the pipeline driver.

``pim-match``      StableHLO dot_general -> pim.gemv / pim.qk / pim.sv (GQA group from shapes),
                   the softmax chain -> pim.softmax, cache dynamic_update_slice -> pim.kv_write.
``pim-partition``  tensor parallelism (GEMV outputs and KV heads split over ``tp`` modules) and
                   pipeline parallelism (layer ``layer`` of ``layers`` -> stage); sets
                   ``pim.modules`` on every graph op.
``pim-lower``      graph ops -> ``pim.program`` of ``pim.kernel`` (HFP or TCP layout, STATIC
                   addresses or pymodel.golden.dpa's DYN_LOOP templates) and ``pim.host`` steps, for
                   ``batch`` requests; allocates rows per module (see layout.py).
``pim-emit``       the HUB program (pymodel.isa words) and the execution table (JSON).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnregisteredOp,
)
from xdsl.dialects.func import FuncOp
from xdsl.ir import Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.passes import ModulePass

from pymodel.compiler import layout as L
from pymodel.compiler.dialect import (
    GemvOp,
    HostOp,
    KernelOp,
    KvWriteOp,
    ProgramOp,
    QkOp,
    SoftmaxOp,
    SvOp,
    _InstOp,
    dyn_loop,
    i64,
    inst_op,
    where,
)
from pymodel.compiler.frontend import CompileError, op_name
from pymodel.config import PimConfig, resolve
from pymodel.golden import dpa
from pymodel.golden.kernels import GPR_IN, KernelError
from pymodel.isa import Instruction, IsaError, check_instruction, encode_inst, inst_width

_PASSTHROUGH = ("stablehlo.reshape", "stablehlo.convert", "stablehlo.transpose")


def _dims(op: Operation) -> dict[str, list[int]]:
    attr = op.properties.get("dot_dimension_numbers") or op.attributes.get("dot_dimension_numbers")
    text = str(attr)
    out: dict[str, list[int]] = {}
    for key in ("lhs_batching", "rhs_batching", "lhs_contracting", "rhs_contracting"):
        m = re.search(key + r"_dimensions = \[([0-9, ]*)\]", text)
        out[key] = [int(v) for v in m.group(1).split(",") if v.strip()] if m else []
    return out


def _shape(v: SSAValue) -> tuple[int, ...]:
    t = v.type
    assert isinstance(t, TensorType)
    return tuple(t.get_shape())


def _root(v: SSAValue) -> SSAValue:
    """Follow reshapes/converts/cache updates back to a function argument (or the first op)."""
    while isinstance(v, OpResult):
        op = v.op
        name = op_name(op)
        if name in _PASSTHROUGH or name in ("stablehlo.dynamic_update_slice", "pim.kv_write"):
            v = op.operands[0]
            continue
        break
    return v


def _producer(v: SSAValue) -> Operation | None:
    while isinstance(v, OpResult) and op_name(v.op) in _PASSTHROUGH:
        v = v.op.operands[0]
    return v.op if isinstance(v, OpResult) else None


def main_func(module: ModuleOp) -> FuncOp:
    funcs = [op for op in module.walk() if isinstance(op, FuncOp)]
    public = [f for f in funcs if f.sym_visibility is None or f.sym_visibility.data == "public"]
    if len(public) != 1:
        raise CompileError(f"expected one public func.func, found {len(public)}")
    return public[0]


def _replace(old: Operation, new: Operation) -> None:
    new.location = old.location
    assert old.parent_block() is not None
    old.parent_block().insert_op_before(new, old)  # type: ignore[union-attr]
    for a, b in zip(old.results, new.results, strict=True):
        a.replace_all_uses_with(b)
    old.detach()
    old.erase()


def _dce(func: FuncOp) -> None:
    changed = True
    while changed:
        changed = False
        for op in reversed(list(func.body.walk())):
            if (
                isinstance(op, UnregisteredOp)
                and op.results
                and all(not r.uses for r in op.results)
            ):
                op.detach()
                op.erase()
                changed = True


class MatchPass(ModulePass):
    name = "pim-match"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        func = main_func(op)
        dots = [o for o in func.body.walk() if op_name(o) == "stablehlo.dot_general"]
        gemvs: list[GemvOp] = []
        for dot in dots:
            lhs, rhs = dot.operands
            d = _dims(dot)
            ls, rs = _shape(lhs), _shape(rhs)
            root = _root(rhs)
            if (
                len(rs) == 2
                and len(ls) == 2
                and ls[0] == 1
                and not d["lhs_batching"]
                and d["lhs_contracting"] == [1]
                and d["rhs_contracting"] == [0]
                and isinstance(root, BlockArgument)
            ):
                new: Operation = GemvOp.create(
                    operands=[lhs, rhs],
                    result_types=[dot.results[0].type],
                    properties={
                        "sym_name": StringAttr(f"gemv{len(gemvs)}"),
                        "d_in": i64(rs[0]),
                        "d_out": i64(rs[1]),
                    },
                )
                gemvs.append(new)  # type: ignore[arg-type]
            elif (
                len(rs) == 3
                and len(ls) == 3
                and d["lhs_batching"] == [0]
                and d["rhs_batching"] == [1]
                and isinstance(root, BlockArgument)
                and d["rhs_contracting"] in ([2], [0])
            ):
                t, kv, dh = rs
                props = {
                    "kv_heads": i64(kv),
                    "group": i64(ls[1]),
                    "d_head": i64(dh),
                    "tokens": i64(t),
                }
                cls = QkOp if d["rhs_contracting"] == [2] else SvOp
                new = cls.create(
                    operands=[lhs, rhs], result_types=[dot.results[0].type], properties=props
                )
            else:
                raise CompileError(
                    f"{where(dot)}: stablehlo.dot_general {ls} x {rs} with {d} is neither a "
                    f"GEMV (x[1,d_in] . W[d_in,d_out]) nor attention against a KV-cache argument"
                )
            _replace(dot, new)
        self._softmax(func)
        self._kv_writes(func)
        self._names(func, gemvs)
        _dce(func)
        qks = [o for o in func.body.walk() if isinstance(o, QkOp)]
        svs = [o for o in func.body.walk() if isinstance(o, SvOp)]
        if len(qks) != len(svs):
            raise CompileError(f"{len(qks)} QK^T but {len(svs)} SV products in the layer")
        op.verify()

    def _softmax(self, func: FuncOp) -> None:
        for sv in [o for o in func.body.walk() if isinstance(o, SvOp)]:
            div = _producer(sv.p)
            if div is None or op_name(div) != "stablehlo.divide":
                raise CompileError(f"{where(sv)}: SV probabilities are not a softmax (divide)")
            exp = _producer(div.operands[0])
            sub = _producer(exp.operands[0]) if exp is not None else None
            if (
                exp is None
                or op_name(exp) != "stablehlo.exponential"
                or sub is None
                or (op_name(sub) != "stablehlo.subtract")
            ):
                raise CompileError(f"{where(div)}: softmax must be exp(x - max) / sum")
            scores = sub.operands[0]
            sm = SoftmaxOp.create(operands=[scores], result_types=[div.results[0].type])
            _replace(div, sm)

    def _kv_writes(self, func: FuncOp) -> None:
        k_args = {_root(o.k) for o in func.body.walk() if isinstance(o, QkOp)}
        v_args = {_root(o.v) for o in func.body.walk() if isinstance(o, SvOp)}
        for o in list(func.body.walk()):
            if op_name(o) != "stablehlo.dynamic_update_slice":
                continue
            cache = o.operands[0]
            kind = "k" if cache in k_args else "v" if cache in v_args else None
            if kind is None:
                raise CompileError(f"{where(o)}: dynamic_update_slice of a non-KV-cache tensor")
            new = KvWriteOp.create(
                operands=[cache, o.operands[1], *o.operands[2:]],
                result_types=[o.results[0].type],
                properties={"kind": StringAttr(kind)},
            )
            _replace(o, new)

    def _names(self, func: FuncOp, gemvs: list[GemvOp]) -> None:
        def consumers(v: SSAValue) -> list[Operation]:
            out, todo = [], [v]
            while todo:
                for use in todo.pop().uses:
                    out.append(use.operation)
                    if op_name(use.operation) in _PASSTHROUGH:
                        todo.extend(use.operation.results)
            return out

        ffn: list[GemvOp] = []
        for g in gemvs:
            users = consumers(g.y)
            src = _producer(g.x)
            if any(isinstance(u, QkOp) for u in users):
                role = "q_proj"
            elif any(isinstance(u, KvWriteOp) and u.kind.data == "k" for u in users):
                role = "k_proj"
            elif any(isinstance(u, KvWriteOp) and u.kind.data == "v" for u in users):
                role = "v_proj"
            elif isinstance(src, SvOp):
                role = "o_proj"
            elif any(op_name(u) == "func.call" for u in users):
                role = "ffn_gate"
            elif (
                src is not None
                and op_name(src) == "stablehlo.multiply"
                and any(
                    isinstance(_producer(v), GemvOp) or op_name(_producer(v) or src) == "func.call"
                    for v in src.operands
                )
            ):
                role = "ffn_down"
            else:
                role = f"ffn_up{len(ffn) or ''}"
                ffn.append(g)
            g.sym_name = StringAttr(role)


@dataclass(frozen=True)
class PartitionPass(ModulePass):
    """TP over ``tp`` modules, PP over ``pp`` stages; this layer is ``layer`` of ``layers``."""

    name = "pim-partition"
    tp: int = 1
    pp: int = 1
    layer: int = 0
    layers: int = 1

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not 0 <= self.layer < self.layers:
            raise CompileError(f"--layer {self.layer} out of range [0, {self.layers - 1}]")
        if self.pp > self.layers:
            raise CompileError(f"pp = {self.pp} stages for {self.layers} layers")
        stage = self.layer * self.pp // self.layers
        modules = ArrayAttr([i64(stage * self.tp + m) for m in range(self.tp)])
        for o in main_func(op).body.walk():
            if isinstance(o, GemvOp):
                if o.d_out.value.data % self.tp:
                    raise CompileError(
                        f"{where(o)}: d_out {o.d_out.value.data} not divisible by tp = {self.tp}"
                    )
            elif isinstance(o, (QkOp, SvOp)):
                if o.kv_heads.value.data % self.tp:
                    raise CompileError(
                        f"{where(o)}: {o.kv_heads.value.data} KV heads not "
                        f"divisible by tp = {self.tp}"
                    )
            elif not isinstance(o, (SoftmaxOp, KvWriteOp)):
                continue
            o.attributes["pim.modules"] = modules
            o.attributes["pim.stage"] = i64(stage)


@dataclass
class Buffers:
    """Row allocation of one module (the same rows on every channel). With ``weights_from`` > 0
    (HFP STATIC whose KV channels cannot also hold the weights) the weights are on channels
    ``weights_from..C-1``, which hold no KV, and are counted apart (``weight_row``)."""

    next_row: int = 0
    regions: list[dict[str, Any]] = field(default_factory=list)
    weights_from: int = 0
    weight_row: int = 0

    def take(self, name: str, rows: int, kind: str) -> int:
        region: dict[str, Any] = {"name": name, "kind": kind, "rows": rows}
        if kind == "weights" and self.weights_from:
            base = self.weight_row
            region["first_channel"] = self.weights_from
            self.weight_row += rows
        else:
            base = self.next_row
            self.next_row += rows
        self.regions.append(region | {"row": base})
        return base

    @property
    def rows(self) -> int:
        """Rows per bank the fullest channel uses."""
        return max(self.next_row, self.weight_row)


class _Emitter:
    """The ``pim.program`` body being built: kernels in order, host steps between them."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.kernels: list[dict[str, Any]] = []
        self.names: set[str] = set()  # kernel names so far (a set: batches make thousands)
        self.host: list[str] = []  # host steps since the last kernel

    def flush_host(self, module: int) -> None:
        if self.host:
            self.ops.append(
                HostOp.create(
                    properties={
                        "sym_name": StringAttr(f"host{len(self.ops)}"),
                        "module": i64(module),
                        "ops": ArrayAttr([StringAttr(h) for h in self.host]),
                    }
                )
            )
            self.host = []

    def add_kernel(
        self,
        o: Operation,
        name: str,
        kind: str,
        module: int,
        items: list[L.Item],
        info: dict[str, Any],
    ) -> None:
        self.flush_host(module)
        body: list[Operation] = []
        for it in items:
            if isinstance(it, L.Loop):
                body.append(dyn_loop(it.req, [inst_op(b) for b in it.body], it.first, it.count))
            else:
                body.append(inst_op(it))
        props = {"sym_name": StringAttr(name), "kind": StringAttr(kind), "module": i64(module)}
        if "dpa_req" in info:
            props["req"] = i64(info["dpa_req"])
        k = KernelOp.create(properties=props, regions=[Region([Block(body)])])
        k.attributes["pim.origin"] = StringAttr(where(o))
        if name in self.names:
            raise CompileError(f"{where(o)}: two kernels named {name}")
        self.names.add(name)
        self.ops.append(k)
        self.kernels.append({"name": name, "kind": kind, "module": module, **info})

    def add_host(self, module: int, ops: list[str]) -> None:
        self.host.extend(ops)
        self.flush_host(module)


@dataclass(frozen=True)
class LowerPass(ModulePass):
    """Graph ops -> ``pim.program``. ``batch`` requests share the weights; each has its own KV
    (STATIC: ``T_max`` rows per request; DPA: one DPA request id per (request, KV head))."""

    name = "pim-lower"
    config: str = "aim-gddr6"
    model: str = "custom"
    layout: str = "tcp"
    memory: str = "static"
    context: int = 0  # T_max override (0: the cache length of the input)
    tp: int = 1
    pp: int = 1
    batch: int = 1
    table: dict[str, Any] = field(default_factory=dict)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cfg = resolve(self.config)
        if self.batch < 1:
            raise CompileError(f"--batch {self.batch} must be positive")
        func = main_func(op)
        emit = _Emitter()
        weights_from = self._weights_from(func, cfg)
        bufs: dict[int, Buffers] = defaultdict(lambda: Buffers(weights_from=weights_from))
        tokens = 0
        requests: list[dict[str, Any]] = [{"req": b, "modules": {}} for b in range(self.batch)]
        for o in list(func.body.ops):
            mods = o.attributes.get("pim.modules")
            modules = [int(m.value.data) for m in mods.data] if isinstance(mods, ArrayAttr) else [0]
            try:
                if isinstance(o, GemvOp):
                    self._gemv(o, cfg, modules, bufs, emit)
                elif isinstance(o, (QkOp, SvOp, KvWriteOp)):
                    emit.flush_host(modules[0])
                    self._attention(o, cfg, modules, bufs, requests, emit.add_kernel, emit.add_host)
                    if not isinstance(o, KvWriteOp):
                        tokens = o.tokens.value.data
                    if isinstance(o, SvOp) and (self.layout == "tcp" or self.memory == "dpa"):
                        emit.host.append("sv_reduce")
                elif isinstance(o, SoftmaxOp):
                    pass  # the EPU's softmax runs per segment, inline with QK^T and SV
                elif op_name(o) != "func.return":
                    emit.host.append(op_name(o).split(".", 1)[-1])
            except KernelError as exc:
                raise CompileError(f"{where(o)}: {o.name}: {exc}") from None
        emit.flush_host(0)
        for m, b in bufs.items():
            if b.rows > cfg.geometry.rows_per_bank:
                raise CompileError(
                    f"module {m}: weights and KV need {b.rows} rows per bank, the device has "
                    f"{cfg.geometry.rows_per_bank} (the layer does not fit; add modules)"
                )
        self._replace_body(op, func, emit.ops, tokens)
        self.table.update(
            {
                "buffers": {str(m): b.regions for m, b in sorted(bufs.items())},
                "kernels": emit.kernels,
                "requests": requests,
            }
        )
        if self.memory == "dpa":
            self.table["dpa"] = self._dpa_table(cfg, bufs, requests, emit.kernels)

    def _gemv(
        self,
        o: GemvOp,
        cfg: PimConfig,
        modules: list[int],
        bufs: dict[int, Buffers],
        emit: _Emitter,
    ) -> None:
        """One GEMV kernel per (module, request): the module's slice of the output rows."""
        d_out = o.d_out.value.data // len(modules)
        for i, m in enumerate(modules):
            b = bufs[m]
            first = b.weights_from
            row = b.weight_row if first else b.next_row
            kern, n = L.gemv(cfg, d_out, o.d_in.value.data, row, cfg.module.channels - first)
            b.take(o.sym_name.data, kern.rows, "weights")
            prog = list(L.with_mask(kern.program(), L.mask(n) << first))
            for r in range(self.batch):
                suffix = f".b{r}" if self.batch > 1 else ""
                emit.add_kernel(
                    o,
                    f"{o.sym_name.data}.m{m}{suffix}",
                    "gemv",
                    m,
                    list(prog),
                    {
                        "op": o.sym_name.data,
                        "req": r,
                        "channels": n,
                        "first_channel": first,
                        "d_out": kern.d_out,
                        "d_in": kern.d_in,
                        "out_offset": i * d_out,
                        "base_row": kern.base_row,
                        "gpr": {"in": GPR_IN, "out": kern.out_gpr},
                    },
                )

    def _replace_body(
        self, op: ModuleOp, func: Operation, prog_ops: list[Operation], tokens: int
    ) -> None:
        """The module's body becomes one ``pim.program`` holding ``prog_ops``."""
        program = ProgramOp.create(
            properties={
                "config": StringAttr(self.config),
                "model": StringAttr(self.model),
                "layout": StringAttr(self.layout),
                "memory": StringAttr(self.memory),
                "modules": i64(self.tp * self.pp),
                "tp": i64(self.tp),
                "pp": i64(self.pp),
                "context": i64(self._tokens(tokens)),
            },
            regions=[Region([Block(prog_ops)])],
        )
        func.detach()
        for other in list(op.body.block.ops):
            other.detach()
        op.body.block.add_op(program)
        op.verify()

    def _tokens(self, t: int) -> int:
        return self.context or t

    def _dpa_table(
        self,
        cfg: PimConfig,
        bufs: dict[int, Buffers],
        requests: list[dict[str, Any]],
        kernels: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """DPA parameters, and per module the pseudo requests the runtime OPENs first so that
        the weight rows' chunks are never handed to KV (chunk ``i`` of every channel is rows
        ``[i * chunk_rows, (i + 1) * chunk_rows)``; a request of ``n * C`` chunks takes chunks
        ``0..n-1`` of every channel of a fresh pool)."""
        d_head = next((k["d_head"] for k in kernels if "d_head" in k), dpa.D_HEAD)
        try:
            lay = dpa.DpaLayout.of(cfg, d_head)
        except dpa.DpaConfigError as exc:
            raise CompileError(f"DPA: {exc}") from None
        per_id = lay.max_chunks // lay.channels  # chunks per channel one pseudo request holds
        reserve: dict[str, list[dict[str, int]]] = {}
        for m, b in sorted(bufs.items()):
            need = -(-b.next_row // lay.chunk_rows)
            if need >= lay.chunks_per_channel:
                raise CompileError(
                    f"module {m}: weights take {b.next_row} rows per bank; no "
                    f"chunk is left for the KV pool (add modules)"
                )
            ids: list[dict[str, int]] = []
            rid = lay.max_requests - 1
            while need > 0:
                n = min(need, per_id)
                ids.append({"req": rid, "tokens": n * lay.channels * lay.chunk_tokens})
                need -= n
                rid -= 1
            used = [i for r in requests for i in r["modules"].get(str(m), {}).get("dpa_ids", [])]
            if used and max(used) >= rid + 1:
                raise CompileError(
                    f"module {m}: {len(used)} DPA request ids (one per request and KV head) and "
                    f"{len(ids)} for the weight rows exceed dpa.max_requests = {lay.max_requests}"
                )
            reserve[str(m)] = ids
        gpr = L.DpaGpr.of(cfg, d_head)
        segs = max(
            (k.get("segment", {}).get("first", 0) // gpr.max_blocks + 1 for k in kernels), default=1
        )
        return {
            "d_head": d_head,
            "block_tokens": lay.block_tokens,
            "rows_per_block": dpa.ROWS_PER_BLOCK,
            "chunk_rows": lay.chunk_rows,
            "chunk_tokens": lay.chunk_tokens,
            "reserve": reserve,
            "max_tokens_per_request": min(segs * gpr.max_tokens(cfg, d_head), lay.max_tokens),
            "segment_blocks": gpr.max_blocks,
            "segments": segs,
            "gpr": {
                "query": gpr.query,
                "scores": gpr.scores,
                "out": gpr.out,
                "kv_stage": L.GPR_KV_STAGE,
            },
            "append": "one APPEND(dpa_req, kv_stage) per request and KV head and step: the DPA "
            "grows the id by a token and writes its K and V (pymodel.golden.dpa)",
        }

    def _attention(
        self,
        o: Operation,
        cfg: PimConfig,
        modules: list[int],
        bufs: dict[int, Buffers],
        requests: list[dict[str, Any]],
        add: Any,
        add_host: Any,
    ) -> None:
        if isinstance(o, KvWriteOp):
            t, kv, dh = _shape(o.cache)
            group = 1
            kind = o.kind.data
        else:
            assert isinstance(o, (QkOp, SvOp))
            kv, group, dh, t = (
                o.kv_heads.value.data,
                o.group.value.data,
                o.d_head.value.data,
                o.tokens.value.data,
            )
            kind = "qk" if isinstance(o, QkOp) else "sv"
        t = self._tokens(t)
        kv_m = kv // len(modules)
        for m in modules:
            for b in range(self.batch):
                common = {
                    "req": b,
                    "kv_heads": kv_m,
                    "group": group,
                    "d_head": dh,
                    "tokens": t,
                    "layout": self.layout,
                    "memory": self.memory,
                    "head_offset": modules.index(m) * kv_m,
                }
                if self.memory == "dpa":
                    self._dpa(o, cfg, m, b, kind, kv_m, group, dh, common, requests, add, add_host)
                else:
                    self._static(
                        o, cfg, m, b, kind, kv_m, group, dh, t, common, bufs[m], requests, add
                    )

    def _static(
        self,
        o: Operation,
        cfg: PimConfig,
        m: int,
        b: int,
        kind: str,
        kv_m: int,
        group: int,
        dh: int,
        t: int,
        common: dict[str, Any],
        buf: Buffers,
        requests: list[dict[str, Any]],
        add: Any,
    ) -> None:
        a = L.AttnShape(cfg, kv_m, group, dh, t, self.layout)
        bases = {}
        for region in ("K", "V"):
            name = f"{region}.b{b}"
            base = next((r["row"] for r in buf.regions if r["name"] == name), None)
            if base is None:
                rows = a.rounds * (a.k_rows if region == "K" else a.v_rows)
                base = buf.take(name, rows, "kv_static")
                requests[b]["modules"].setdefault(str(m), {"t_max": t})[region] = base
            bases[region] = base
        info = {**common, "channels": a.used_channels, "local_tokens": a.local_tokens}
        if kind in ("k", "v"):
            base = bases[kind.upper()]
            for h in range(kv_m):
                add(
                    o,
                    f"kv_append_{kind}.m{m}.b{b}.h{h}",
                    "kv_append",
                    m,
                    L.kv_append_static(a, kind, base, h, 0),
                    {
                        **info,
                        "base_row": base,
                        "head": h,
                        "kv": kind,
                        "issue": "static_position",
                        "gpr": {"stage": L.GPR_KV_STAGE},
                    },
                )
            return
        if kind == "sv":
            return  # emitted with its QK^T: per round and segment QK^T -> softmax -> SV
        for kern in L.attention_static(a, bases["K"], bases["V"]):
            first, n = a.segment(kern.segment)
            seg = {"index": kern.segment, "of": a.segments, "first": first, "tokens": n}
            qk = kern.kind == "qk"
            gpr = (
                {"query": GPR_IN, "scores": a.qk_segment(0, 0, kern.segment).out_gpr}
                if qk
                else {"probs": GPR_IN, "out": a.sv_segment(0, 0, kern.segment).out_gpr}
            )
            add(
                o,
                f"{kern.kind}.m{m}.b{b}.{kern.suffix(a.segments)}",
                kern.kind,
                m,
                kern.items,
                {
                    **info,
                    "base_row": bases["K" if qk else "V"],
                    "round": kern.round,
                    "ch_mask": a.round_mask(kern.round),
                    **({} if qk else {"query": kern.query}),
                    "static_segment": seg,
                    "gpr": gpr,
                },
            )

    def _weights_from(self, func: FuncOp, cfg: PimConfig) -> int:
        """First channel the weights go to: 0 (every channel) unless HFP STATIC's KV channels
        cannot also hold the layer's weights; then the channels holding no KV (HFP puts local KV
        head h on channel h % C, so channels ``0..min(C, heads)-1``). A KV channel that cannot
        hold even its KV alone is refused here with the most tokens that fit."""
        if self.layout != "hfp" or self.memory != "static":
            return 0
        rows = cfg.geometry.rows_per_bank
        attn = [o for o in func.body.ops if isinstance(o, QkOp)]
        gemvs = [o for o in func.body.ops if isinstance(o, GemvOp)]
        if not attn:
            return 0
        shapes = [self._attn_shape(o, cfg) for o in attn]
        try:
            for a in shapes:
                replace_tokens(a, cfg.geometry.banks).kv_rows()  # a shape the kernels take
            weights = sum(
                L.gemv(cfg, g.d_out.value.data // self.tp, g.d_in.value.data, 0)[0].rows
                for g in gemvs
            )
        except KernelError:
            return 0  # the GEMV lowering reports it with its location
        kv = sum(_kv_rows(a, self.batch, rows) for a in shapes)
        used = max(a.used_channels for a in shapes)
        apart = used < cfg.module.channels and bool(gemvs)  # channels without KV exist
        if kv + weights <= rows:
            return 0
        if apart and kv <= rows:
            return used
        a, extra = shapes[0], 0 if apart else weights
        fit = _max_tokens(
            lambda n: _kv_rows(replace_tokens(a, n), self.batch, rows) * len(shapes) + extra, rows
        )
        where_w = "the weights on the other channels" if apart else f"and {weights} weight rows"
        raise CompileError(
            f"{where(attn[0])}: HFP STATIC at T_max = {a.tokens}: K and V of {a.rounds} KV "
            f"head(s) x {self.batch} request(s) need {kv} rows per bank on a KV channel "
            f"({where_w}), a bank has {rows}: at most {fit} tokens fit (--partition tcp, "
            f"--memory dpa or more modules)"
        )

    def _attn_shape(self, o: QkOp, cfg: PimConfig) -> L.AttnShape:
        kv = o.kv_heads.value.data // self.tp
        return L.AttnShape(
            cfg,
            kv,
            o.group.value.data,
            o.d_head.value.data,
            self._tokens(o.tokens.value.data),
            self.layout,
        )

    def _dpa(
        self,
        o: Operation,
        cfg: PimConfig,
        m: int,
        b: int,
        kind: str,
        kv_m: int,
        group: int,
        dh: int,
        common: dict[str, Any],
        requests: list[dict[str, Any]],
        add: Any,
        add_host: Any,
    ) -> None:
        ids = [b * kv_m + h for h in range(kv_m)]
        if ids[-1] >= cfg.dpa.max_requests:
            raise KernelError(
                f"DPA: {self.batch} requests x {kv_m} KV heads need "
                f"{ids[-1] + 1} request ids > dpa.max_requests = "
                f"{cfg.dpa.max_requests}"
            )
        requests[b]["modules"][str(m)] = {"dpa_ids": ids}
        gpr = L.DpaGpr.of(cfg, dh)
        if kind == "v":
            return  # one APPEND writes K and V
        if kind == "k":
            for h, rid in enumerate(ids):
                add(
                    o,
                    f"kv_append.m{m}.b{b}.h{h}",
                    "kv_append",
                    m,
                    dpa.append_template(rid, L.GPR_KV_STAGE),
                    {
                        **common,
                        "head": h,
                        "kv": "kv",
                        "dpa_req": rid,
                        "issue": "dpa_append",
                        "gpr": {"stage": L.GPR_KV_STAGE},
                    },
                )
            return
        if kind == "sv":
            return  # emitted with its QK^T: per query head and segment QK^T -> softmax -> SV
        lay = dpa.DpaLayout.of(cfg, dh)
        seg = gpr.max_blocks  # KV blocks per softmax segment: as many as the GPR holds scores
        segments = dpa.segment_count(common["tokens"], lay.block_tokens, seg)
        for h, rid in enumerate(ids):
            for q in range(group):
                info = {**common, "head": h, "query": q, "dpa_req": rid}
                for s in range(segments):
                    win = {"first": s * seg, "count": seg}
                    qk, sv = L.dpa_attention(cfg, rid, dh, **win)
                    sfx = f".s{s}" if segments > 1 else ""
                    add(
                        o,
                        f"qk.m{m}.b{b}.h{h}.q{q}{sfx}",
                        "qk",
                        m,
                        list(qk),
                        {**info, "segment": win, "gpr": {"query": gpr.query, "scores": gpr.scores}},
                    )
                    add_host(m, ["softmax_segment"])
                    add(
                        o,
                        f"sv.m{m}.b{b}.h{h}.q{q}{sfx}",
                        "sv",
                        m,
                        list(sv),
                        {**info, "segment": win, "gpr": {"probs": gpr.scores, "out": gpr.out}},
                    )


def replace_tokens(a: L.AttnShape, tokens: int) -> L.AttnShape:
    return L.AttnShape(a.cfg, a.kv_heads, a.group, a.d_head, tokens, a.layout)


def _kv_rows(a: L.AttnShape, batch: int, rows: int) -> int:
    """K and V rows per bank of a KV channel; ``rows + 1`` when K or V alone exceeds a bank (the
    kernels refuse such a shape)."""
    try:
        return a.kv_rows(batch)
    except KernelError:
        return rows + 1


def _max_tokens(rows_for: Any, rows: int) -> int:
    """The largest token count whose rows (``rows_for(tokens)``, non-decreasing) fit ``rows``."""
    lo, hi = 0, 1
    while rows_for(hi) <= rows:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rows_for(mid) <= rows else (lo, mid)
    return lo


# ---------------------------------------------------------------------------- emission


def instructions(kernel: KernelOp) -> list[Instruction]:
    out: list[Instruction] = []
    for o in kernel.body.ops:
        assert isinstance(o, _InstOp)
        out.append(o.instruction())
        if o.regions:
            out.extend(b.instruction() for b in o.regions[0].ops if isinstance(b, _InstOp))
    return out


@dataclass(frozen=True)
class EmitPass(ModulePass):
    """Collects each module's HUB program and fills ``table`` (kernel instruction ranges)."""

    name = "pim-emit"
    table: dict[str, Any] = field(default_factory=dict)
    programs: dict[int, list[Instruction]] = field(default_factory=dict)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        prog = next(o for o in op.walk() if isinstance(o, ProgramOp))
        cfg = resolve(prog.config.data)
        kinfo = {k["name"]: k for k in self.table.get("kernels", [])}
        steps: list[dict[str, Any]] = []
        for o in prog.body.ops:
            if isinstance(o, HostOp):
                steps.append(
                    {
                        "host": o.sym_name.data,
                        "module": o.module.value.data,
                        "ops": [s.data for s in o.ops.data],
                    }
                )
                continue
            assert isinstance(o, KernelOp)
            m = o.module.value.data
            insts = instructions(o)
            for inst in insts:
                try:
                    check_instruction(inst, cfg)
                except IsaError as exc:
                    raise CompileError(f"{where(o)}: {o.sym_name.data}: {exc}") from None
            words = self.programs.setdefault(m, [])
            info = kinfo.setdefault(o.sym_name.data, {"name": o.sym_name.data})
            info["program"] = {"module": m, "start": len(words), "count": len(insts)}
            words.extend(insts)
            steps.append({"kernel": o.sym_name.data, "module": m})
        self.table["steps"] = steps
        self.table["kernels"] = list(kinfo.values())
        self.table["program"] = {
            "config": prog.config.data,
            "model": prog.model.data,
            "layout": prog.layout.data,
            "memory": prog.memory.data,
            "modules": prog.modules.value.data,
            "tp": prog.tp.value.data,
            "pp": prog.pp.value.data,
            "context": prog.context.value.data,
            "inst_bits": inst_width(cfg),
            "instructions": {str(m): len(p) for m, p in sorted(self.programs.items())},
            "batch": len(self.table.get("requests", [])) or 1,
        }


def encode_program(prog: list[Instruction], cfg: PimConfig) -> bytes:
    """Little-endian words of ``ceil(inst_width / 8)`` bytes each."""
    nbytes = -(-inst_width(cfg) // 8)
    return b"".join(encode_inst(i, cfg).to_bytes(nbytes, "little") for i in prog)


def _unused(_: IntegerAttr[Any]) -> None:  # pragma: no cover - keeps the import for typing
    pass
