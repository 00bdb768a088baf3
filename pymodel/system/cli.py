"""``pimphony simulate``, ``pimphony demo-system`` and ``pimphony repro`` (full-system simulator).

Bad models, traces, techniques and configurations that cannot run raise
:class:`~pymodel.system.errors.SystemSimError`; the main CLI prints it and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pymodel.config import PimConfig, add_config_argument, resolve
from pymodel.system import workloads
from pymodel.system.errors import SystemSimError
from pymodel.system.experiments import EXPERIMENTS, run_experiment, write_outputs
from pymodel.system.gpu import gpu_best
from pymodel.system.kernel_cost import KernelCache, default_cache_dir
from pymodel.system.models import ModelSpec, resolve_model
from pymodel.system.run_config import (
    DEFAULT_GPU,
    add_model_options,
    check_window,
    config_line,
    pim_system,
    resolved,
)
from pymodel.system.serve_cli import add_serve_options, add_serve_parser, cmd_serve
from pymodel.system.simulate import StepModel, StepResult
from pymodel.system.systems import GPU_SPECS, SYSTEMS, gpu_system, pim_only
from pymodel.system.techniques import BASELINE_LABELS, BUNDLE_NAMES, bundle
from pymodel.ui.args import positive, seed
from pymodel.ui.outputs import check_output_dir, check_output_file, write_text, write_with
from pymodel.ui.progress import Progress, progress

TECHNIQUE_CHOICES = [*BUNDLE_NAMES, *BASELINE_LABELS.values()]


class RunProgress:
    """Progress of the command-level kernel runs a cold cache makes (shown from the first run on;
    a warm cache shows nothing)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Progress | None = None

    def __call__(self) -> None:
        if self.bar is None:
            self.bar = Progress(None, self.label, "command-level kernel runs")
        self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cache_dir(spec: str | None) -> Path | None:
    """``--kernel-cache``: a directory (validated), ``none`` for no cache, default per user."""
    if spec in ("", "none"):
        return None
    return check_output_dir(default_cache_dir() if spec is None else spec, "--kernel-cache")


def _cache(args: argparse.Namespace, cfg: PimConfig, label: str) -> KernelCache:
    return KernelCache(cfg, cache_dir(args.kernel_cache), on_run=RunProgress(label))


def _close(cache: KernelCache) -> None:
    if isinstance(cache.on_run, RunProgress):
        cache.on_run.close()


def _workload(args: argparse.Namespace) -> workloads.Workload:
    if args.context is not None:
        return workloads.fixed(args.context, n=1, output_tokens=args.output_tokens)
    return workloads.dataset(args.dataset, seed=args.seed, output_tokens=args.output_tokens)


def simulate_one(
    model_spec: str | ModelSpec,
    system: str,
    modules: int,
    work: workloads.Workload,
    technique: str,
    cache: KernelCache,
    batch: int | None = None,
    gpu: str = DEFAULT_GPU,
    max_batch: int | None = None,
) -> StepResult:
    model = resolve_model(model_spec) if isinstance(model_spec, str) else model_spec
    if system == "gpu":
        return gpu_best(model, gpu_system(gpu, modules), work, batch)
    if batch is not None and batch < 1:
        raise SystemSimError(f"--batch = {batch} must be at least 1")
    if max_batch is not None and max_batch < 1:
        raise SystemSimError(f"--max-batch = {max_batch} must be at least 1")
    tech = bundle(technique, system)
    sm = StepModel(model, pim_system(system, modules, cache.cfg), tech, cache)
    return sm.best(work, batch, max_batch)


def _summary(r: StepResult) -> dict[str, Any]:
    d = r.as_dict()
    return d


def cmd_simulate(args: argparse.Namespace) -> int:
    """One decode step of a model on a system: throughput, utilization, breakdowns, energy.
    With --trace the trace's requests are served over time instead (as `pimphony serve`)."""
    if args.trace:
        return cmd_serve(args)
    cfg = resolve(args.config)
    cache = _cache(args, cfg, "simulate")
    work = _workload(args)
    model = resolve_model(args.model)
    check_window(model, work.max_tokens, args.allow_beyond_window, "the workload")
    started = time.perf_counter()
    try:
        res = simulate_one(
            model,
            args.system,
            args.modules,
            work,
            args.techniques,
            cache,
            args.batch,
            args.gpu,
            args.max_batch,
        )
    finally:
        _close(cache)
    wall = time.perf_counter() - started
    config = resolved(cfg, model, gpu=args.gpu if args.system == "gpu" else None)
    _print_simulate(res, args.json, wall, cache.exact_runs, config)
    cache.save()  # after the result is printed: a cache that cannot be written loses nothing
    return 0


