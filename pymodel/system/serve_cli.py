"""``pimphony serve`` (and ``simulate --trace``): the serving simulation with its outputs —
a summary on the terminal or as one JSON object, ``summary.json``, ``requests.csv`` (one row
per request of the trace) and ``serve.png`` (batch and KV memory over time) in ``--out``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from pymodel.config import resolve
from pymodel.system import traces
from pymodel.system.errors import SystemSimError
from pymodel.system.models import resolve_model
from pymodel.system.run_config import add_model_options, pim_system, resolved
from pymodel.system.serving import PREFILL_LINK_BYTES_PER_S, ServeOptions, ServeResult, ServingSim
from pymodel.system.simulate import MAX_BATCH, StepModel
from pymodel.system.systems import SYSTEMS
from pymodel.system.techniques import BASELINE_LABELS, BUNDLE_NAMES, bundle
from pymodel.ui.args import positive, seed
from pymodel.ui.outputs import check_output_dir, write_text, write_with
from pymodel.ui.progress import Progress

TECHNIQUE_CHOICES = [*BUNDLE_NAMES, *BASELINE_LABELS.values()]

DEFAULT_OUT = Path("build/serve")
CSV_FIELDS = (
    "index", "line", "arrival_s", "context_tokens", "output_tokens", "status", "reason",
    "queue_ms", "ttft_ms", "tpot_ms", "finish_s", "tokens", "preemptions",
)  # fmt: skip


def _trace(args: argparse.Namespace) -> traces.Trace:
    if args.trace:
        tr = traces.read_trace(args.trace, args.trace_format)
        mode = args.arrivals or "trace"
    else:
        n = getattr(args, "requests", None) or 1000
        tr = traces.synthetic(args.dataset, n, args.seed, args.output_tokens)
        mode = args.arrivals or ("poisson" if args.rate else "zero")
    if args.rate is not None and mode != "poisson":
        raise SystemSimError(f"--rate applies to --arrivals poisson (arrivals here: {mode})")
    return tr.with_arrivals(mode, args.rate, args.seed)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a request trace on one decode instance (continuous batching, KV admission by
    the technique's memory policy, preemption with recompute): throughput, TPOT, queueing,
    batch and KV memory over time, per-request CSV and a PNG."""
    if getattr(args, "batch", None) is not None:
        raise SystemSimError(
            "--batch does not apply to a trace: serving batches continuously (use --max-batch)"
        )
    if args.system == "gpu":
        raise SystemSimError("serving is simulated on PIM systems only (pim-only, xpu-pim)")
    from pymodel.system.cli import _cache, _close  # the CLI's kernel cache (it imports us)

    cfg = resolve(args.config)
    out = check_output_dir(args.out, "--out")
    model = resolve_model(args.model)
    trace = _trace(args)
    for note in trace.notes:
        if "sorted" in note:
            print(f"pimphony: note: {args.trace}: {note}", file=sys.stderr)
    opts = ServeOptions(
        max_batch=MAX_BATCH if args.max_batch is None else args.max_batch,
        prefill=args.prefill,
        link_bytes_per_s=args.link_gbps * 1e9,
        allow_beyond_window=args.allow_beyond_window,
    )
    cache = _cache(args, cfg, "serve")
    started = time.perf_counter()
    try:
        system = pim_system(args.system, args.modules, cfg)
        tech = bundle(args.techniques, args.system)
        sim = ServingSim(StepModel(model, system, tech, cache), opts)
        with Progress(len(trace.requests), "serve", "requests") as bar:
            res = sim.run(trace, lambda n: bar.update(n - bar.done))
    finally:
        _close(cache)
    wall = time.perf_counter() - started
    paths = write_outputs(res, out)
    res.summary |= {
        "wall_s": wall,
        "outputs": {k: str(v) for k, v in paths.items()},
        "notes": trace.notes,
        "resolved": resolved(cfg, model, serve=vars(opts)),
    }
    write_text(paths["json"], json.dumps(res.summary, indent=1))
    if args.json:
        print(json.dumps(res.summary))
    else:
        _print(res.summary, trace)
    cache.save()  # after the results: a cache that cannot be written loses nothing
    return 0


def _print(s: dict[str, Any], trace: traces.Trace) -> None:
    gib = 2**30
    why = ", ".join(f"{k} {v}" for k, v in s["rejected_by_reason"].items())
    print(
        f"{s['model']} on {s['modules']} {s['system']} modules (TP {s['tp']} x PP {s['pp']}), "
        f"techniques {s['technique']}; trace {s['trace']} ({s['trace_format']}, "
        f"{s['requests']} requests)"
    )
    print(f"  completed {s['completed']}, rejected {s['rejected']}" + (f" ({why})" if why else ""))
    print(
        f"  throughput   {s['throughput_tokens_per_s']:,.1f} tokens/s over "
        f"{s['makespan_s']:,.1f} s simulated"
    )
    print(
        f"  TPOT         p50 {s['tpot_ms_p50']:.2f}  p90 {s['tpot_ms_p90']:.2f}  "
        f"p99 {s['tpot_ms_p99']:.2f} ms"
    )
    print(
        f"  queueing     p50 {s['queue_ms_p50']:,.0f}  p99 {s['queue_ms_p99']:,.0f} ms; "
        f"TTFT p50 {s['ttft_ms_p50']:,.0f}  p99 {s['ttft_ms_p99']:,.0f} ms"
    )
    print(
        f"  batch        mean {s['mean_batch']:.1f}, peak {s['peak_batch']}; KV peak "
        f"{s['peak_kv_bytes'] / gib:.1f} of {s['kv_capacity_bytes'] / gib:.1f} GiB; "
        f"preemptions {s['preemptions']}"
    )
    for note in trace.notes:
        print(f"  note         {note}")
    print(f"  outputs      {', '.join(s['outputs'].values())}")
    print(
        f"  simulated in {s['wall_s']:.1f} s ({s['steps']:,} steps in {s['segments']:,} segments)"
    )


