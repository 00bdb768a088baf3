"""``pimphony decode``: decode steps of attention through the DPA pipeline, checked numerically.

A GQA layer slice of ``--model`` (``--kv-heads`` KV heads with the model's query group, d_head
128) runs ``--steps`` decode steps over requests of the ``--requests`` lengths on one module of
``--config``: pure pymodel (:class:`pymodel.golden.decode.DecodeModule`, ``--backend reference``) or
the RTL module ``rtl/top/pim_top.sv`` in a Verilator co-simulation (``--backend rtl``, the
``tb/top`` bench: needs a repository checkout and ``make setup``), which is also run on the
reference and compared bit for bit. Every output is compared with float64 numpy attention of the
same bf16 inputs against the stated bound (:func:`pymodel.golden.decode.attention_error_bound`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pymodel.config import PimConfig, add_config_argument, resolve
from pymodel.errors import LimitError, PimphonyError
from pymodel.golden.bf16 import from_bf16
from pymodel.golden.decode import (
    AttnShape,
    DecodeEngine,
    DecodeModule,
    StepStats,
    reference_attention,
)
from pymodel.golden.dpa import DpaError, DpaLayout
from pymodel.golden.sched import Mode
from pymodel.isa import write_trace
from pymodel.system.models import resolve_model
from pymodel.ui.args import positive, seed
from pymodel.ui.progress import Progress

#: Commands the pure-pymodel channels execute per second on this kind of machine (measured:
#: about 2,500 per second and channel); runs estimated beyond --max-minutes are refused.
COMMANDS_PER_S = 2500.0
DEFAULT_MAX_MINUTES = 30.0


class DecodeInputError(PimphonyError):
    """A decode request the module cannot run (names the request and the limit)."""


def lengths(text: str) -> list[int]:
    """argparse ``type``: ``LEN[,LEN...]``, each a positive integer."""
    try:
        out = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LEN[,LEN...] integers") from None
    bad = [n for n in out if n < 1]
    if bad:
        raise argparse.ArgumentTypeError(f"request length {bad[0]} must be at least 1")
    return out


def slice_shape(model: str, kv_heads: int) -> AttnShape:
    spec = resolve_model(model)
    if not 1 <= kv_heads <= spec.kv_heads:
        raise DecodeInputError(f"--kv-heads = {kv_heads}: {spec.name} has {spec.kv_heads}")
    if spec.d_head != 128:
        raise DecodeInputError(f"{spec.name}: d_head = {spec.d_head}; the DPA KV layout has 128")
    return AttnShape(q_heads=kv_heads * spec.group, kv_heads=kv_heads)


def check_fit(cfg: PimConfig, shape: AttnShape, reqs: list[int], steps: int) -> None:
    """Typed errors before any work: a request the page table cannot map, or too many ids."""
    lay = DpaLayout.of(cfg)
    for r, n in enumerate(reqs):
        if n + steps > lay.max_tokens:
            raise DecodeInputError(
                f"request {r}: {n} + {steps} steps = {n + steps} tokens > {lay.max_tokens}, what "
                f"the VA2PA table maps (dpa.max_chunks_per_request x chunk tokens)"
            )
    ids = len(reqs) * shape.kv_heads
    if ids > lay.max_requests:
        raise DecodeInputError(
            f"{len(reqs)} requests x {shape.kv_heads} KV heads = {ids} DPA "
            f"ids > dpa.max_requests = {lay.max_requests}"
        )


def estimate_s(cfg: PimConfig, shape: AttnShape, reqs: list[int], steps: int) -> float:
    """Seconds the reference needs: about 5 commands per token and query head (QK^T + SV
    activations and MACs) spread over the channels, plus the appends."""
    cmds = sum(5 * (n + steps) * shape.q_heads for n in reqs) * steps
    return cmds / (COMMANDS_PER_S * min(cfg.module.channels, 8))


def run_reference(
    cfg: PimConfig,
    shape: AttnShape,
    reqs: list[int],
    steps: int,
    seed_: int,
    mode: Mode,
    gqa_reuse: bool,
    overlap: bool = True,
    trace_dir: Path | None = None,
) -> dict[str, Any]:
    m = DecodeModule(cfg, shape, mode, seed_, gqa_reuse=gqa_reuse, overlap=overlap)
    for r, n in enumerate(reqs):
        m.admit(r, n)
    stats: list[StepStats] = []
    worst = 0.0
    outputs: list[Any] = []
    with Progress(steps, "decode steps", "steps") as prog:
        for _ in range(steps):
            out, st = m.step()
            stats.append(st)
            worst = max(worst, worst_error(m, out))
            outputs.append({r: o.tolist() for r, o in out.items()})
            prog.update()
    if trace_dir is not None:  # after the run: a failed step leaves no partial traces
        for c, trace in enumerate(m.ref.traces):
            write_trace(trace_dir / f"trace_ch{c}.txt", trace)
    return {
        **step_totals(stats),
        "max_error_over_bound": worst,
        "outputs": outputs,
        "gqa_queries_per_loop": m.reuse,
        "segment_blocks": m.segment,
        "overlap": overlap,
        "channel_busy_cycles": m.ref.busy,
    }


def step_totals(stats: list[StepStats]) -> dict[str, int]:
    """Instructions, commands and cycles summed over the steps; the most segments of any."""
    return {
        "instructions": sum(st.instructions for st in stats),
        "commands": sum(st.commands for st in stats),
        "cycles": sum(st.cycles for st in stats),
        "segments": max((st.segments for st in stats), default=0),
    }


def worst_error(m: DecodeEngine, out: dict[int, Any]) -> float:
    """Worst |output - float64 numpy| / bound over every request, head and dim."""
    worst = 0.0
    for req, o in out.items():
        state = m.requests[req]
        for head in range(m.shape.q_heads):
            h = head // m.shape.group
            q = m.last_queries[req][head]
            ref = reference_attention(q, state.k[h], state.v[h])
            bound = m.error_bound(q, state.k[h], state.v[h])
            err = np.abs(from_bf16(o[head]).astype(np.float64) - ref)
            worst = max(worst, float((err / bound).max()))
    return worst


def run_rtl(args: argparse.Namespace, reqs: list[int]) -> dict[str, Any]:
    """The tb/top co-simulation (``run_cli_decode``) with these parameters; its JSON result."""
    root = Path(__file__).resolve().parents[2]  # the checkout (pymodel/studies/ -> root)
    bench = root / "tb" / "top" / "test_top.py"
    if not bench.is_file():
        raise DecodeInputError(f"--backend rtl needs the repository's tb/ ({bench} is missing)")
    spec = args.config
    config = str(Path(spec).resolve()) if spec and Path(spec).is_file() else spec
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "decode.json"
        env = {
            **os.environ,
            "PIMPHONY_DECODE": json.dumps(
                {
                    "model": args.model,
                    "kv_heads": args.kv_heads,
                    "requests": reqs,
                    "steps": args.steps,
                    "seed": args.seed,
                    "mode": args.mode,
                    "gqa_reuse": args.gqa_reuse,
                    "overlap": not args.sequential,
                    "result": str(result),
                    "config": config,
                }
            ),
        }
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "sim",
            f"{bench}::test_top_cli_decode",
        ]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not result.is_file():
            log = root / "build" / "decode-rtl.log"  # the whole run, for the diagnosis
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(proc.stdout + proc.stderr)
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-2:]
            raise DecodeInputError(
                f"the RTL co-simulation failed (log: {log}): " + " | ".join(tail)
            )
        data: dict[str, Any] = json.loads(result.read_text())
        return data


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode steps of attention through the DPA pipeline; JSON figures on stdout."""
    cfg = resolve(args.config)
    shape = slice_shape(args.model, args.kv_heads)
    reqs = args.requests
    check_fit(cfg, shape, reqs, args.steps)
    est = estimate_s(cfg, shape, reqs, args.steps)
    if est > 60 * args.max_minutes:
        raise LimitError(
            f"decode of {reqs} for {args.steps} step(s) is estimated at "
            f"{est / 60:.0f} min > --max-minutes {args.max_minutes:g}"
        )
    if args.backend == "rtl" and args.trace_dir:
        raise DecodeInputError(
            "--trace-dir is an option of --backend reference (the RTL bench writes its own "
            "traces to its test directory)"
        )
    trace_dir = Path(args.trace_dir) if args.trace_dir else None
    if trace_dir is not None and not trace_dir.is_dir():
        raise DecodeInputError(f"--trace-dir {trace_dir}: not a directory")
    t0 = time.perf_counter()
    mode = Mode(args.mode)
    try:
        if args.backend == "rtl":
            res = run_rtl(args, reqs)
        else:
            res = run_reference(
                cfg,
                shape,
                reqs,
                args.steps,
                args.seed,
                mode,
                args.gqa_reuse,
                not args.sequential,
                trace_dir,
            )
    except DpaError as exc:  # a typed DPA error (e.g. the module ran out of chunks)
        raise DecodeInputError(str(exc)) from None
    res.pop("outputs", None)
    out = {
        "model": resolve_model(args.model).name,
        "config": cfg.name,
        "channels": cfg.module.channels,
        "backend": args.backend,
        "mode": args.mode,
        "q_heads": shape.q_heads,
        "kv_heads": shape.kv_heads,
        "requests": reqs,
        "steps": args.steps,
        **res,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


def add_decode_parser(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode steps of attention through the DPA pipeline "
        "(pure pymodel or RTL), checked against float64 numpy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="MODEL", help="a Table-I model name")
    add_config_argument(p)
    p.add_argument(
        "--requests",
        type=lengths,
        required=True,
        metavar="LEN[,LEN...]",
        help="current length of each request (tokens)",
    )
    p.add_argument("--steps", type=positive, default=1, help="decode steps (default 1)")
    p.add_argument(
        "--kv-heads",
        type=positive,
        default=1,
        help="KV heads of the layer slice (default 1, with the model's group)",
    )
    p.add_argument("--backend", choices=("reference", "rtl"), default="reference")
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.DCS.value,
        help="channel scheduler mode (default dcs)",
    )
    p.add_argument(
        "--gqa-reuse",
        action="store_true",
        help="grouped QK^T (K row opened once per KV group; needs dpa.max_body_len)",
    )
    p.add_argument(
        "--sequential",
        action="store_true",
        help="one program per QK^T / SV loop (default: the loops of several KV heads "
        "in one program where the GPR allows, so their channels overlap)",
    )
    p.add_argument(
        "--trace-dir",
        metavar="DIR",
        help="write each channel's command bus to DIR/trace_ch<c>.txt (reference; "
        "`pimphony timeline` renders one)",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument(
        "--max-minutes",
        type=float,
        default=DEFAULT_MAX_MINUTES,
        help=f"refuse runs estimated longer (default {DEFAULT_MAX_MINUTES:g})",
    )
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(func=cmd_decode)
