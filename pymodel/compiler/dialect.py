"""The ``pim`` dialect (xDSL): graph-level kernels and HUB instructions with verifiers.

Two levels live in one dialect:

* **graph level** (tensor SSA values, produced by ``pim-match`` from StableHLO): ``pim.gemv``,
  ``pim.qk``, ``pim.softmax``, ``pim.sv``, ``pim.kv_write``. Their verifiers check the attributes
  against the operand/result tensor shapes.
* **instruction level** (no SSA values, produced by ``pim-lower``): ``pim.program`` holds
  ``pim.kernel`` and ``pim.host`` ops; a kernel holds ``pim.wr_inp``, ``pim.mac``, ``pim.rd_out``,
  ``pim.kv_append`` (WR_BANK; under DPA issued through pymodel.golden.dpa's APPEND path, rows
  block-relative) and ``pim.dyn_loop`` (a region repeated once per KV block of a
  request's current length) with ``pim.dyn_modi`` (advance an operand by a stride). Each
  instruction op verifies its operands with :func:`pymodel.isa.check_instruction` against the
  device config named by the enclosing ``pim.program`` (``config`` property).

Every op prints and parses in the generic MLIR form and in the declarative form
(``pim.mac <{ch_mask = 1 : i64, ...}>``).
"""

from __future__ import annotations

import functools
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Dialect, Operation, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import NoTerminator
from xdsl.utils.exceptions import VerifyException

from pymodel.config import PimConfig, resolve
from pymodel.isa import InstOp, Instruction, IsaError, ModiField, check_instruction

I64 = IntegerType(64)


@functools.lru_cache(maxsize=1 << 16)
def i64(value: int) -> IntegerAttr[IntegerType]:
    """An i64 attribute; cached (attributes are immutable values) because a 1M-token STATIC
    program has millions of instruction fields and building each attribute dominated the compile."""
    return IntegerAttr(value, I64)


def where(op: Operation) -> str:
    """``file:line:col`` of the op in the input (set by the front end), else its name."""
    loc = op.location
    text = str(loc) if loc is not None else ""
    if text.startswith("loc(") and text.endswith(")"):
        text = text[4:-1].replace('"', "")
        if text != "unknown":
            return text
    origin = op.attributes.get("pim.origin")
    if isinstance(origin, StringAttr):
        return origin.data
    parent = op.parent_op()
    return where(parent) if parent is not None else "<generated>"


def fail(op: Operation, message: str) -> VerifyException:
    return VerifyException(f"{where(op)}: {op.name}: {message}")


@functools.lru_cache(maxsize=16)
def _config(name: str) -> PimConfig:
    return resolve(name)


def _shape(value: SSAValue) -> tuple[int, ...]:
    t = value.type
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a tensor, got {t}")
    return tuple(t.get_shape())


def _int(op: Operation, name: str) -> int:
    attr = op.properties.get(name)
    if not isinstance(attr, IntegerAttr):
        raise fail(op, f"property '{name}' must be an integer")
    return int(attr.value.data)


# ---------------------------------------------------------------------------- graph level


class _GraphOp(IRDLOperation):
    def _positive(self, *names: str) -> None:
        for name in names:
            if _int(self, name) <= 0:
                raise fail(self, f"{name} = {_int(self, name)} must be positive")


@irdl_op_definition
class GemvOp(_GraphOp):
    """``y[1, d_out] = x[1, d_in] @ W[d_in, d_out]``; W is function argument ``weight``."""

    name = "pim.gemv"
    irdl_options = (ParsePropInAttrDict(),)
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    y = result_def(TensorType)
    sym_name = prop_def(StringAttr)
    d_in = prop_def(IntegerAttr)
    d_out = prop_def(IntegerAttr)
    assembly_format = "$x `,` $w attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        self._positive("d_in", "d_out")
        d_in, d_out = _int(self, "d_in"), _int(self, "d_out")
        if _shape(self.x) != (1, d_in):
            raise fail(self, f"input shape {_shape(self.x)} != (1, d_in = {d_in})")
        if _shape(self.w) != (d_in, d_out):
            raise fail(self, f"weight shape {_shape(self.w)} != (d_in, d_out) = {(d_in, d_out)}")
        if _shape(self.y) != (1, d_out):
            raise fail(self, f"result shape {_shape(self.y)} != (1, d_out = {d_out})")


