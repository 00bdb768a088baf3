"""Functional coverage of the DPA bench (cocotb-coverage), sampled per accepted host command.

:class:`DpaCoverage` looks at the reference :class:`pymodel.golden.dpa.DpaModel` just before a
command (the DUT accepted it) and just after, and samples the coverpoints below. ``make coverage``
writes their bins to YAML (``PIMPHONY_COVERAGE=<path>``) and ``tools/coverage.py`` turns that into
docs/coverage.md. Coverpoints (name ``dpa.<group>.<what>``):

* ``cmd.op_status``: every (op, status) pair that the spec allows (cross of op and status);
* ``oom.kind``: NO_MEMORY on OPEN / GROW, with the pool empty or with chunks rolled back;
* ``close.held``: CLOSE of a request holding 0, 1 or several chunks, and of the last open one;
* ``reuse.source``: an allocation served from the free stacks, from never-used chunks, or both;
* ``table.vrow``: TRANSLATE of the first / a middle / the last row of a chunk, the last row of
  the request, one past it (OUT_OF_RANGE), and a row of the request's last allowed chunk;
* ``table.grow``: GROW within the last chunk / across a chunk boundary / to the maximum length;
* ``pool.level``: the pool empty, full, or in between when a command arrives.
"""

from __future__ import annotations

from typing import Any

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from pymodel.golden.dpa import DpaModel, DpaStatus, HostOp, Response

OPS = [op.name for op in HostOp]
STATUSES = [s.name for s in DpaStatus if s is not DpaStatus.BAD_PROGRAM]  # (instructions only)
#: (op, status) pairs no command can produce (excluded from the cross).
IMPOSSIBLE = {
    ("OPEN", "UNKNOWN_REQUEST"),
    ("OPEN", "OUT_OF_RANGE"),
    ("GROW", "ALREADY_OPEN"),
    ("GROW", "TOO_MANY_REQUESTS"),
    ("GROW", "OUT_OF_RANGE"),
    ("CLOSE", "NO_MEMORY"),
    ("CLOSE", "ALREADY_OPEN"),
    ("CLOSE", "TOO_MANY_REQUESTS"),
    ("CLOSE", "TOO_LONG"),
    ("CLOSE", "OUT_OF_RANGE"),
    ("TRANSLATE", "NO_MEMORY"),
    ("TRANSLATE", "ALREADY_OPEN"),
    ("TRANSLATE", "TOO_MANY_REQUESTS"),
    ("TRANSLATE", "TOO_LONG"),
}
NA = "n/a"  # a command the coverpoint does not apply to (not a bin)


def _ctx_get(key: str) -> Any:
    return lambda ctx: ctx[key]


@CoverPoint("dpa.cmd.op", xf=_ctx_get("op"), bins=OPS)
@CoverPoint("dpa.cmd.status", xf=_ctx_get("status"), bins=STATUSES)
@CoverCross(
    "dpa.cmd.op_status", items=["dpa.cmd.op", "dpa.cmd.status"], ign_bins=sorted(IMPOSSIBLE)
)
@CoverPoint(
    "dpa.oom.kind",
    xf=_ctx_get("oom"),
    bins=["OPEN pool empty", "OPEN rollback", "GROW pool empty", "GROW rollback"],
)
@CoverPoint(
    "dpa.close.held",
    xf=_ctx_get("close"),
    bins=["0 chunks", "1 chunk", "several chunks", "last open request"],
)
@CoverPoint("dpa.reuse.source", xf=_ctx_get("reuse"), bins=["stack", "fresh", "both"])
@CoverPoint(
    "dpa.table.vrow",
    xf=_ctx_get("vrow"),
    bins=[
        "first row of a chunk",
        "middle row",
        "last row of a chunk",
        "last row of the request",
        "one past the end",
        "last allowed chunk",
    ],
)
@CoverPoint(
    "dpa.table.grow",
    xf=_ctx_get("grow"),
    bins=["within the last chunk", "across a chunk boundary", "to the maximum"],
)
@CoverPoint("dpa.pool.level", xf=_ctx_get("pool"), bins=["empty", "partly free", "full"])
def _sample(ctx: dict[str, Any]) -> None:
    """(all the work is in the decorators)"""


class DpaCoverage:
    """Samples one host command against the reference model: call :meth:`before` when the DUT
    accepts the command (before the model executes it), :meth:`after` with the model's
    response right after."""

    def __init__(self, model: DpaModel) -> None:
        self.m = model
        self.lay = model.lay
        self._pre: dict[str, Any] = {}

    def before(self, op: int, req: int, arg: int) -> None:
        m = self.m
        self._pre = {
            "free": m.free_chunks,
            "stacked": sum(len(s) for s in m.stacks),
            "fresh": sum(m.fresh),
            "held": len(m.chunks(req)) if m.is_open(req) else 0,
            "length": m.length(req) if m.is_open(req) else 0,
            "open": len(m.reqs),
            "rows": m.rows_used(req) if m.is_open(req) else 0,
        }

    def after(self, op: int, req: int, arg: int, resp: Response) -> None:
        m, lay, pre = self.m, self.lay, self._pre
        hop, st = HostOp(op), resp.status
        ctx: dict[str, Any] = {
            "op": hop.name,
            "status": st.name,
            "oom": NA,
            "close": NA,
            "reuse": NA,
            "vrow": NA,
            "grow": NA,
        }
        n = lay.num_chunks
        ctx["pool"] = (
            "empty" if pre["free"] == 0 else "full" if pre["free"] == n else ("partly free")
        )
        if st is DpaStatus.NO_MEMORY:
            ctx["oom"] = f"{hop.name} {'pool empty' if pre['free'] == 0 else 'rollback'}"
        if hop is HostOp.CLOSE and st is DpaStatus.OK:
            held = pre["held"]
            ctx["close"] = (
                "last open request"
                if pre["open"] == 1
                else "0 chunks"
                if held == 0
                else "1 chunk"
                if held == 1
                else "several chunks"
            )
        if hop in (HostOp.OPEN, HostOp.GROW) and st is DpaStatus.OK:
            from_stack = pre["stacked"] - sum(len(s) for s in m.stacks)
            from_fresh = sum(m.fresh) - pre["fresh"]
            if from_stack or from_fresh:
                ctx["reuse"] = (
                    "both" if from_stack and from_fresh else "stack" if from_stack else "fresh"
                )
        if hop is HostOp.GROW and st is DpaStatus.OK and arg > 0:
            new_len = m.length(req)
            ctx["grow"] = (
                "to the maximum"
                if new_len == lay.max_tokens
                else "across a chunk boundary"
                if len(m.chunks(req)) > pre["held"]
                else "within the last chunk"
            )
        if hop is HostOp.TRANSLATE and pre["rows"]:
            cr = lay.chunk_rows
            if st is DpaStatus.OUT_OF_RANGE and arg == pre["rows"]:
                ctx["vrow"] = "one past the end"
            elif st is DpaStatus.OK:
                ctx["vrow"] = (
                    "last allowed chunk"
                    if arg // cr == lay.max_chunks - 1
                    else "last row of the request"
                    if arg == pre["rows"] - 1
                    else "first row of a chunk"
                    if arg % cr == 0
                    else "last row of a chunk"
                    if arg % cr == cr - 1
                    else "middle row"
                )
        _sample(ctx)


def export(path: str) -> None:
    """Write every coverpoint's bins and hits (cocotb-coverage's YAML)."""
    coverage_db.export_to_yaml(filename=path)


def report(log: Any) -> None:
    coverage_db.report_coverage(log, bins=True)
