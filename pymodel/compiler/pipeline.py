"""Pipeline driver: parse -> pim-match -> pim-partition -> pim-lower -> pim-emit."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from pymodel.compiler.frontend import CompileError, context, parse_layer
from pymodel.compiler.passes import EmitPass, LowerPass, MatchPass, PartitionPass
from pymodel.config import PimConfig, resolve
from pymodel.isa import Instruction
from pymodel.system.models import ModelError, model_named


@dataclass
class Compiled:
    module: ModuleOp
    cfg: PimConfig
    programs: dict[int, list[Instruction]]
    table: dict[str, Any] = field(default_factory=dict)

    def ir(self) -> str:
        s = io.StringIO()
        Printer(stream=s).print_op(self.module)
        return s.getvalue() + "\n"


def compile_layer(
    text: str,
    filename: str = "<input>",
    *,
    model: str = "tiny",
    modules: int = 1,
    pp: int = 1,
    partition: str = "tcp",
    memory: str = "static",
    config: str = "aim-gddr6",
    context_tokens: int = 0,
    layer: int = 0,
    batch: int = 1,
) -> Compiled:
    try:
        layers = model_named(model, examples=True).layers
    except ModelError as exc:
        raise CompileError(str(exc)) from None
    if modules < 1 or pp < 1 or modules % pp:
        raise CompileError(f"--modules {modules} must be a positive multiple of --pp {pp}")
    if partition not in ("hfp", "tcp") or memory not in ("static", "dpa"):
        raise CompileError("--partition must be hfp|tcp and --memory static|dpa")
    cfg = resolve(config)
    module = parse_layer(text, filename)
    ctx = context()
    lower = LowerPass(
        config=config,
        model=model,
        layout=partition,
        memory=memory,
        context=context_tokens,
        tp=modules // pp,
        pp=pp,
        batch=batch,
    )
    emit = EmitPass(table=lower.table)
    try:
        MatchPass().apply(ctx, module)
        PartitionPass(tp=modules // pp, pp=pp, layer=layer, layers=layers).apply(ctx, module)
        lower.apply(ctx, module)
        emit.apply(ctx, module)
    except VerifyException as exc:
        raise CompileError(str(exc)) from None
    return Compiled(module, cfg, emit.programs, emit.table)
