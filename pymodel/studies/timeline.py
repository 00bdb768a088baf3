"""``pimphony timeline TRACE -o out.png``: a Gantt chart of a command trace.

One lane for the command bus (every command, coloured by class: MAC, I/O = WRGB/RDMAC/CLRMAC/WR/RD,
ACT/PRE, REF), then one lane per bank showing what occupies the bank: an open row from ACT to PRE
(light), MACs and reads/writes on it (dark), refresh. All-bank commands appear on every bank.
Long traces are drawn over a cycle window (``--start``/``--end``); beyond ~20k commands in the
window the bus lane is binned so the picture stays readable.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from pymodel.config import PimConfig, add_config_argument, resolve
from pymodel.errors import check_text_file
from pymodel.isa import Op, TraceEntry, read_trace
from pymodel.ui.outputs import check_output_file, write_with

PICTURE_SUFFIXES = (".png", ".svg", ".pdf")

CLASS_OF = {
    Op.MAC16: "MAC",
    Op.WRGB: "I/O",
    Op.RDMAC: "I/O",
    Op.CLRMAC: "I/O",
    Op.WR: "I/O",
    Op.RD: "I/O",
    Op.ACT: "ACT/PRE",
    Op.ACT16: "ACT/PRE",
    Op.PRE: "ACT/PRE",
    Op.PREA: "ACT/PRE",
    Op.REF: "REF",
    Op.WRBIAS: "I/O",
    Op.TMOD: "TMOD",
    Op.NOP: "NOP",
}
COLORS = {
    "MAC": "#2b8a3e",
    "I/O": "#1971c2",
    "ACT/PRE": "#e8590c",
    "REF": "#862e9c",
    "TMOD": "#c92a2a",
    "NOP": "#adb5bd",
    "open row": "#ffe8cc",
}
ALL_BANK = frozenset({Op.ACT16, Op.PREA, Op.MAC16, Op.REF})


def _duration(op: Op, cfg: PimConfig) -> int:
    t = cfg.timing
    return {
        Op.MAC16: t.nCCDL,
        Op.WRGB: t.nBL,
        Op.WRBIAS: t.nBL,
        Op.TMOD: t.nMODCH,
        Op.RDMAC: t.nBL,
        Op.WR: t.nBL,
        Op.RD: t.nBL,
        Op.REF: t.nRFC,
    }.get(op, 1)


def render(
    entries: list[TraceEntry],
    cfg: PimConfig,
    out: Path,
    start: int | None = None,
    end: int | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Draw the chart; returns a summary (window, commands drawn, per-class counts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not entries:
        raise ValueError("the trace has no commands")
    lo = entries[0].cycle if start is None else start
    hi = entries[-1].cycle + 1 if end is None else end
    if hi <= lo:
        raise ValueError(f"--end {hi} must be greater than --start {lo}")
    window = [e for e in entries if lo <= e.cycle < hi]
    banks = cfg.geometry.banks
    bus: dict[str, list[tuple[int, int]]] = defaultdict(list)
    lanes: dict[int, dict[str, list[tuple[int, int]]]] = {
        b: defaultdict(list) for b in range(banks)
    }
    opened: dict[int, int] = {}
    for e in entries:  # row-open spans need the whole trace; bars are clipped to the window
        op = e.cmd.op
        touched = (
            range(banks)
            if op in ALL_BANK
            else ((e.cmd.bank,) if op in (Op.ACT, Op.PRE, Op.WR, Op.RD) else ())
        )
        if op in (Op.ACT, Op.ACT16):
            for b in touched:
                opened[b] = e.cycle
        if op in (Op.PRE, Op.PREA):
            for b in touched:
                if b in opened:
                    lanes[b]["open row"].append((opened[b], e.cycle - opened.pop(b)))
        if lo <= e.cycle < hi:
            span = (e.cycle, _duration(op, cfg))
            bus[CLASS_OF[op]].append(span)
            if op in (Op.MAC16, Op.WR, Op.RD, Op.REF):
                for b in touched:
                    lanes[b][CLASS_OF[op]].append(span)
    for b, since in opened.items():
        lanes[b]["open row"].append((since, hi - since))

    fig, ax = plt.subplots(figsize=(14, 2 + 0.32 * banks))
    ylabels = ["bus"] + [f"bank {b}" for b in range(banks)]
    for cls, spans in bus.items():
        ax.broken_barh(spans, (banks + 0.1, 0.8), facecolors=COLORS[cls], linewidth=0)
    for b in range(banks):
        y = banks - 1 - b
        for cls in ("open row", "MAC", "I/O", "REF"):
            if lanes[b][cls]:
                ax.broken_barh(lanes[b][cls], (y + 0.1, 0.8), facecolors=COLORS[cls], linewidth=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, banks + 1)
    ax.set_yticks([banks + 0.5] + [banks - 0.5 - b for b in range(banks)], ylabels)
    ax.set_xlabel(f"cycle (tCK = {cfg.tck_ns} ns)")
    counts = {cls: len(spans) for cls, spans in bus.items()}
    ax.set_title(
        title
        or f"{len(window)} commands, cycles {lo}..{hi - 1}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    ax.legend(
        handles=[Patch(color=c, label=k) for k, c in COLORS.items() if k != "NOP"],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=5,
        frameon=False,
    )
    fig.tight_layout()
    write_with(out, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return {"start": lo, "end": hi, "commands": len(window), "by_class": counts, "png": str(out)}


def cmd_timeline(args: argparse.Namespace) -> int:
    """Render a command trace as a Gantt chart (PNG)."""
    cfg = resolve(args.config)
    out = check_output_file(args.output, "-o", suffixes=PICTURE_SUFFIXES)
    check_text_file(args.trace, "trace")
    entries = read_trace(args.trace, cfg)
    try:
        summary = render(entries, cfg, out, args.start, args.end)
    except ValueError as exc:
        from pymodel.isa import IsaError

        raise IsaError(f"{args.trace}: {exc}") from None
    print(
        f"{summary['png']}: {summary['commands']} commands, cycles "
        f"{summary['start']}..{summary['end'] - 1}"
    )
    return 0


def add_timeline_parser(sub: Any) -> None:
    p = sub.add_parser(
        "timeline",
        help="render a command trace as a Gantt chart (PNG)",
        description=cmd_timeline.__doc__,
    )
    p.add_argument("trace", metavar="TRACE", help="trace file ('<cycle> CMD k=v' per line)")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="output picture")
    p.add_argument("--start", type=int, default=None, help="first cycle to draw")
    p.add_argument("--end", type=int, default=None, help="cycle after the last one to draw")
    add_config_argument(p)
    p.set_defaults(func=cmd_timeline)