class _AttnOp(_GraphOp):
    kv_heads = prop_def(IntegerAttr)
    group = prop_def(IntegerAttr)
    d_head = prop_def(IntegerAttr)
    tokens = prop_def(IntegerAttr)

    def _dims(self) -> tuple[int, int, int, int]:
        self._positive("kv_heads", "group", "d_head", "tokens")
        return tuple(_int(self, n) for n in ("kv_heads", "group", "d_head", "tokens"))  # type: ignore[return-value]


@irdl_op_definition
class QkOp(_AttnOp):
    """Scores ``s[kv, g, T] = q[kv, g, d] . K[T, kv, d]`` (GQA: ``g`` queries share a K head)."""

    name = "pim.qk"
    irdl_options = (ParsePropInAttrDict(),)
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    s = result_def(TensorType)
    assembly_format = "$q `,` $k attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        kv, g, d, t = self._dims()
        for what, got, want in (
            ("q", _shape(self.q), (kv, g, d)),
            ("K cache", _shape(self.k), (t, kv, d)),
            ("scores", _shape(self.s), (kv, g, t)),
        ):
            if got != want:
                raise fail(self, f"{what} shape {got} != {want}")


@irdl_op_definition
class SoftmaxOp(_GraphOp):
    """Row softmax over the last axis (EPU/host work), with the causal length mask."""

    name = "pim.softmax"
    irdl_options = (ParsePropInAttrDict(),)
    s = operand_def(TensorType)
    p = result_def(TensorType)
    assembly_format = "$s attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        if _shape(self.s) != _shape(self.p):
            raise fail(self, f"shape changes {_shape(self.s)} -> {_shape(self.p)}")


@irdl_op_definition
class SvOp(_AttnOp):
    """``o[kv, g, d] = p[kv, g, T] . V[T, kv, d]``."""

    name = "pim.sv"
    irdl_options = (ParsePropInAttrDict(),)
    p = operand_def(TensorType)
    v = operand_def(TensorType)
    o = result_def(TensorType)
    assembly_format = "$p `,` $v attr-dict `:` functional-type(operands, results)"

    def verify_(self) -> None:
        kv, g, d, t = self._dims()
        for what, got, want in (
            ("probabilities", _shape(self.p), (kv, g, t)),
            ("V cache", _shape(self.v), (t, kv, d)),
            ("output", _shape(self.o), (kv, g, d)),
        ):
            if got != want:
                raise fail(self, f"{what} shape {got} != {want}")


@irdl_op_definition
class KvWriteOp(_GraphOp):
    """Append this step's K or V (``[1, kv, d]``) to the cache at the request's position."""

    name = "pim.kv_write"
    irdl_options = (ParsePropInAttrDict(),)
    cache = operand_def(TensorType)
    new = operand_def(TensorType)
    index = var_operand_def()
    out = result_def(TensorType)
    kind = prop_def(StringAttr)
    assembly_format = (
        "$cache `,` $new `[` $index `]` attr-dict `:` functional-type(operands, results)"
    )

    def verify_(self) -> None:
        if self.kind.data not in ("k", "v"):
            raise fail(self, f"kind = '{self.kind.data}' must be 'k' or 'v'")
        t, kv, d = _shape(self.cache)
        if _shape(self.new) != (1, kv, d):
            raise fail(self, f"new entry shape {_shape(self.new)} != {(1, kv, d)}")


# ---------------------------------------------------------------------------- program level


@irdl_op_definition
class ProgramOp(IRDLOperation):
    """A compiled layer: kernels and host steps in execution order, for one device config."""

    name = "pim.program"
    irdl_options = (ParsePropInAttrDict(),)
    config = prop_def(StringAttr)
    model = prop_def(StringAttr)
    layout = prop_def(StringAttr)
    memory = prop_def(StringAttr)
    modules = prop_def(IntegerAttr)
    tp = prop_def(IntegerAttr)
    pp = prop_def(IntegerAttr)
    context = prop_def(IntegerAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())
    assembly_format = "attr-dict-with-keyword $body"

    def verify_(self) -> None:
        if self.layout.data not in ("hfp", "tcp"):
            raise fail(self, f"layout = '{self.layout.data}' must be hfp or tcp")
        if self.memory.data not in ("static", "dpa"):
            raise fail(self, f"memory = '{self.memory.data}' must be static or dpa")
        tp, pp, n = _int(self, "tp"), _int(self, "pp"), _int(self, "modules")
        if tp < 1 or pp < 1 or tp * pp != n:
            raise fail(self, f"tp = {tp} x pp = {pp} must equal modules = {n}")
        try:
            _config(self.config.data)
        except ValueError as exc:
            raise fail(self, f"config: {exc}") from None
        for op in self.body.ops:
            if not isinstance(op, (KernelOp, HostOp)):
                raise fail(op, "only pim.kernel and pim.host may appear in a pim.program")


