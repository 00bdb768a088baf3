"""The sweep's Pareto front: throughput against total on-chip buffer bytes (GB + OBuf of every
channel), and its plot. Decode-step and serving throughputs measure different things, so each
mode (``step``, ``serve``) has its own front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymodel.ui.outputs import write_with

Row = dict[str, Any]


def front(rows: list[Row]) -> list[Row]:
    """Rows no other row beats on both axes (more throughput for no more buffer bytes), in
    increasing buffer bytes."""
    ok = sorted(
        (r for r in rows if r["status"] == "ok" and r["buffer_bytes"]),
        key=lambda r: (r["buffer_bytes"], -r["throughput_tokens_per_s"]),
    )
    out: list[Row] = []
    best = 0.0
    for r in ok:
        if r["throughput_tokens_per_s"] > best:
            out.append(r)
            best = r["throughput_tokens_per_s"]
    return out


def label(r: Row) -> str:
    cfg = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in r["params"]["config"].items())
    rate = r["params"].get("rate")
    serve = f" at {rate:g} req/s" if rate else ""
    return f"{r['technique']} x{r['modules']} {r['workload']}{serve}" + (f" ({cfg})" if cfg else "")


def by_mode(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r.get("mode") or "step", []).append(r)
    return out


def plot(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok" and r["buffer_bytes"]]
    fig, ax = plt.subplots(figsize=(8, 5))
    on_front = 0
    for (mode, group), (marker, line) in zip(
        sorted(by_mode(ok).items()), (("o", "-"), ("^", "--")), strict=False
    ):
        for tech in sorted({r["technique"] for r in group}):
            pts = [r for r in group if r["technique"] == tech]
            ax.scatter(
                [r["buffer_bytes"] / 2**20 for r in pts],
                [r["throughput_tokens_per_s"] for r in pts],
                s=18,
                alpha=0.6,
                marker=marker,
                label=f"{tech} ({mode})",
            )
        best = front(group)
        on_front += len(best)
        ax.step(
            [r["buffer_bytes"] / 2**20 for r in best],
            [r["throughput_tokens_per_s"] for r in best],
            where="post",
            color="black",
            linestyle=line,
            linewidth=1,
            label=f"Pareto front ({mode})",
        )
    xs = [r["buffer_bytes"] for r in ok]
    if xs and max(xs) > 8 * min(xs):  # wide ranges on a log axis; else it shows no ticks
        ax.set_xscale("log", base=2)
    ax.set_xlabel("total on-chip buffer (MiB: GB + OBuf of every channel)")
    ax.set_ylabel("decode throughput (tokens/s)")
    ax.set_title(f"{title}: {len(ok)} points, {on_front} on the front")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
