"""Functional coverage of the pim_sched bench (cocotb-coverage).

:class:`SchedCoverage` is fed by the bench's BFM and bus agent: every accepted instruction, every
command on the bus (with the timing rules that bound it, from the golden channel's timing table:
``scoreboards.cmd_sched.BusChannel.last_binding``) and the queue state of every cycle (the DUT's
``full`` / ``empty`` flags and the instruction stream's stalls). ``make coverage`` writes the bins
to YAML (``PIMPHONY_COVERAGE=<path>``); ``tools/coverage.py`` merges the runs into
docs/coverage.md. Coverpoints (name ``sched.<group>.<what>``):

* ``rule.binding``: every timing rule that can hold back a command the scheduler issues (its
  commands are :data:`SCHED_OPS`; a rule counts when it set the command's earliest legal cycle
  and the command issued exactly then, ties included), and the nFAW window;
* ``inst.op_mode``: instruction type x scheduler mode (cross of ``inst.op`` and ``inst.mode``),
  per accepted instruction;
* ``queue.level``: each queue (I/O, compute) empty, partly full and full (sampled on change);
* ``queue.backpressure``: an instruction held at the input because its queue is full (I/O or
  compute queue), sampled when the stall starts;
* ``refresh.context``: each REF by where it falls (between two MAC16s, i.e. inside a MAC burst,
  with only the refresh's PREA / TMOD and the row's re-opening ACT16 between them, or
  elsewhere) x whether a queue was full when it issued (cross of ``refresh.mac_burst`` and
  ``refresh.queue_full``), sampled at the first command after it that is not one of those.
"""

from __future__ import annotations

from typing import Any

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from pymodel.golden.sched import Mode
from pymodel.isa import INST_OPCODE_BITS, Command, InstOp, Instruction, Op
from pymodel.timing import FAW_RULE, RULES, applies

#: The commands pim_sched issues (sched_cmd_gen and sched_refresh): rows through ACT16 / ACT and
#: PREA, MAC16, the single-bank WR of WR_BANK, WRGB / WRBIAS / RDMAC / CLRMAC, TMOD and REF.
#: It never issues RD or PRE (reads go through RDMAC, rows close with PREA).
SCHED_OPS = frozenset(
    {
        Op.ACT16,
        Op.ACT,
        Op.PREA,
        Op.MAC16,
        Op.WR,
        Op.WRGB,
        Op.WRBIAS,
        Op.RDMAC,
        Op.CLRMAC,
        Op.TMOD,
        Op.REF,
    }
)
#: The HUB instructions pim_sched executes (DYN_* and APPEND are expanded upstream, in dpa_ctrl).
SCHED_INSTS = [
    InstOp.WR_INP,
    InstOp.MAC,
    InstOp.RD_OUT,
    InstOp.WR_BANK,
    InstOp.WR_BIAS,
    InstOp.RD_MAC,
]
_IO_INSTS = frozenset({InstOp.WR_INP, InstOp.RD_OUT, InstOp.WR_BIAS, InstOp.RD_MAC})
_REFRESH_OPS = frozenset({Op.PREA, Op.REF, Op.TMOD})  # what a refresh may issue around its REF
QUEUES = ("I/O", "compute")
LEVELS = ("empty", "partly full", "full")


def reachable_rules() -> list[str]:
    """Rules of the timing table that constrain some pair of :data:`SCHED_OPS` (either OBuf
    porting), then nFAW: the bins of ``rule.binding``."""
    names = [
        r.name
        for r in RULES
        if any(
            applies(r, p, n, dp)
            for p in r.prev & SCHED_OPS
            for n in r.next & SCHED_OPS
            for dp in (False, True)
        )
    ]
    return names + [FAW_RULE]


def unreachable_rules() -> list[str]:
    """Rules no pair of the scheduler's commands is subject to (not bins; named in the report)."""
    reach = set(reachable_rules())
    return [r.name for r in RULES if r.name not in reach]


def _get(key: str) -> Any:
    return lambda ctx: ctx[key]


@CoverPoint("sched.rule.binding", xf=lambda rule: rule, bins=reachable_rules())
def _sample_rule(rule: str) -> None:
    """(all the work is in the decorators)"""


