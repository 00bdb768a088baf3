"""Where DCS beats ping-pong: ``pimphony repro --only dcs-study`` (docs/sched.md explains it).

One channel's MAC utilization under STATIC, PINGPONG and DCS over attention kernels (MHA and GQA
groups 2, 4, 8; d_head 64 and 128; 1K-128K tokens: QK^T of the group's queries on the open K
row, plus one SV per query head) and square GEMVs (d 128-8192), at three buffer sizes (GB
entries x OBuf entries per bank). Kernel cycles come from the same calibrated command-level runs
as the full-system simulator (:class:`~pymodel.system.kernel_cost.KernelCache`, refresh at the
long-run rate).

Hardware per mode: STATIC is the AiM controller (one accumulator per bank, WR_BIAS + RD_MAC,
single-ported); PINGPONG and DCS get the same hardware, PIMphony's I/O-aware buffering (every
OBuf entry, dual-ported, clear-on-read RD_OUT): PINGPONG splits the GB and the OBuf into two
alternating halves (the prior-work scheme), DCS tracks single entries. So DCS / PINGPONG isolates
the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pymodel.golden.sched import Mode
from pymodel.system.kernel_cost import KernelCache, KernelCost
from pymodel.system.techniques import IO_AWARE
from pymodel.ui.progress import progress

BUFFER_SIZES = ((32, 4), (64, 8), (128, 16))  # (GB entries, OBuf entries per bank)
GROUPS = (1, 2, 4, 8)
D_HEADS = (64, 128)
TOKENS = tuple(1024 << i for i in range(8))  # 1K .. 128K
GEMV_DIMS = tuple(128 << i for i in range(7))  # 128 .. 8192

Row = dict[str, Any]
Shape = tuple[str, int, int, int]  # (kernel, group, d_head, tokens or d)


def shapes() -> Iterator[Shape]:
    for g in GROUPS:
        for d in D_HEADS:
            for t in TOKENS:
                yield ("attention", g, d, t)
    for n in GEMV_DIMS:
        yield ("gemv", 0, 0, n)


def mode_cache(
    cache: KernelCache, mode: Mode, gb: int | None = None, obuf: int | None = None
) -> KernelCache:
    """The cache of ``mode``'s hardware (see the module docstring), at ``gb`` x ``obuf``
    buffer entries (default: the config's)."""
    b = cache.cfg.buffers
    buffers: dict[str, Any] = {
        "gb_entries": b.gb_entries if gb is None else gb,
        "obuf_entries": b.obuf_entries if obuf is None else obuf,
    }
    if mode is Mode.STATIC:
        return cache.variant({"buffers": buffers}, "bias")
    return cache.variant({"buffers": buffers | IO_AWARE["buffers"]}, "clear")


def kernel_cost(kc: KernelCache, mode: Mode, shape: Shape) -> KernelCost:
    kind, group, d_head, n = shape
    if kind == "gemv":
        return kc.gemv(n, n, mode)
    return kc.qk_group(n, mode, d_head, group) + kc.sv(n, mode, d_head).scale(group)


def dcs_study(cache: KernelCache, show: bool = True) -> list[Row]:
    """One row per (kernel shape, buffer size): cycles and MAC utilization of each mode and the
    DCS / PINGPONG and DCS / STATIC speedups."""
    jobs = [(gb, ob, s) for gb, ob in BUFFER_SIZES for s in shapes()]
    rows: list[Row] = []
    it = progress(jobs, len(jobs), f"{'dcs-study':>20}", "kernels") if show else jobs
    for gb, ob, shape in it:
        kind, group, d_head, n = shape
        row: Row = {"kernel": kind, "gb_entries": gb, "obuf_entries": ob}
        if kind == "attention":
            row |= {"group": group, "d_head": d_head, "tokens": n}
        else:
            row |= {"dimension": n}
        for mode in Mode:
            kc = mode_cache(cache, mode, gb, ob)
            c = kernel_cost(kc, mode, shape).with_refresh(kc.cfg.timing.nREFI)
            row[f"{mode.value}_cycles"] = c.busy_cycles
            row[f"{mode.value}_mac_utilization"] = (
                c.command("MAC16") * kc.cfg.timing.nCCDL / c.busy_cycles
            )
        row["dcs_vs_pingpong"] = row["pingpong_cycles"] / row["dcs_cycles"]
        row["dcs_vs_static"] = row["static_cycles"] / row["dcs_cycles"]
        rows.append(row)
    cache.save()
    return rows


def largest_gain(rows: list[Row]) -> Row:
    """The row with the largest DCS / PINGPONG speedup."""
    return max(rows, key=lambda r: r["dcs_vs_pingpong"])


def plot(rows: list[Row], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (att, gemv) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    default_gb = BUFFER_SIZES[1][0]
    for g in GROUPS:
        for d in D_HEADS:
            pts = [
                (r["tokens"], r["dcs_vs_pingpong"])
                for r in rows
                if r["kernel"] == "attention"
                and r["group"] == g
                and r["d_head"] == d
                and r["gb_entries"] == default_gb
            ]
            att.plot(*zip(*pts, strict=True), marker="o", label=f"group {g}, d_head {d}")
    att.set_xscale("log", base=2)
    att.set_xlabel(f"attention tokens (GB {default_gb}, OBuf {BUFFER_SIZES[1][1]})")
    att.set_ylabel("DCS speedup over ping-pong")
    att.legend(fontsize=7, ncol=2)
    for gb, ob in BUFFER_SIZES:
        pts = [
            (r["dimension"], r["dcs_vs_pingpong"])
            for r in rows
            if r["kernel"] == "gemv" and r["gb_entries"] == gb
        ]
        gemv.plot(*zip(*pts, strict=True), marker="o", label=f"GB {gb}, OBuf {ob}")
    gemv.set_xscale("log", base=2)
    gemv.set_xlabel("GEMV d (d x d)")
    gemv.legend(fontsize=8)
    for ax in (att, gemv):
        ax.axhline(1.0, color="grey", lw=0.8)
    fig.suptitle("pimphony repro: dcs-study (one channel, refresh on)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
