"""``pimphony compile LAYER.mlir``: decoder layer -> PIM instruction program + execution table.

The compiler needs xDSL (``pip install 'pimphony[compiler]'``); it is imported when the command
runs, so every other command works without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymodel.errors import LimitError, PimphonyError, read_text
from pymodel.system.models import EXAMPLES, TABLE_I, ModelError, model_named
from pymodel.ui.args import positive
from pymodel.ui.outputs import check_output_dir, write_bytes, write_or_print, write_text
from pymodel.ui.progress import activity, fmt_seconds

PROBE_BATCH = 8  # from this batch on, a one-request compile first gives the time estimate
DEFAULT_MAX_MINUTES = 30.0


class CompilerMissing(PimphonyError):
    """xDSL is not installed."""


def _estimate_s(run: Callable[[int], Any], batch: int) -> float | None:
    """Compile time of ``batch`` requests from a one-request compile (time grows linearly with
    the batch: every request gets its own kernels); None for small batches (not worth it)."""
    if batch < PROBE_BATCH:
        return None
    t0 = time.perf_counter()
    run(1)
    return (time.perf_counter() - t0) * batch


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile a decoder layer (StableHLO, generic op form) to PIM HUB instruction programs."""
    try:
        from pymodel.compiler.passes import encode_program
        from pymodel.compiler.pipeline import compile_layer
    except ModuleNotFoundError as exc:
        raise CompilerMissing(
            f"compile needs {exc.name} (the compiler's dependency): "
            "pip install 'pimphony[compiler]' (or make setup)"
        ) from None
    from pymodel.isa import format_program

    text = read_text(args.layer, "layer")
    if args.emit != "pim" and not args.output:
        raise PimphonyError("compile: -o OUT is required unless --emit pim")
    out = None if args.emit == "pim" else check_output_dir(args.output, "-o")

    def run(batch: int) -> Any:
        return compile_layer(
            text,
            args.layer,
            model=args.model,
            modules=args.modules,
            pp=args.pp,
            partition=args.partition,
            memory=args.memory,
            config=args.config or "aim-gddr6",
            context_tokens=args.context or 0,
            layer=args.layer_index,
            batch=batch,
        )

    est = _estimate_s(run, args.batch)
    if est is not None and est > 60 * args.max_minutes:
        raise LimitError(
            f"compile --batch {args.batch}: about {fmt_seconds(est)} (one request compiles in "
            f"{est / args.batch:.2f} s; limit --max-minutes {args.max_minutes:g})"
        )
    started = time.perf_counter()
    with activity(f"compile {Path(args.layer).name} (batch {args.batch})", est):
        c = run(args.batch)
    seconds = time.perf_counter() - started
    if out is None:
        sys.stdout.write(c.ir())
        return 0
    blobs = {m: encode_program(prog, c.cfg) for m, prog in sorted(c.programs.items())}
    sizes: dict[str, Any] = {
        str(m): {"instructions": len(c.programs[m]), "bytes": len(b)} for m, b in blobs.items()
    }
    c.table["program"]["files"] = sizes
    c.table["program"]["compile_seconds"] = round(seconds, 3)
    # The table first: if the directory became unwritable, it goes to stdout (nothing is lost).
    write_or_print(out / "table.json", json.dumps(c.table, indent=1) + "\n")
    for m, blob in blobs.items():
        write_bytes(out / f"module{m}.bin", blob)
        write_text(out / f"module{m}.pim", format_program(c.programs[m]))
    total = sum(s["instructions"] for s in sizes.values())
    print(
        f"{args.layer}: {len(c.table['kernels'])} kernels, {total} instructions on "
        f"{len(sizes)} module(s) ({args.partition}, {args.memory}) in {seconds:.2f} s -> {out}"
    )
    return 0


def model_name(text: str) -> str:
    """argparse ``type``: the lower-case name of a Table-I or example model (any case)."""
    try:
        return model_named(text, examples=True).name.lower()
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compile",
        help="compile a decoder layer (MLIR) to PIM programs",
        description=cmd_compile.__doc__,
    )
    p.add_argument("layer", metavar="LAYER.mlir")
    p.add_argument(
        "--model",
        default="tiny",
        type=model_name,
        metavar="MODEL",
        help=f"any case of: {', '.join([*EXAMPLES, *TABLE_I])} (default tiny)",
    )
    p.add_argument("--modules", type=positive, default=1, help="PIM modules (tp x pp)")
    p.add_argument("--pp", type=positive, default=1, help="pipeline stages (default 1: all TP)")
    p.add_argument("--layer-index", type=int, default=0, help="which layer this is (for PP)")
    p.add_argument("--partition", choices=("hfp", "tcp"), default="tcp")
    p.add_argument("--memory", choices=("static", "dpa"), default="static")
    p.add_argument(
        "--batch",
        type=positive,
        default=1,
        help="requests decoded together (each its own KV; lengths are runtime)",
    )
    p.add_argument("--context", type=int, default=None, help="T_max (default: cache length)")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=DEFAULT_MAX_MINUTES,
        help="refuse a compile estimated longer than this (default "
        f"{DEFAULT_MAX_MINUTES:g}; batches of {PROBE_BATCH}+ are estimated first)",
    )
    p.add_argument("--config", metavar="PRESET|FILE", default=None)
    p.add_argument("--emit", choices=("pim", "program"), default="program")
    p.add_argument("-o", "--output", metavar="OUT", help="output directory")
    p.set_defaults(func=cmd_compile)