@CoverPoint("sched.inst.op", xf=_get("op"), bins=[op.name for op in SCHED_INSTS])
@CoverPoint("sched.inst.mode", xf=_get("mode"), bins=[m.value for m in Mode])
@CoverCross("sched.inst.op_mode", items=["sched.inst.op", "sched.inst.mode"])
def _sample_inst(ctx: dict[str, Any]) -> None:
    """(all the work is in the decorators)"""


@CoverPoint(
    "sched.queue.level",
    xf=lambda q, level: f"{q} {level}",
    bins=[f"{q} {lv}" for q in QUEUES for lv in LEVELS],
)
def _sample_level(q: str, level: str) -> None:
    """(all the work is in the decorators)"""


@CoverPoint(
    "sched.queue.backpressure",
    xf=lambda q: f"{q} queue full",
    bins=[f"{q} queue full" for q in QUEUES],
)
def _sample_stall(q: str) -> None:
    """(all the work is in the decorators)"""


@CoverPoint("sched.refresh.mac_burst", xf=_get("burst"), bins=["between MAC16s", "elsewhere"])
@CoverPoint("sched.refresh.queue_full", xf=_get("full"), bins=["a queue full", "no queue full"])
@CoverCross("sched.refresh.context", items=["sched.refresh.mac_burst", "sched.refresh.queue_full"])
def _sample_refresh(ctx: dict[str, Any]) -> None:
    """(all the work is in the decorators)"""


class SchedCoverage:
    """Samples one run (one scheduler mode): :meth:`inst` per accepted instruction,
    :meth:`command` per bus command, :meth:`cycle` per clock cycle."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._levels: tuple[str, str] | None = None
        self._stalled = False
        self._last_op: Op | None = None  # last non-refresh command
        self._ref_ctx: dict[str, Any] | None = None  # a REF waiting for its next command
        self._full = False

    def queue_of(self, op: InstOp) -> str:
        """The queue an instruction goes to (as pymodel.golden.sched: STATIC uses queue 0 only)."""
        return QUEUES[0] if self.mode is Mode.STATIC or op in _IO_INSTS else QUEUES[1]

    def inst(self, inst: Instruction) -> None:
        _sample_inst({"op": inst.op.name, "mode": self.mode.value})

    def command(self, cmd: Command, binding: tuple[str, ...]) -> None:
        for rule in binding:
            _sample_rule(rule)
        if cmd.op is Op.REF:
            self._ref_ctx = {
                "after_mac": self._last_op is Op.MAC16,
                "full": "a queue full" if self._full else "no queue full",
            }
        elif cmd.op not in _REFRESH_OPS and not (self._ref_ctx and cmd.op is Op.ACT16):
            if self._ref_ctx is not None:
                burst = self._ref_ctx["after_mac"] and cmd.op is Op.MAC16
                _sample_refresh(
                    {
                        "burst": "between MAC16s" if burst else "elsewhere",
                        "full": self._ref_ctx["full"],
                    }
                )
                self._ref_ctx = None
            self._last_op = cmd.op

    def cycle(self, full: int, empty: int, stalled: int | None) -> None:
        """The queues' full / empty flags (bit q = queue q) and the instruction word held at the
        input this cycle (None: no stall)."""
        self._full = bool(full)
        levels = tuple(
            "full" if full >> q & 1 else "empty" if empty >> q & 1 else "partly full"
            for q in range(2)
        )
        if levels != self._levels:
            for q, lv in enumerate(levels):
                if self._levels is None or lv != self._levels[q]:
                    _sample_level(QUEUES[q], lv)
            self._levels = (levels[0], levels[1])
        if stalled is not None and not self._stalled:  # the opcode sits in the word's low bits
            _sample_stall(self.queue_of(InstOp(stalled & ((1 << INST_OPCODE_BITS) - 1))))
        self._stalled = stalled is not None


def export(path: str) -> None:
    """Write every coverpoint's bins and hits (cocotb-coverage's YAML)."""
    coverage_db.export_to_yaml(filename=path)
