"""``pimphony compile LAYER.mlir``: decoder layer -> PIM instruction program + execution table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pymodel.compiler.frontend import CompileError
from pymodel.compiler.passes import encode_program
from pymodel.compiler.pipeline import MODELS, compile_layer
from pymodel.isa import format_program


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile a decoder layer (StableHLO, generic op form) to PIM HUB instruction programs."""
    try:
        return _compile(args)
    except (CompileError, ValueError) as exc:
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 2


def _compile(args: argparse.Namespace) -> int:
    try:
        text = Path(args.layer).read_text()
    except OSError as exc:
        raise CompileError(f"cannot read {args.layer}: {exc.strerror}") from None
    started = time.perf_counter()
    c = compile_layer(
        text, args.layer, model=args.model, modules=args.modules, pp=args.pp,
        partition=args.partition, memory=args.memory, config=args.config or "aim-gddr6",
        context_tokens=args.context or 0, layer=args.layer_index, batch=args.batch,
    )
    seconds = time.perf_counter() - started
    if args.emit == "pim":
        sys.stdout.write(c.ir())
        return 0
    if not args.output:
        raise CompileError("-o OUT is required unless --emit pim")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, Any] = {}
    for m, prog in sorted(c.programs.items()):
        blob = encode_program(prog, c.cfg)
        (out / f"module{m}.bin").write_bytes(blob)
        (out / f"module{m}.pim").write_text(format_program(prog))
        sizes[str(m)] = {"instructions": len(prog), "bytes": len(blob)}
    c.table["program"]["files"] = sizes
    c.table["program"]["compile_seconds"] = round(seconds, 3)
    (out / "table.json").write_text(json.dumps(c.table, indent=1) + "\n")
    total = sum(s["instructions"] for s in sizes.values())
    print(f"{args.layer}: {len(c.table['kernels'])} kernels, {total} instructions on "
          f"{len(sizes)} module(s) ({args.partition}, {args.memory}) in {seconds:.2f} s -> {out}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compile", help="compile a decoder layer (MLIR) to PIM programs",
                       description=cmd_compile.__doc__)
    p.add_argument("layer", metavar="LAYER.mlir")
    p.add_argument("--model", default="tiny", choices=sorted(MODELS))
    p.add_argument("--modules", type=int, default=1, help="PIM modules (tp x pp)")
    p.add_argument("--pp", type=int, default=1, help="pipeline stages (default 1: all TP)")
    p.add_argument("--layer-index", type=int, default=0, help="which layer this is (for PP)")
    p.add_argument("--partition", choices=("hfp", "tcp"), default="tcp")
    p.add_argument("--memory", choices=("static", "dpa"), default="static")
    p.add_argument("--batch", type=int, default=1,
                   help="requests decoded together (each its own KV; lengths are runtime)")
    p.add_argument("--context", type=int, default=None, help="T_max (default: cache length)")
    p.add_argument("--config", metavar="PRESET|FILE", default=None)
    p.add_argument("--emit", choices=("pim", "program"), default="program")
    p.add_argument("-o", "--output", metavar="OUT", help="output directory")
    p.set_defaults(func=cmd_compile)