def _ms(x: float) -> str:
    return "" if math.isnan(x) else f"{1e3 * x:.3f}"


def write_outputs(res: ServeResult, out: Path) -> dict[str, Path]:
    """requests.csv (every request of the trace, in file order) and serve.png."""
    paths = {"csv": out / "requests.csv", "png": out / "serve.png", "json": out / "summary.json"}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for o in res.outcomes:
        r = o.req
        w.writerow([
            r.index, r.line, f"{r.arrival_s:.6f}", r.context, r.output, o.status, o.reason,
            _ms(o.queue_s), _ms(o.first_token_s - r.arrival_s), _ms(o.tpot_s),
            "" if math.isnan(o.last_token_s) else f"{o.last_token_s:.6f}", o.tokens,
            o.preemptions,
        ])  # fmt: skip
    write_text(paths["csv"], buf.getvalue())
    write_with(paths["png"], lambda tmp: _png(res, tmp))
    return paths


def _png(res: ServeResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl, s = res.timeline, res.summary
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    if tl["t_s"]:
        ax1.step(tl["t_s"], tl["batch"], where="post", color="tab:blue", lw=0.8)
        kv = [b / 2**30 for b in tl["kv_bytes"]]
        ax2.step(tl["t_s"], kv, where="post", color="tab:green", lw=0.8)
    ax2.axhline(s.get("kv_capacity_bytes", 0) / 2**30, color="tab:red", ls="--", lw=0.8,
                label="KV capacity")  # fmt: skip
    ax1.set_ylabel("running requests")
    ax2.set_ylabel("KV held (GiB)")
    ax2.set_xlabel("simulated time (s)")
    ax2.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"{s.get('model')} on {s.get('modules')} {s.get('system')} modules, {s.get('technique')}: "
        f"{s.get('completed')} of {s.get('requests')} requests, "
        f"{s.get('throughput_tokens_per_s', 0):,.0f} tokens/s",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """Options of the serving simulation (shared by ``serve`` and ``simulate --trace``)."""
    p.add_argument("--trace-format", default="auto", choices=traces.FORMATS)
    p.add_argument(
        "--arrivals",
        choices=("trace", "zero", "poisson"),
        help="arrival times: the trace's (default for files), all at 0, or Poisson at --rate",
    )
    p.add_argument("--rate", type=float, help="Poisson arrival rate (requests/s)")
    p.add_argument(
        "--max-batch",
        type=positive,
        default=None,
        help=f"most requests decoding at once (serving: default {MAX_BATCH}; simulate's batch "
        "search: default no cap)",
    )
    p.add_argument(
        "--prefill",
        default="link",
        choices=("link", "npu"),
        help="prompt KV over the link from a prefill instance, or prefill on the xPU+PIM NPU",
    )
    p.add_argument(
        "--link-gbps",
        type=float,
        default=PREFILL_LINK_BYTES_PER_S / 1e9,
        help=f"prefill -> decode link, GB/s (default {PREFILL_LINK_BYTES_PER_S / 1e9:g})",
    )
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output directory ({DEFAULT_OUT})")


def add_serve_parser(sub: Any) -> None:
    s = sub.add_parser(
        "serve",
        help="trace-driven serving simulation (continuous batching, KV admission, preemption)",
        description=cmd_serve.__doc__,
    )
    s.add_argument("--model", required=True, help="Table-I name or a local HF config.json")
    s.add_argument("--system", required=True, choices=[x for x in SYSTEMS if x != "gpu"])
    s.add_argument("--modules", type=positive, required=True, help="PIM modules")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="request trace: project CSV, Azure CSV or Mooncake JSONL")
    src.add_argument("--dataset", help="synthetic trace with this dataset's prompt lengths")
    s.add_argument("--requests", type=positive, default=1000, help="synthetic trace size (1000)")
    s.add_argument(
        "--output-tokens", type=positive, default=256, help="synthetic output tokens (256)"
    )
    s.add_argument("--seed", type=seed, default=0, help="synthetic lengths and Poisson arrivals")
    s.add_argument("--techniques", default="pimphony", choices=TECHNIQUE_CHOICES)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    add_serve_options(s)
    add_model_options(s)
    from pymodel.system.cli import _common  # (the CLI imports this module)

    _common(s)
    s.set_defaults(func=cmd_serve)