def _print_simulate(
    res: StepResult, as_json: bool, wall: float, runs: int, config: dict[str, Any]
) -> None:
    if as_json:
        print(json.dumps(_summary(res) | {"wall_s": wall, "resolved": config}, indent=2))
        return
    print(
        f"{res.model} on {res.modules} {res.system} modules, {res.workload} "
        f"(mean context {res.mean_context:,.0f}), techniques {res.technique}"
        + (f" ({res.bundle})" if res.bundle and res.bundle != res.technique else "")
    )
    limit = f" (largest that fits: {res.max_batch}, bound by {res.batch_limit})"
    print(f"  batch {res.batch}{limit if res.batch_limit else ''}, TP {res.tp} x PP {res.pp}")
    print(
        f"  throughput   {res.throughput_tokens_per_s:,.1f} tokens/s, "
        f"per-token latency {1e3 * res.token_latency_s:.2f} ms"
    )
    print(
        f"  utilization  MAC {100 * res.mac_utilization:.1f}%, "
        f"capacity {100 * res.capacity_utilization:.1f}%"
    )
    parts = "  ".join(f"{k} {100 * v / res.step_s:.1f}%" for k, v in res.time_s.items())
    print(f"  time         {parts}")
    if res.channel_time:
        ct = "  ".join(f"{k} {100 * v:.1f}%" for k, v in res.channel_time.items())
        print(f"  PIM channels {ct}")
    if res.energy_j_per_token:
        print(f"  energy       {1e3 * res.energy_j_per_token:.2f} mJ/token (PIM)")
    print(f"  simulated in {wall:.2f} s ({runs} command-level kernel runs)")
    print(f"  config       {config_line(config)}")


DEMO_MODEL = "LLM-7B-128K-GQA"


def cmd_demo_system(args: argparse.Namespace) -> int:
    """LLM-7B-128K-GQA on multifieldqa lengths, PIM-only, 8 modules: baseline -> +TCP -> +DCS ->
    pimphony (+DPA); a table on the terminal and a PNG."""
    cfg = resolve(args.config)
    out = check_output_file(args.out, "--out", suffixes=(".png",))
    cache = KernelCache(cfg, cache_dir(args.kernel_cache))
    work = workloads.dataset("multifieldqa", seed=args.seed)
    started = time.perf_counter()
    rows: list[StepResult] = []
    for tech in progress(list(BUNDLE_NAMES), len(BUNDLE_NAMES), "demo-system", "bundles"):
        rows.append(simulate_one(DEMO_MODEL, "pim-only", args.modules, work, tech, cache))
    wall = time.perf_counter() - started
    base = rows[0].throughput_tokens_per_s
    cap = pim_only(args.modules, cfg).capacity_bytes
    print(
        f"{DEMO_MODEL}, multifieldqa lengths (mean {rows[0].mean_context:,.0f} tokens), "
        f"PIM-only, {args.modules} modules ({cap / 2**30:,.0f} GiB), {cfg.name}"
    )
    head = (
        f"{'technique':<10} {'tokens/s':>9} {'speedup':>8} {'batch':>5} {'TPxPP':>6} "
        f"{'MAC util':>8} {'capacity':>8} {'attn':>5} {'ms/token':>8} {'mJ/token':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.technique:<10} {r.throughput_tokens_per_s:>9,.0f} "
            f"{r.throughput_tokens_per_s / base:>7.2f}x {r.batch:>5} {f'{r.tp}x{r.pp}':>6} "
            f"{100 * r.mac_utilization:>7.1f}% {100 * r.capacity_utilization:>7.1f}% "
            f"{100 * r.time_s['attention'] / r.step_s:>4.0f}% {1e3 * r.token_latency_s:>8.2f} "
            f"{1e3 * r.energy_j_per_token:>8.2f}"
        )
    if args.json:
        config = resolved(cfg, resolve_model(DEMO_MODEL))
        print(json.dumps({"rows": [r.as_dict() for r in rows], "resolved": config}, indent=1))
    write_with(out, lambda tmp: _demo_png(rows, tmp))
    print(f"figure: {out}   ({wall:.1f} s, {cache.exact_runs} command-level kernel runs)")
    cache.save()
    return 0


