"""Front end: a decoder layer as StableHLO (generic MLIR op form) -> xDSL module with locations.

Supported input (what ``jax.jit(layer).lower(...).compiler_ir("stablehlo")`` prints with
``print_generic_op_form=True``, see ``examples/gen_layers.py``): one public ``func.func`` (plus
private helper functions it calls) built from the ops in :data:`SUPPORTED`. xDSL 0.74 has no
StableHLO dialect, so the ops are parsed as unregistered operations and checked here against the
subset; the pretty (custom) StableHLO syntax is not accepted (print it generically first, e.g.
``stablehlo-opt --mlir-print-op-generic``). Every op gets its ``file:line:col`` location, which all
later diagnostics quote.
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import (
    Builtin,
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    StringAttr,
    UnregisteredOp,
)
from xdsl.dialects.func import Func
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from pymodel.compiler.dialect import PIM, where
from pymodel.errors import PimphonyError


class CompileError(PimphonyError, ValueError):
    """Bad compiler input: the message names the op and its ``file:line:col``."""


#: StableHLO ops the front end accepts. dot_general is matched to PIM kernels (pim-match); the
#: others are host/EPU work (norms, RoPE-like elementwise math, softmax, masking, SiLU).
SUPPORTED = frozenset(
    {
        "stablehlo.dot_general",
        "stablehlo.dynamic_update_slice",
        "stablehlo.add",
        "stablehlo.subtract",
        "stablehlo.multiply",
        "stablehlo.divide",
        "stablehlo.maximum",
        "stablehlo.minimum",
        "stablehlo.negate",
        "stablehlo.exponential",
        "stablehlo.logistic",
        "stablehlo.rsqrt",
        "stablehlo.sqrt",
        "stablehlo.tanh",
        "stablehlo.convert",
        "stablehlo.reshape",
        "stablehlo.transpose",
        "stablehlo.broadcast_in_dim",
        "stablehlo.constant",
        "stablehlo.iota",
        "stablehlo.compare",
        "stablehlo.select",
        "stablehlo.reduce",
        "stablehlo.return",
        "stablehlo.concatenate",
        "stablehlo.slice",
        "func.func",
        "func.return",
        "func.call",
        "builtin.module",
    }
)


def op_name(op: Operation) -> str:
    """The source op name (unregistered ops keep theirs in ``op_name__``)."""
    if isinstance(op, UnregisteredOp):
        return op.op_name.data
    return op.name


class _LocatingParser(Parser):
    """Parser that stamps every operation with its ``file:line:col``."""

    def __init__(self, ctx: Context, text: str, filename: str) -> None:
        super().__init__(ctx, text, filename)
        self._filename = filename

    def parse_operation(self) -> Operation:
        span = self._current_token.span
        op = super().parse_operation()
        loc = span.get_location()
        line, col = int(loc.line), int(loc.col)
        op.location = FileLineColLoc(StringAttr(self._filename), IntAttr(line), IntAttr(col))
        return op


def context() -> Context:
    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Func)
    ctx.load_dialect(PIM)
    return ctx


def parse_layer(text: str, filename: str = "<input>") -> ModuleOp:
    """Parse and check the supported subset; raises :class:`CompileError`."""
    try:
        module = _LocatingParser(context(), text, filename).parse_module()
    except ParseError as exc:
        raise CompileError(f"{filename}: cannot parse: {exc}") from None
    for op in module.walk():
        name = op_name(op)
        if name not in SUPPORTED and not name.startswith("pim."):
            raise CompileError(
                f"{where(op)}: unsupported op '{name}' (supported: dot_general as GEMV/QK^T/SV, "
                f"dynamic_update_slice as KV append, elementwise/reduce host ops; see "
                f"docs/compiler.md)"
            )
    return module
