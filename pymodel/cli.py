"""The ``pimphony`` command line.

Bad input (config values, presets, trace lines, shapes) prints one ``pimphony: error: ...`` line
naming the field or line and exits with code 2; a trace that violates timing exits with code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Sequence

import numpy as np

from pymodel.bf16 import from_bf16, random_bf16
from pymodel.channel import Channel, ChannelError
from pymodel.config import ConfigError, PimConfig, resolve
from pymodel.gemv import GemvShape, assemble_output, gemv_commands, gemv_reference, load_weights
from pymodel.inorder import CommandStats, InOrderIssuer, TraceRecorder
from pymodel.isa import IsaError, Op, read_trace, write_trace
from pymodel.kernel_study import add_kernel_parser
from pymodel.kernels import KernelError
from pymodel.progress import progress


class UsageError(Exception):
    """Bad input detected after argument parsing (exit code 2)."""


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="PRESET|FILE",
        default=None,
        help="preset name (aim-gddr6, hbm3-pim) or a TOML/JSON config file (default: aim-gddr6)",
    )


def _cfg(args: argparse.Namespace) -> PimConfig:
    return resolve(args.config)


# ---------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """GEMV on the golden channel: cycles, MAC utilization, result checked against numpy."""
    cfg = _cfg(args)
    try:
        shape = GemvShape(args.d_out or args.dim, args.dim, cfg)
    except ValueError as exc:
        raise UsageError(f"--dim: {exc}") from None
    rng = np.random.default_rng(args.seed)
    w = random_bf16(rng, (shape.d_out, shape.d_in))
    x = random_bf16(rng, (shape.d_in,))
    ch = Channel(cfg)
    stats = CommandStats()
    ch.observe(stats)
    recorder = TraceRecorder()
    if args.trace:
        ch.observe(recorder)
    load_weights(ch, shape, w)
    started = time.perf_counter()
    issuer = InOrderIssuer(ch)
    n_cmds = _gemv_command_count(shape)
    reads = issuer.run(progress(gemv_commands(shape, x), n_cmds, "simulating"))
    wall = time.perf_counter() - started
    y = assemble_output(shape, reads)
    exact = gemv_reference(w, x, cfg.geometry.lanes)
    cycles = ch.last_cycle + 1
    util = stats.mac_utilization(cfg.timing.nCCDL, cycles)
    # numpy float64 reference and the stated bound: bf16 output rounding (2^-9 relative) plus
    # float32 accumulation (one rounding per addition, d_in/16 + 4 additions per output).
    wf, xf = from_bf16(w).astype(np.float64), from_bf16(x).astype(np.float64)
    y64 = wf @ xf
    mag = np.abs(wf) @ np.abs(xf)
    adds = shape.d_in // cfg.geometry.lanes + 4
    bound = 2.0**-8 * np.abs(y64) + adds * 2.0**-24 * mag
    err = np.abs(from_bf16(y).astype(np.float64) - y64)
    within = bool((err <= bound).all())
    equal = int((y == exact).sum())
    counts = {op.name: n for op, n in stats.counts.items() if n}
    result: dict[str, object] = {
        "kernel": f"gemv {shape.d_out}x{shape.d_in} bf16",
        "config": cfg.name,
        "controller": "in-order",
        "obuf_entries": cfg.buffers.obuf_entries,
        "cycles": cycles,
        "time_us": cycles * cfg.tck_ns / 1000,
        "mac_utilization": util,
        "commands": counts,
        "bit_exact_outputs": equal,
        "outputs": shape.d_out,
        "max_error_over_bound": float((err / bound).max()),
        "simulated_commands_per_s": sum(stats.counts.values()) / wall,
    }
    if args.trace:
        write_trace(args.trace, recorder.entries)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"GEMV {shape.d_out} x {shape.d_in} bf16 on one {cfg.name} channel "
            f"(in-order controller, {cfg.buffers.obuf_entries} OBuf entries per bank)"
        )
        print("  commands : " + "  ".join(f"{k} {v}" for k, v in counts.items()))
        print(f"  cycles   : {cycles:,} ({result['time_us']:.1f} us at tCK {cfg.tck_ns} ns)")
        print(
            f"  MAC util.: {100 * util:.1f}% ({stats.counts[Op.MAC16]:,} MAC16 of "
            f"{cycles // cfg.timing.nCCDL:,} peak slots)"
        )
        print(
            f"  check    : {equal}/{shape.d_out} outputs bit-exact vs the bf16 numpy reference; "
            f"{'all' if within else 'NOT all'} within the bound vs float64 W@x "
            f"(worst {result['max_error_over_bound']:.2f} of bound)"
        )
        print(f"  speed    : {result['simulated_commands_per_s']:,.0f} commands/s simulated")
        if args.trace:
            print(f"  trace    : {args.trace}")
    return 0 if equal == shape.d_out and within else 1


def _gemv_command_count(shape: GemvShape) -> int:
    cfg = shape.cfg
    blocks = -(-shape.groups // cfg.buffers.obuf_entries)
    return (
        2 * shape.groups
        + blocks * shape.tiles * cfg.buffers.gb_entries
        + shape.rows * (2 + cfg.buffers.gb_entries)
    )


# ---------------------------------------------------------------------------- trace / config


def cmd_trace_check(args: argparse.Namespace) -> int:
    """Replay a command trace on the golden channel at its recorded cycles."""
    cfg = _cfg(args)
    entries = read_trace(args.trace, cfg)
    ch = Channel(cfg)
    stats = CommandStats()
    ch.observe(stats)
    for n, entry in enumerate(entries):
        try:
            ch.issue(entry.cmd, entry.cycle)
        except ChannelError as exc:
            print(f"{args.trace}: command {n + 1}: {exc}")
            return 1
    cycles = ch.last_cycle + 1 if entries else 0
    print(
        f"{args.trace}: {len(entries)} commands legal on {cfg.name}; {cycles} cycles; "
        f"MAC utilization {100 * stats.mac_utilization(cfg.timing.nCCDL, cycles):.1f}%"
    )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    data = asdict(cfg)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f'preset = "{data.pop("name")}"')
    for section, values in data.items():
        print(f"\n[{section}]")
        for key, value in values.items():
            print(f"{key} = {value}")
    return 0


# ---------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pimphony",
        description="PIM orchestrator models: golden PIM channel, schedulers, system studies.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="GEMV on the golden PIM channel (cycles, utilization, check)",
        description=cmd_demo.__doc__,
    )
    _add_config_args(demo)
    demo.add_argument("--dim", type=int, default=4096, help="d_in (and d_out unless --d-out)")
    demo.add_argument("--d-out", type=int, default=None, help="output dimension")
    demo.add_argument("--seed", type=int, default=0, help="random data seed (default 0)")
    demo.add_argument("--trace", metavar="FILE", help="write the issued command trace here")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=cmd_demo)

    trace = sub.add_parser("trace", help="command traces")
    tsub = trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    check = tsub.add_parser(
        "check",
        help="replay a trace on the golden channel; exit 1 on the first timing/state violation",
        description=cmd_trace_check.__doc__,
    )
    check.add_argument("trace", metavar="TRACE", help="trace file (one '<cycle> CMD k=v' a line)")
    _add_config_args(check)
    check.set_defaults(func=cmd_trace_check)

    add_kernel_parser(sub)

    config = sub.add_parser("config", help="configurations")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = csub.add_parser("show", help="print a resolved configuration (TOML, or --json)")
    _add_config_args(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, IsaError, KernelError, UsageError) as exc:
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pimphony: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
