"""``pimphony kernel`` with input checks, a run-time estimate and progress.

The command itself (arguments, the run, the report) is :mod:`pymodel.studies.kernel_study`'s; this
wraps it: shapes the kernel builders cannot take are refused with one error line, the command-level
work is estimated from the instruction stream before anything runs (refused above
``--max-minutes``), and a run longer than a few seconds shows its elapsed time against the
estimate.
"""

from __future__ import annotations

import argparse
from typing import Any

from pymodel.config import resolve
from pymodel.errors import LimitError, PimphonyError
from pymodel.golden.sched import Mode
from pymodel.studies import kernel_study
from pymodel.ui.progress import activity, fmt_seconds

# Program units (MAC16 / WRGB / RDMAC commands the instructions ask for) the reference
# schedulers simulate per second on this project's 2-core machine (17-31 k measured for QK^T,
# SV and GEMV; the lower end, so the estimate errs long).
UNITS_PER_S = 15_000
QUIET_S = 2.0  # estimated runs shorter than this show no progress
DEFAULT_MAX_MINUTES = 30.0


class KernelInputError(PimphonyError):
    """A kernel shape no kernel builder accepts."""


def _shape_checks(args: argparse.Namespace) -> None:
    for name in ("dim", "tokens", "group", "d_head"):
        v = getattr(args, name)
        if v < 1:
            raise KernelInputError(f"kernel: --{name.replace('_', '-')} = {v} must be positive")


def estimate_s(args: argparse.Namespace) -> float:
    """Seconds the requested runs take at :data:`UNITS_PER_S` (all ``--schedule`` modes)."""
    cfg = resolve(args.config)
    units = 0
    for s in args.schedule:
        k = kernel_study.build_kernel(
            args.op,
            cfg,
            Mode(s),
            dim=args.dim,
            tokens=args.tokens,
            group=args.group,
            d_head=args.d_head,
            acc_init=args.acc_init,
        )
        units += sum(i.op_size for i in k.program())
    return units / UNITS_PER_S


def cmd_kernel(args: argparse.Namespace) -> int:
    _shape_checks(args)
    est = estimate_s(args)
    if est > 60 * args.max_minutes:
        raise LimitError(
            f"kernel --op {args.op}: the command-level run would take about {fmt_seconds(est)} "
            f"(limit --max-minutes {args.max_minutes:g}); raise the limit, or use `pimphony "
            "simulate`, whose kernel costs are extrapolated from short runs"
        )
    if est < QUIET_S:
        return int(kernel_study.cmd_kernel(args))
    with activity(f"kernel {args.op} ({', '.join(args.schedule)})", est):
        return int(kernel_study.cmd_kernel(args))


def add_kernel_parser(sub: Any) -> None:
    kernel_study.add_kernel_parser(sub)
    p = sub.choices["kernel"]
    p.add_argument(
        "--max-minutes",
        type=float,
        default=DEFAULT_MAX_MINUTES,
        help=f"refuse runs estimated longer than this (default {DEFAULT_MAX_MINUTES:g})",
    )
    p.set_defaults(func=cmd_kernel)
