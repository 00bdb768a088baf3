"""``pimphony demo``: a GEMV on the golden channel through a reference scheduler.

Prints cycles, MAC utilization and the check of the result: bit-exact against the bf16 numpy
reference (same arithmetic as the banks) and within a stated bound of float64 ``W @ x``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from pymodel.config import add_config_argument, resolve
from pymodel.golden.bf16 import U16, from_bf16
from pymodel.golden.channel import Channel
from pymodel.golden.inorder import TraceRecorder
from pymodel.golden.kernels import GemvKernel, buffer_args
from pymodel.golden.sched import Mode, Scheduler, gpr_equal
from pymodel.isa import Command, InstOp, Op, format_trace
from pymodel.ui.args import seed
from pymodel.ui.outputs import check_output_file, write_text
from pymodel.ui.progress import Progress


def cmd_demo(args: argparse.Namespace) -> int:
    """GEMV on the golden channel: cycles, MAC utilization, result checked against numpy."""
    cfg = resolve(args.config)
    if args.trace:
        check_output_file(args.trace, "--trace")
    mode = Mode(args.schedule)
    kernel = GemvKernel(args.d_out or args.dim, args.dim, cfg, **buffer_args(mode, cfg))
    data = kernel.data(np.random.default_rng(args.seed))
    ch = Channel(cfg)
    for row, arr in data.rows.items():
        ch.load_row(row, arr)
    program = kernel.program()
    bar = Progress(sum(i.op_size for i in program if i.op is InstOp.MAC), "simulating")

    def count_macs(cycle: int, cmd: Command, result: U16 | None) -> None:
        if cmd.op is Op.MAC16:
            bar.update()

    ch.observe(count_macs)
    recorder = TraceRecorder()
    if args.trace:
        ch.observe(recorder)
    started = time.perf_counter()
    res = Scheduler(cfg, mode, ch).run(program, dict(data.gpr))
    wall = time.perf_counter() - started
    bar.close()
    wrong = gpr_equal(data.expected, res.gpr)
    # float64 reference and the stated bound: bf16 output rounding (2^-9 relative) plus float32
    # accumulation (one rounding per addition: d_in/16 MAC accumulations + 4 adder-tree levels).
    w, x = data.operands["w"], data.operands["x"]
    wf, xf = from_bf16(w).astype(np.float64), from_bf16(x).astype(np.float64)
    y64, mag = wf @ xf, np.abs(wf) @ np.abs(xf)
    adds = kernel.d_in // cfg.geometry.lanes + 4
    bound = 2.0**-8 * np.abs(y64) + adds * 2.0**-24 * mag
    y = np.concatenate([res.gpr[kernel.out_gpr + i] for i in range(kernel.groups)])
    err = np.abs(from_bf16(y).astype(np.float64) - y64)
    within = bool((err <= bound).all())
    stats = res.stats
    out: dict[str, Any] = {
        "kernel": f"gemv {kernel.d_out}x{kernel.d_in} bf16",
        "config": cfg.name,
        "schedule": mode.value,
        "obuf_entries": kernel.entries,
        "cycles": stats.cycles,
        "time_us": stats.cycles * cfg.tck_ns / 1000,
        "mac_utilization": stats.mac_utilization,
        "commands": dict(stats.commands),
        "cycles_by_cause": stats.as_dict()["cycles_by_cause"],
        "bit_exact_outputs": kernel.d_out - len(wrong) * cfg.geometry.banks,
        "outputs": kernel.d_out,
        "max_error_over_bound": float((err / bound).max()),
        "simulated_commands_per_s": sum(stats.commands.values()) / wall,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print(out, cfg.tck_ns, cfg.timing.nCCDL, within, args.trace)
    if args.trace:  # after the result is printed: a trace that cannot be written loses nothing
        write_text(args.trace, format_trace(recorder.entries))
    return 0 if not wrong and within else 1


def _print(out: dict[str, Any], tck_ns: float, n_ccdl: int, within: bool, trace: str) -> None:
    print(
        f"{out['kernel']} on one {out['config']} channel ({out['schedule']} scheduler, "
        f"{out['obuf_entries']} OBuf entries per bank)"
    )
    print("  commands : " + "  ".join(f"{k} {v:,}" for k, v in out["commands"].items()))
    print(
        f"  cycles   : {out['cycles']:,} ({out['time_us']:.1f} us at tCK {tck_ns} ns); by cause: "
        + "  ".join(f"{k} {v:,}" for k, v in out["cycles_by_cause"].items() if v)
    )
    print(
        f"  MAC util.: {100 * out['mac_utilization']:.1f}% ({out['commands'].get('MAC16', 0):,}"
        f" MAC16 of {out['cycles'] // n_ccdl:,} peak slots)"
    )
    print(
        f"  check    : {out['bit_exact_outputs']}/{out['outputs']} outputs bit-exact vs the "
        f"bf16 numpy reference; {'all' if within else 'NOT all'} within the bound vs float64 "
        f"W@x (worst {out['max_error_over_bound']:.2f} of bound)"
    )
    print(f"  speed    : {out['simulated_commands_per_s']:,.0f} commands/s simulated")
    if trace:
        print(f"  trace    : {trace}")


def add_demo_parser(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="GEMV on the golden PIM channel (cycles, utilization, check)",
        description=cmd_demo.__doc__,
    )
    add_config_argument(demo)
    demo.add_argument("--dim", type=int, default=4096, help="d_in (and d_out unless --d-out)")
    demo.add_argument("--d-out", type=int, default=None, help="output dimension")
    demo.add_argument(
        "--schedule",
        choices=[m.value for m in Mode],
        default="dcs",
        help="reference scheduler (default dcs; static uses one accumulator)",
    )
    demo.add_argument("--seed", type=seed, default=0, help="random data seed (default 0)")
    demo.add_argument("--trace", metavar="FILE", help="write the issued command trace here")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=cmd_demo)
