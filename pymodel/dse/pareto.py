"""The sweep's Pareto front: throughput against total on-chip buffer bytes (GB + OBuf of every
channel), and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymodel.outputs import write_with

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
    return f"{r['technique']} x{r['modules']} {r['workload']}" + (f" ({cfg})" if cfg else "")


def plot(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok" and r["buffer_bytes"]]
    best = front(rows)
    fig, ax = plt.subplots(figsize=(8, 5))
    for tech in sorted({r["technique"] for r in ok}):
        pts = [r for r in ok if r["technique"] == tech]
        ax.scatter(
            [r["buffer_bytes"] / 2**20 for r in pts],
            [r["throughput_tokens_per_s"] for r in pts],
            s=18,
            alpha=0.6,
            label=tech,
        )
    if best:
        ax.step(
            [r["buffer_bytes"] / 2**20 for r in best],
            [r["throughput_tokens_per_s"] for r in best],
            where="post",
            color="black",
            linewidth=1,
            label="Pareto front",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("total on-chip buffer (MiB: GB + OBuf of every channel)")
    ax.set_ylabel("decode throughput (tokens/s)")
    ax.set_title(f"{title}: {len(ok)} points, {len(best)} on the front")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
