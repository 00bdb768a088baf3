"""The ``pimphony`` command line.

Bad input (config values, presets, trace lines, shapes) prints one ``pimphony: error: ...`` line
naming the field or line and exits with code 2; a trace that violates timing exits with code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pymodel import __version__
from pymodel.codehash import code_hash
from pymodel.compiler.cli import add_parser as add_compile_parser
from pymodel.config import PRESETS, PimConfig, add_config_argument, resolve
from pymodel.dse.cli import add_sweep_parser
from pymodel.errors import PimphonyError, check_text_file
from pymodel.golden.channel import Channel, ChannelError
from pymodel.golden.inorder import CommandStats
from pymodel.isa import read_trace
from pymodel.studies.aim_trace import add_replay_parser
from pymodel.studies.decode_cli import add_decode_parser
from pymodel.studies.gemv_demo import add_demo_parser
from pymodel.studies.kernel_run import add_kernel_parser
from pymodel.studies.timeline import add_timeline_parser
from pymodel.system.cli import add_system_parsers
from pymodel.ui.args import Parser

# Every error a user can fix derives from PimphonyError (ConfigError, IsaError, KernelError too).
USER_ERRORS = (PimphonyError,)


def _cfg(args: argparse.Namespace) -> PimConfig:
    return resolve(args.config)


# ---------------------------------------------------------------------------- trace / config


def cmd_trace_check(args: argparse.Namespace) -> int:
    """Replay a command trace on the golden channel at its recorded cycles."""
    cfg = _cfg(args)
    check_text_file(args.trace, "trace")
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


def _check_config_file(args: argparse.Namespace) -> None:
    """A ``--config`` file must be UTF-8 text (the config reader would fail with a traceback)."""
    spec = getattr(args, "config", None)
    if spec and spec not in PRESETS and Path(spec).is_file():
        check_text_file(spec, "config")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pimphony",
        description="PIM orchestrator models: golden PIM channel, schedulers, system studies.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"pimphony {__version__} (model code {code_hash('pymodel.system.simulate')})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_demo_parser(sub)

    trace = sub.add_parser("trace", help="command traces")
    tsub = trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    check = tsub.add_parser(
        "check",
        help="replay a trace on the golden channel; exit 1 on the first timing/state violation",
        description=cmd_trace_check.__doc__,
    )
    check.add_argument("trace", metavar="TRACE", help="trace file (one '<cycle> CMD k=v' a line)")
    add_config_argument(check)
    check.set_defaults(func=cmd_trace_check)
    add_replay_parser(tsub)

    add_kernel_parser(sub)
    add_compile_parser(sub)
    add_decode_parser(sub)
    add_timeline_parser(sub)
    add_system_parsers(sub)
    add_sweep_parser(sub)

    config = sub.add_parser("config", help="configurations")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = csub.add_parser("show", help="print a resolved configuration (TOML, or --json)")
    add_config_argument(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_config_file(args)
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pimphony: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
