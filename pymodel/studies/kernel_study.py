"""One-channel kernel studies: ``pimphony kernel`` and the ``make bench`` table.

The baseline (STATIC) uses one accumulator per bank, as the AiM controller does; PINGPONG and DCS
use every OBuf entry of the config (``buffers.obuf_entries``), PINGPONG in two alternating halves
of the GB and the OBuf (:func:`pymodel.golden.kernels.buffer_args`). Accumulators are initialized
the AiM way (``--acc-init bias``: WR_BIAS before, RD_MAC after) unless ``--acc-init clear`` asks for
PIMphony's clear-on-read (RD_OUT), see :mod:`pymodel.golden.kernels`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pymodel.config import PimConfig, add_config_argument, resolve
from pymodel.golden.kernels import GemvKernel, KernelError, QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import Mode, run_kernel

OPS = ("gemv", "qk", "sv")
BENCH_GEMV = (128, 256, 512, 1024, 4096)
BENCH_TOKENS = (1024, 4096, 16384, 65536)
# The subset `make bench` also runs on the RTL scheduler (tb/cmd_sched run_bench, lockstep).
RTL_BENCH: tuple[tuple[str, dict[str, int]], ...] = tuple(
    [("gemv", {"dim": d}) for d in BENCH_GEMV if d <= 1024]
    + [(op, {"tokens": t}) for op in ("qk", "sv") for t in BENCH_TOKENS if t <= 4096]
)

Kernel = GemvKernel | QkKernel | SvKernel


def build_kernel(
    op: str,
    cfg: PimConfig,
    mode: Mode,
    dim: int = 1024,
    tokens: int = 4096,
    group: int = 1,
    d_head: int = 128,
    acc_init: str = "bias",
) -> Kernel:
    buf = buffer_args(mode, cfg)
    if op == "gemv":
        return GemvKernel(dim, dim, cfg, acc_init=acc_init, **buf)
    if op == "qk":
        return QkKernel(tokens, cfg, d_head=d_head, group=group, acc_init=acc_init, **buf)
    if op == "sv":
        return SvKernel(tokens, cfg, d_head=d_head, acc_init=acc_init, **buf)
    raise KernelError(f"--op {op!r}: one of {', '.join(OPS)}")


def study(
    op: str, cfg: PimConfig, mode: Mode, shape: dict[str, int], acc_init: str = "bias"
) -> dict[str, Any]:
    kernel = build_kernel(op, cfg, mode, acc_init=acc_init, **shape)
    program = kernel.program()
    started = time.perf_counter()
    res = run_kernel(cfg, mode, program)
    out: dict[str, Any] = {"op": op, "schedule": mode.value, "config": cfg.name, **shape}
    out["acc_init"] = acc_init
    out["instructions"] = len(program)
    out["obuf_entries_used"] = kernel.entries
    out.update(res.stats.as_dict())
    out["time_us"] = res.stats.cycles * cfg.tck_ns / 1000
    out["wall_s"] = time.perf_counter() - started
    return out


def cmd_kernel(args: argparse.Namespace) -> int:
    """Schedule one kernel on one channel and report cycles, MAC utilization and the breakdown."""
    cfg = resolve(args.config)
    shape = {"dim": args.dim} if args.op == "gemv" else {"tokens": args.tokens}
    if args.op == "qk":
        shape["group"] = args.group
    if args.op != "gemv":
        shape["d_head"] = args.d_head
    rows = [study(args.op, cfg, Mode(s), shape, args.acc_init) for s in args.schedule]
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return 0
    for r in rows:
        causes = "  ".join(f"{k} {v}" for k, v in r["cycles_by_cause"].items() if v)
        print(
            f"{r['op']} {shape} {r['schedule']:>8}: {r['cycles']:,} cycles "
            f"({r['time_us']:.1f} us), MAC utilization {100 * r['mac_utilization']:.1f}%  "
            f"[{causes}]"
        )
    return 0


def add_kernel_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kernel",
        help="schedule one kernel on one channel (cycles, utilization)",
        description=cmd_kernel.__doc__,
    )
    p.add_argument("--op", choices=OPS, required=True)
    p.add_argument("--dim", type=int, default=1024, help="GEMV d_out = d_in (default 1024)")
    p.add_argument("--tokens", type=int, default=4096, help="QK^T/SV tokens (default 4096)")
    p.add_argument("--group", type=int, default=1, help="QK^T queries per GQA group (default 1)")
    p.add_argument("--d-head", type=int, default=128, help="head dimension (default 128)")
    p.add_argument(
        "--acc-init",
        choices=["bias", "clear"],
        default="bias",
        help="accumulator init: bias = AiM WR_BIAS + RD_MAC (default); clear = PIMphony's "
        "clear-on-read RD_OUT",
    )
    p.add_argument(
        "--schedule",
        nargs="+",
        default=["dcs"],
        choices=[m.value for m in Mode],
        help="one or more of static, pingpong, dcs (default dcs)",
    )
    add_config_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_kernel)


def bench_rows(cfg: PimConfig) -> list[dict[str, Any]]:
    jobs: list[tuple[str, dict[str, int]]] = [("gemv", {"dim": d}) for d in BENCH_GEMV]
    jobs += [(op, {"tokens": t}) for op in ("qk", "sv") for t in BENCH_TOKENS]
    return [study(op, cfg, mode, shape) for op, shape in jobs for mode in Mode]


def bench_markdown(
    rows: list[dict[str, Any]], cfg: PimConfig, rtl: dict[tuple[str, str], int] | None = None
) -> str:
    rtl = rtl or {}
    lines = [
        "# Kernel bench: one channel, reference schedulers and the RTL",
        "",
        f"Config `{cfg.name}`; written by `make bench` (`tools/bench_rtl.py`, then "
        "`python -m pymodel.studies.kernel_study`). "
        "STATIC uses one accumulator per bank (AiM baseline); PINGPONG and DCS use "
        f"{cfg.buffers.obuf_entries} OBuf entries, PINGPONG in two alternating halves of the GB "
        "and the OBuf (the prior-work scheme). Cycles are command-clock cycles "
        f"(tCK {cfg.tck_ns} ns); utilization = MAC16 issued / (cycles / nCCDL). *RTL cycles*: the "
        "same kernel on `rtl/sched/pim_sched.sv` (Verilator; every command checked in lockstep "
        "against the reference fed the DUT's acceptance cycles, data bit-exact), counted from "
        "the first acceptance; — where the bench does not run it (long kernels). The DUT accepts "
        "its first instruction one cycle after reset while refresh is due at absolute cycles, so "
        "a kernel that spans a refresh may differ by a cycle from the standalone reference.",
        "",
        "Accumulators are initialized the AiM way (WR_BIAS per output group, RD_MAC to read); "
        "`timing.mode_switch = aim-register`: every change between register commands (WRGB, "
        "WRBIAS, RDMAC) and the rest costs a TMOD and nMODCH (the *mode* column; TMODs counted "
        "in *tmod*). Cycle causes: what each issue slot and each idle gap before a command "
        "waited for (`pymodel.golden.sched`).",
        "",
        "| kernel | size | schedule | cycles | RTL cycles | MAC util. | vs static | tmod | mac | "
        "act/pre | ref | gb write | bias write | out read | mode | stall |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[tuple[str, Any], int] = {}
    for r in rows:
        size = r.get("dim", r.get("tokens"))
        key = (r["op"], size)
        if r["schedule"] == "static":
            base[key] = r["cycles"]
        c = r["cycles_by_cause"]
        hw = rtl.get((f"{r['op']}-{size}", r["schedule"]))
        lines.append(
            f"| {r['op']} | {size} | {r['schedule']} | {r['cycles']:,} | "
            f"{'—' if hw is None else f'{hw:,}'} | "
            f"{100 * r['mac_utilization']:.1f}% | {base[key] / r['cycles']:.2f}x | "
            f"{r['commands'].get('TMOD', 0)} | {c['mac']} | {c['act_pre']} | {c['ref']} | "
            f"{c['gb_write']} | {c['bias_write']} | {c['out_read']} | {c['mode_switch']} | "
            f"{c['stall']} |"
        )
    return "\n".join(lines) + "\n"


def load_rtl_results(path: str) -> dict[tuple[str, str], int]:
    """tools/bench_rtl.py's output: (kernel-size, schedule) -> RTL cycles, counted like the
    reference's from the first instruction's acceptance (the DUT accepts it a cycle after
    reset; the standalone reference at cycle 0)."""
    data = json.loads(Path(path).read_text())
    return {(d["name"], d["schedule"]): int(d["cycles"]) - int(d["first_accept"]) for d in data}


def main() -> None:
    ap = argparse.ArgumentParser(description="write the kernel bench table")
    ap.add_argument("--out", default="docs/bench.md")
    ap.add_argument(
        "--rtl-results",
        metavar="JSON",
        default=None,
        help="RTL cycles written by tools/bench_rtl.py, shown beside the reference",
    )
    args = ap.parse_args()
    cfg = resolve(None)
    rows = bench_rows(cfg)
    rtl = load_rtl_results(args.rtl_results) if args.rtl_results else {}
    for r in rows:
        hw = rtl.get((f"{r['op']}-{r.get('dim', r.get('tokens'))}", r["schedule"]))
        if hw is not None:
            r["rtl_cycles"] = hw
    Path(args.out).write_text(bench_markdown(rows, cfg, rtl))
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out} ({len(rows)} rows, {len(rtl)} also on the RTL)")


if __name__ == "__main__":
    main()