def _demo_png(rows: list[StepResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    names = [r.technique for r in rows]
    axes[0].bar(names, [r.throughput_tokens_per_s for r in rows], color="tab:blue")
    axes[0].set_ylabel("decode tokens/s")
    axes[1].bar(names, [100 * r.mac_utilization for r in rows], color="tab:orange")
    axes[1].set_ylabel("MAC utilization (%)")
    axes[2].bar(names, [100 * r.capacity_utilization for r in rows], color="tab:green")
    axes[2].set_ylabel("capacity utilization (%)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{rows[0].model}, {rows[0].workload}, PIM-only x{rows[0].modules}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_repro(args: argparse.Namespace) -> int:
    """Run the experiment set; per experiment NAME.json, NAME.csv and NAME.png in --out."""
    cfg = resolve(args.config)
    names = EXPERIMENTS if not args.only else tuple(args.only)
    for n in names:
        if n not in EXPERIMENTS:
            raise SystemSimError(f"--only: unknown experiment '{n}' ({', '.join(EXPERIMENTS)})")
    out = check_output_dir(args.out, "--out")
    cache = KernelCache(cfg, cache_dir(args.kernel_cache))
    write_text(out / "resolved-config.json", json.dumps({"pim_config": cfg.to_dict()}, indent=1))
    started = time.perf_counter()
    for n in names:
        t0 = time.perf_counter()
        rows = run_experiment(n, cache)
        paths = write_outputs(n, rows, out)
        cache.save()
        print(f"{n}: {len(rows)} rows in {time.perf_counter() - t0:.1f} s -> {paths[0].parent}")
    print(f"repro: {len(names)} experiments in {time.perf_counter() - started:.1f} s")
    return 0


def add_cache_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kernel-cache",
        metavar="DIR",
        default=None,
        help="directory caching command-level kernel runs, keyed by config + code hash "
        f"('none': off; default {default_cache_dir()}, or $PIMPHONY_CACHE_DIR)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    add_config_argument(p)
    add_cache_argument(p)


def add_system_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="full-system decode simulation (throughput, utilization, energy)",
        description=cmd_simulate.__doc__,
    )
    p.add_argument("--model", required=True, help="Table-I name or a local HF config.json")
    p.add_argument("--system", required=True, choices=SYSTEMS)
    p.add_argument("--modules", type=positive, required=True, help="PIM modules (or GPUs)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help=f"length statistics: {', '.join(workloads.DATASETS)}")
    src.add_argument("--context", type=int, help="fixed context length (tokens)")
    src.add_argument(
        "--trace", help="request trace: runs the serving simulation (as `pimphony serve`)"
    )
    p.add_argument("--techniques", default="pimphony", choices=TECHNIQUE_CHOICES)
    p.add_argument(
        "--batch", type=int, default=None, help="batch (default: best of 1 .. largest that fits)"
    )
    p.add_argument("--output-tokens", type=int, default=workloads.DEFAULT_OUTPUT_TOKENS)
    p.add_argument("--seed", type=seed, default=0, help="length sampling seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--gpu", default=DEFAULT_GPU, choices=list(GPU_SPECS), help="GPU for --system gpu"
    )
    add_model_options(p)
    add_serve_options(p)
    _common(p)
    p.set_defaults(func=cmd_simulate)

    add_serve_parser(sub)

    d = sub.add_parser(
        "demo-system",
        help="end-to-end demo: baseline -> +TCP -> +DCS -> pimphony on PIM-only",
        description=cmd_demo_system.__doc__,
    )
    d.add_argument("--modules", type=positive, default=8)
    d.add_argument("--seed", type=seed, default=0)
    d.add_argument("--out", default="build/demo-system.png", help="PNG path")
    d.add_argument("--json", action="store_true", help="also print the rows as JSON")
    _common(d)
    d.set_defaults(func=cmd_demo_system)

    r = sub.add_parser(
        "repro",
        help="run the paper's experiment set (JSON, CSV, PNG per experiment)",
        description=cmd_repro.__doc__,
    )
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--only", action="append", metavar="NAME", help=", ".join(EXPERIMENTS))
    _common(r)
    r.set_defaults(func=cmd_repro)