def program_of(op: Operation) -> ProgramOp:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, ProgramOp):
        parent = parent.parent_op()
    if parent is None:
        raise fail(op, "must be nested in a pim.program")
    return parent


def config_of(op: Operation) -> PimConfig:
    return _config(program_of(op).config.data)


KERNEL_KINDS = ("gemv", "qk", "sv", "kv_append")


@irdl_op_definition
class KernelOp(IRDLOperation):
    """One kernel on one module: a HUB instruction stream (broadcast to ``ch_mask`` channels)."""

    name = "pim.kernel"
    irdl_options = (ParsePropInAttrDict(),)
    sym_name = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    module = prop_def(IntegerAttr)
    req = opt_prop_def(IntegerAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())
    assembly_format = "attr-dict-with-keyword $body"

    def verify_(self) -> None:
        if self.kind.data not in KERNEL_KINDS:
            raise fail(self, f"kind = '{self.kind.data}' (one of {', '.join(KERNEL_KINDS)})")
        prog = program_of(self)
        if not 0 <= _int(self, "module") < _int(prog, "modules"):
            raise fail(self, f"module = {_int(self, 'module')} >= modules {_int(prog, 'modules')}")
        for op in self.body.ops:
            if not isinstance(op, _InstOp):
                raise fail(op, "only instruction ops may appear in a pim.kernel")


@irdl_op_definition
class HostOp(IRDLOperation):
    """Work the HUB's EPU (or the host) does between kernels: softmax, norms, SV reduction..."""

    name = "pim.host"
    irdl_options = (ParsePropInAttrDict(),)
    sym_name = prop_def(StringAttr)
    module = prop_def(IntegerAttr)
    ops = prop_def(ArrayAttr[StringAttr])
    assembly_format = "attr-dict"


class _InstOp(IRDLOperation):
    """A HUB instruction; ``OP`` is its pymodel.isa opcode, properties are its fields."""

    OP: ClassVar[InstOp]

    def instruction(self) -> Instruction:
        from pymodel.isa import INST_FIELDS

        values: dict[str, int] = {}
        for name in INST_FIELDS[self.OP]:
            if name == "body_len":
                continue
            if name in ("first", "count") and name not in self.properties:
                values[name] = 0  # a DYN_LOOP without a window covers the whole request
                continue
            if name == "field":
                attr = self.properties.get("field")
                names = ModiField.__members__
                if not isinstance(attr, StringAttr) or attr.data.upper() not in names:
                    raise fail(self, f"field must be one of {', '.join(ModiField.__members__)}")
                values[name] = int(ModiField[attr.data.upper()])
                continue
            values[name] = _int(self, name)
        if self.OP is InstOp.DYN_LOOP:
            assert isinstance(self, DynLoopOp)
            values["body_len"] = self.body_len()
        return Instruction(self.OP, **values)

    def verify_(self) -> None:
        cfg = config_of(self)
        try:
            check_instruction(self.instruction(), cfg)
        except IsaError as exc:
            raise fail(self, str(exc)) from None
        mask_attr = self.properties.get("ch_mask")
        if mask_attr is not None and _int(self, "ch_mask") >> cfg.module.channels:
            raise fail(self, f"ch_mask selects channels beyond {cfg.module.channels}")


@irdl_op_definition
class WrInpOp(_InstOp):
    name = "pim.wr_inp"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.WR_INP
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    gb = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class MacOp(_InstOp):
    name = "pim.mac"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.MAC
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gb = prop_def(IntegerAttr)
    row = prop_def(IntegerAttr)
    col = prop_def(IntegerAttr)
    out = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class RdOutOp(_InstOp):
    name = "pim.rd_out"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.RD_OUT
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    out = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class WrBiasOp(_InstOp):
    """AiM WR_BIAS: GPR[gpr + i] -> accumulator ``out + i`` of every bank (initial values)."""

    name = "pim.wr_bias"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.WR_BIAS
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    out = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class RdMacOp(_InstOp):
    """AiM RD_MAC: accumulator ``out + i`` of every bank -> GPR[gpr + i], not cleared."""

    name = "pim.rd_mac"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.RD_MAC
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    out = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class KvAppendOp(_InstOp):
    """WR_BANK: GPR[gpr + i] -> bank ``bank``, row ``row``, column ``col + i`` (KV append)."""

    name = "pim.kv_append"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.WR_BANK
    ch_mask = prop_def(IntegerAttr)
    op_size = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    bank = prop_def(IntegerAttr)
    row = prop_def(IntegerAttr)
    col = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class AppendOp(_InstOp):
    """APPEND: grow request ``req`` by one token and write its K and V from GPR ``gpr..``."""

    name = "pim.append"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.APPEND
    req = prop_def(IntegerAttr)
    gpr = prop_def(IntegerAttr)
    assembly_format = "attr-dict"


@irdl_op_definition
class DynModiOp(_InstOp):
    """Advance operand ``field`` of the loop body's instructions by ``stride`` per iteration."""

    name = "pim.dyn_modi"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.DYN_MODI
    field = prop_def(StringAttr)
    stride = prop_def(IntegerAttr)
    assembly_format = "attr-dict"

    def verify_(self) -> None:
        super().verify_()
        if not isinstance(self.parent_op(), DynLoopOp):
            raise fail(self, "must be inside a pim.dyn_loop")


@irdl_op_definition
class DynLoopOp(_InstOp):
    """Repeat the body once per KV block of request ``req``'s current length (or of its block
    window ``first`` .. ``first + count - 1``, a softmax segment)."""

    name = "pim.dyn_loop"
    irdl_options = (ParsePropInAttrDict(),)
    OP: ClassVar[InstOp] = InstOp.DYN_LOOP
    req = prop_def(IntegerAttr)
    first = opt_prop_def(IntegerAttr)
    count = opt_prop_def(IntegerAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator())
    assembly_format = "attr-dict-with-keyword $body"

    def body_len(self) -> int:
        return sum(1 for _ in self.body.ops)

    def verify_(self) -> None:
        if not isinstance(self.parent_op(), KernelOp):
            raise fail(self, "must be directly inside a pim.kernel (loops do not nest)")
        for op in self.body.ops:
            if not isinstance(op, _LOOP_BODY_OPS):
                raise fail(op, "not allowed in a pim.dyn_loop body")
        super().verify_()


_LOOP_BODY_OPS = (WrInpOp, MacOp, RdOutOp, WrBiasOp, RdMacOp, KvAppendOp, DynModiOp)
GRAPH_OPS: list[type[IRDLOperation]] = [GemvOp, QkOp, SoftmaxOp, SvOp, KvWriteOp]
PROGRAM_OPS: list[type[IRDLOperation]] = [
    ProgramOp,
    KernelOp,
    HostOp,
    WrInpOp,
    MacOp,
    RdOutOp,
    WrBiasOp,
    RdMacOp,
    KvAppendOp,
    AppendOp,
    DynLoopOp,
    DynModiOp,
]
PIM = Dialect("pim", [*GRAPH_OPS, *PROGRAM_OPS], [])


def inst_op(inst: Instruction) -> Operation:
    """The ``pim`` op of a non-loop HUB instruction."""
    cls: dict[InstOp, type[_InstOp]] = {
        InstOp.WR_INP: WrInpOp,
        InstOp.MAC: MacOp,
        InstOp.RD_OUT: RdOutOp,
        InstOp.WR_BIAS: WrBiasOp,
        InstOp.RD_MAC: RdMacOp,
        InstOp.WR_BANK: KvAppendOp,
        InstOp.APPEND: AppendOp,
        InstOp.DYN_MODI: DynModiOp,
    }
    from pymodel.isa import INST_FIELDS

    props: dict[str, Attribute] = {}
    for name in INST_FIELDS[inst.op]:
        value = getattr(inst, name)
        props[name] = StringAttr(ModiField(value).name) if name == "field" else i64(value)
    return cls[inst.op].create(properties=props)


def dyn_loop(req: int, body: list[Operation], first: int = 0, count: int = 0) -> DynLoopOp:
    props: dict[str, Attribute] = {"req": i64(req)}
    if first or count:
        props |= {"first": i64(first), "count": i64(count)}
    return DynLoopOp.create(properties=props, regions=[Region([_block(body)])])


def _block(ops: list[Operation]):  # type: ignore[no-untyped-def]
    from xdsl.ir import Block

    return Block(ops)
