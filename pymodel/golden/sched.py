"""Cycle-level reference command schedulers for one channel: STATIC, PINGPONG and DCS.

This is the specification the RTL scheduler (``rtl/sched``) follows cycle for cycle. Timing is
never re-derived here: every decision asks the channel model (``Channel.probe``).

Intake. Instructions (WR_INP, MAC, RD_OUT, WR_BANK, WR_BIAS, RD_MAC) enter in program order, at
most one per cycle. Each goes to a queue: STATIC has one queue; PINGPONG and DCS have an I/O queue
(WR_INP, RD_OUT, WR_BIAS, RD_MAC) and a compute queue (MAC, WR_BANK). A queue holds
``buffers.queue_depth`` instructions. Instruction ``k`` is accepted at the first cycle ``c`` >=
its arrival and > the previous acceptance at which its queue has a free slot (a slot freed by an
issue at cycle ``p`` is free from ``p + 1``). An instruction accepted at ``c`` may issue its first
command at ``c + 1``.

Commands of an instruction (issued in order, from the queue head only):

* WR_INP n: ``WRGB gb+i`` with data GPR[gpr+i];
* MAC n: if the open row differs: ``PREA`` (when a row is open), ``ACT16 row``; then
  ``MAC16 col+i gb+i out``;
* WR_BIAS n (AiM): ``WRBIAS out+i`` with data GPR[gpr+i] (the accumulators' initial values);
* RD_MAC n (AiM): ``RDMAC out+i`` (data to GPR[gpr+i]);
* RD_OUT n (PIMphony's I/O-aware buffering): ``RDMAC out+i`` then ``CLRMAC out+i``;
* WR_BANK n (KV append, compute queue): unless ``bank`` has ``row`` open: ``PREA`` (when any row
  is open), ``ACT bank row``; then ``WR bank row col+i`` with data GPR[gpr+i].

The instruction leaves its queue at the cycle its last command issues.

Register-access mode (``timing.mode_switch``). When the command a head wants needs the other mode
(``Channel.needs_switch``), the scheduler issues a ``TMOD`` in its place, in the cycle that command
would be legal ignoring the mode (as the AiM controller does); the command itself follows nMODCH
later. TMOD does not advance the instruction.

Dependencies (PINGPONG, DCS). A WRGB/MAC16/RDMAC/CLRMAC/WRBIAS may issue only when no *older*
instruction in the other queue still has an unissued command touching the same buffer key: GB
entry and OBuf entry (DCS), or GB half and OBuf half (PINGPONG: buffers split in two halves).
ACT16/PREA/ACT/WR have no dependency. Completion of issued commands is a timing rule of the
channel (``gb:``/``out:``).

STATIC (the AiM controller). One queue, strictly in order; an instruction's first command also
waits until the previous instruction's last command has completed (``pymodel.timing.COMPLETION``,
the baseline's fixed gaps); with ``sched.blocking_rd_mac`` no command issues before an RDMAC's
data has returned plus one cycle (AiM's DMA-blocking RD_MAC).

Arbitration. Each cycle the scheduler issues at most one command. If a refresh is due
(``Channel.refresh_due``) it issues ``PREA`` (when a row is open; a TMOD first in register mode)
then ``REF`` as soon as legal and nothing else meanwhile; the compute head reopens its row
afterwards. Otherwise the candidates are the queue heads whose next command is dependency-free.
PINGPONG and DCS group I/O by *mode affinity*: while any candidate's command needs no mode switch,
only those candidates are considered (the scheduler waits for them rather than switch), so a
switch happens only when no dependency-free head of the current mode is left. Among the
considered candidates the one legal earliest issues; at a tie the older instruction wins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16
from pymodel.golden.channel import TMOD, Channel
from pymodel.isa import SCHEDULED_INSTS, Command, InstOp, Instruction, Op, TraceEntry
from pymodel.timing import COMPLETION


class Mode(Enum):
    STATIC = "static"
    PINGPONG = "pingpong"
    DCS = "dcs"


#: The RTL scheduler's ``mode_i`` code of each mode (``pim_pkg::SchedMode*``): declaration order.
MODE_CODE: dict[Mode, int] = {m: i for i, m in enumerate(Mode)}


IO, COMPUTE = 0, 1
CAUSES = (
    "mac",
    "act_pre",
    "ref",
    "gb_write",
    "bias_write",
    "out_read",
    "kv_write",
    "mode_switch",
    "stall",
)
_CAUSE_OF_OP = {
    Op.MAC16: "mac",
    Op.ACT16: "act_pre",
    Op.PREA: "act_pre",
    Op.ACT: "act_pre",
    Op.WR: "kv_write",
    Op.REF: "ref",
    Op.WRGB: "gb_write",
    Op.RDMAC: "out_read",
    Op.CLRMAC: "out_read",
    Op.WRBIAS: "bias_write",
    Op.TMOD: "mode_switch",
}
_CAUSE_OF_RULE_PREFIX = (
    ("nRCD", "act_pre"),
    ("nRAS", "act_pre"),
    ("nRP", "act_pre"),
    ("nRC", "act_pre"),
    ("nRTP", "act_pre"),
    ("nRRD", "act_pre"),
    ("nFAW", "act_pre"),
    ("nRFC", "ref"),
    ("nREFI", "ref"),
    ("gb:", "gb_write"),
    ("bus:WRGB", "gb_write"),
    ("out:WRBIAS", "bias_write"),
    ("bus:WRBIAS", "bias_write"),
    ("nCCDL_BIAS", "bias_write"),
    ("out:", "out_read"),
    ("bus:RDMAC", "out_read"),
    ("nCCDL_MAC", "mac"),
    ("nCCDS_RD", "mac"),
    ("nMODCH", "mode_switch"),
)


_ROW_OPS = frozenset({Op.ACT16, Op.PREA, Op.ACT})
_IO_INSTS = frozenset({InstOp.WR_INP, InstOp.RD_OUT, InstOp.WR_BIAS, InstOp.RD_MAC})
_OUT_INSTS = frozenset({InstOp.WR_BIAS, InstOp.RD_MAC})  # one OBuf entry per command
_DATA_CMDS = frozenset({Op.WRGB, Op.WR, Op.WRBIAS})  # write data from GPR[gpr + issued]


class SchedError(ValueError):
    """An instruction the scheduler cannot execute (e.g. DYN_LOOP before DPA expansion)."""


@dataclass
class _Slot:
    """One queued instruction and how many of its commands have issued."""

    seq: int
    inst: Instruction
    queue: int
    accepted: int
    issued: int = 0  # sub-commands issued (RD_OUT counts RDMAC and CLRMAC separately)

    @property
    def total(self) -> int:
        return self.inst.op_size * (2 if self.inst.op is InstOp.RD_OUT else 1)

    def pending_keys(self, pingpong_gb: int, pingpong_out: int) -> set[tuple[str, int]]:
        """Buffer keys still touched by unissued commands of this instruction."""
        inst, keys = self.inst, set()
        if inst.op is InstOp.WR_INP:
            keys = {("gb", inst.gb + i) for i in range(self.issued, inst.op_size)}
        elif inst.op is InstOp.MAC:
            keys = {("gb", inst.gb + i) for i in range(self.issued, inst.op_size)}
            if self.issued < inst.op_size:
                keys.add(("out", inst.out))
        elif inst.op is InstOp.RD_OUT:
            keys = {("out", inst.out + i) for i in range(self.issued // 2, inst.op_size)}
        elif inst.op in _OUT_INSTS:
            keys = {("out", inst.out + i) for i in range(self.issued, inst.op_size)}
        # WR_BANK (PREA/ACT/WR) touches no GB or OBuf entry: no keys.
        if pingpong_gb:
            keys = {(k, v // (pingpong_gb if k == "gb" else pingpong_out)) for k, v in keys}
        return keys


@dataclass
class SchedStats:
    cycles: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    causes: Counter[str] = field(default_factory=Counter)
    mac_utilization: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "cycles": self.cycles,
            "mac_utilization": self.mac_utilization,
            "commands": dict(self.commands),
            "cycles_by_cause": {c: self.causes.get(c, 0) for c in CAUSES},
        }


@dataclass
class SchedResult:
    trace: list[TraceEntry]
    accepted: list[int]  # acceptance cycle of each instruction
    stats: SchedStats
    gpr: dict[int, U16]


def _check_program(program: Sequence[Instruction], arrivals: Sequence[int] | None) -> None:
    for k, inst in enumerate(program):
        if inst.op not in SCHEDULED_INSTS:
            raise SchedError(
                f"instruction {k}: {inst.op.name} must be expanded by the DPA before scheduling"
            )
    if arrivals is not None and len(arrivals) != len(program):
        raise SchedError(f"{len(arrivals)} arrival cycles for {len(program)} instructions")


class _Intake:
    """Program-order acceptance into the queues (module docstring, Intake)."""

    def __init__(
        self,
        program: Sequence[Instruction],
        arrivals: Sequence[int] | None,
        start_cycle: int,
        depth: int,
        n_queues: int,
    ) -> None:
        self.program, self.arrivals, self.start_cycle, self.depth = (
            program,
            arrivals,
            start_cycle,
            depth,
        )
        self.queues: list[list[_Slot]] = [[] for _ in range(n_queues)]
        self.free_at = [[start_cycle] * depth for _ in range(n_queues)]  # per-slot free cycle
        self.accepted: list[int] = []  # acceptance cycle of each instruction
        self.next_inst, self.last_accept = 0, start_cycle - 1

    def _queue_of(self, inst: Instruction) -> int:
        if len(self.queues) == 1:
            return 0
        return IO if inst.op in _IO_INSTS else COMPUTE

    def accept_before(self, best: int | None) -> bool:
        """Accept the next instruction if that happens before the best command's issue cycle
        ``best`` (None: no command can issue); True when one was accepted."""
        if self.next_inst >= len(self.program):
            return False
        inst = self.program[self.next_inst]
        qi = self._queue_of(inst)
        if len(self.queues[qi]) >= self.depth:
            return False
        arrive = self.start_cycle if self.arrivals is None else self.arrivals[self.next_inst]
        slot_free = min(self.free_at[qi])
        acc = max(arrive, self.last_accept + 1, slot_free)
        if self.arrivals is not None:
            acc = max(arrive, self.last_accept + 1)  # the DUT's acceptance cycle is given
        if not (best is None or acc + 1 <= best or acc < best):
            return False
        self.free_at[qi].remove(slot_free)
        self.queues[qi].append(_Slot(self.next_inst, inst, qi, acc))
        self.accepted.append(acc)
        self.last_accept = acc
        self.next_inst += 1
        return True

    def retire(self, slot: _Slot, at: int) -> None:
        """``slot``'s last command issued at ``at``: it leaves its queue, its slot is free
        from ``at + 1``."""
        self.queues[slot.queue].pop(0)
        self.free_at[slot.queue].append(at + 1)


class Scheduler:
    """Run one channel's instruction stream under a scheduling mode (see module docstring)."""

    def __init__(self, cfg: PimConfig, mode: Mode, channel: Channel | None = None) -> None:
        self.cfg, self.mode = cfg, mode
        self.ch = channel or Channel(cfg)
        t = cfg.timing
        self._completion = {op: f(t) for op, f in COMPLETION.items()}
        half_gb = max(1, cfg.buffers.gb_entries // 2)
        half_out = max(1, cfg.buffers.obuf_entries // 2)
        self._pp = (half_gb, half_out) if mode is Mode.PINGPONG else (0, 0)
        self._zero = (0,) * cfg.geometry.lanes

    # ------------------------------------------------------------------ command selection

    def _next_command(self, slot: _Slot) -> Command:
        inst, k = slot.inst, slot.issued
        if inst.op is InstOp.WR_INP:
            return Command(Op.WRGB, gb=inst.gb + k, data=self._zero)  # data filled at issue
        if inst.op is InstOp.RD_OUT:
            op = Op.RDMAC if k % 2 == 0 else Op.CLRMAC
            return Command(op, out=inst.out + k // 2)
        if inst.op is InstOp.RD_MAC:
            return Command(Op.RDMAC, out=inst.out + k)
        if inst.op is InstOp.WR_BIAS:
            return Command(Op.WRBIAS, out=inst.out + k, data=self._zero)  # data filled at issue
        rows = self.ch.open_row
        if inst.op is InstOp.WR_BANK:
            if rows[inst.bank] != inst.row:
                if any(r is not None for r in rows):
                    return Command(Op.PREA)
                return Command(Op.ACT, bank=inst.bank, row=inst.row)
            return Command(Op.WR, bank=inst.bank, row=inst.row, col=inst.col + k, data=self._zero)
        if rows[0] != inst.row or any(r != rows[0] for r in rows):
            if any(r is not None for r in rows):
                return Command(Op.PREA)
            return Command(Op.ACT16, row=inst.row)
        return Command(Op.MAC16, col=inst.col + k, gb=inst.gb + k, out=inst.out)

    def _blocked(self, slot: _Slot, cmd: Command, queues: list[list[_Slot]]) -> bool:
        """True when an older instruction of the other queue still touches cmd's buffers."""
        if self.mode is Mode.STATIC or cmd.op in _ROW_OPS or cmd.op is Op.WR:
            return False
        keys: set[tuple[str, int]] = set()
        if cmd.op in (Op.WRGB, Op.MAC16):
            keys.add(("gb", cmd.gb))
        if cmd.op in (Op.MAC16, Op.RDMAC, Op.CLRMAC, Op.WRBIAS):
            keys.add(("out", cmd.out))
        if self.mode is Mode.PINGPONG:
            gb_half, out_half = self._pp
            keys = {(k, v // (gb_half if k == "gb" else out_half)) for k, v in keys}
        other = queues[1 - slot.queue]
        for older in other:
            if older.seq > slot.seq:
                break
            if keys & older.pending_keys(*self._pp):
                return True
        return False

    def _with_data(self, cmd: Command, slot: _Slot, gpr: dict[int, U16]) -> Command:
        """``cmd`` with its write data from GPR[gpr + issued] (zeros where never written)."""
        if cmd.op not in _DATA_CMDS:
            return cmd
        data = gpr.get(slot.inst.gpr + slot.issued)
        return replace(cmd, data=self._zero if data is None else tuple(int(v) for v in data))

    # ------------------------------------------------------------------ main loop

    def run(
        self,
        program: Sequence[Instruction],
        gpr: dict[int, U16] | None = None,
        arrivals: Sequence[int] | None = None,
        start_cycle: int = 0,
    ) -> SchedResult:
        """Schedule ``program``; ``arrivals[k]`` is the earliest acceptance cycle of instruction
        ``k`` (default: all available at ``start_cycle``). ``gpr`` supplies WR_INP data and
        receives RD_OUT results."""
        _check_program(program, arrivals)
        gpr = {} if gpr is None else gpr
        ch = self.ch
        intake = _Intake(
            program,
            arrivals,
            start_cycle,
            self.cfg.buffers.queue_depth,
            1 if self.mode is Mode.STATIC else 2,
        )
        trace: list[TraceEntry] = []
        stats = SchedStats()
        now = start_cycle  # nothing issues before this cycle
        last_issue = start_cycle - 1
        barrier = start_cycle  # STATIC: earliest start of the next instruction
        hold = start_cycle  # STATIC with blocking RD_MAC: nothing issues before this cycle
        blocking = self.mode is Mode.STATIC and self.cfg.sched.blocking_rd_mac
        n_done = 0
        while n_done < len(program):
            best = self._best_candidate(intake.queues, max(now, hold), barrier)
            if intake.accept_before(None if best is None else best[0]):
                continue
            if best is None:
                raise SchedError("deadlock: no command can issue")  # pragma: no cover
            at, _, slot, cmd = best
            if ch.next_refresh_due <= at:
                self._refresh(max(now, ch.next_refresh_due), trace, stats, last_issue)
                last_issue = trace[-1].cycle
                now = last_issue + 1
                continue
            cmd = self._with_data(cmd, slot, gpr)
            result = self._issue(cmd, at, trace, stats, last_issue)
            last_issue, now = at, at + 1
            if cmd.op in _ROW_OPS or cmd.op is Op.TMOD:
                continue  # the instruction has not advanced
            if cmd.op is Op.RDMAC:
                assert result is not None
                k = slot.issued // 2 if slot.inst.op is InstOp.RD_OUT else slot.issued
                gpr[slot.inst.gpr + k] = result
                if blocking:
                    hold = at + self._completion[Op.RDMAC] + 1
            slot.issued += 1
            if slot.issued == slot.total:
                intake.retire(slot, at)
                n_done += 1
                barrier = at + self._completion[cmd.op]
        self._finish(stats, trace, start_cycle)
        return SchedResult(trace, intake.accepted, stats, gpr)

    def _finish(self, stats: SchedStats, trace: list[TraceEntry], start_cycle: int) -> None:
        stats.cycles = (trace[-1].cycle + 1 - start_cycle) if trace else 0
        macs = stats.commands.get("MAC16", 0)
        peak = stats.cycles / self.cfg.timing.nCCDL
        stats.mac_utilization = macs / peak if peak else 0.0

    def _best_candidate(
        self, queues: list[list[_Slot]], now: int, barrier: int
    ) -> tuple[int, int, _Slot, Command] | None:
        """The command to issue next and its cycle: (cycle, age, head, command), see Arbitration.
        A head whose command needs the other mode offers a TMOD instead."""
        best = best_same_mode = None
        for q in queues:
            if not q:
                continue
            slot = q[0]
            cmd = self._next_command(slot)
            if self._blocked(slot, cmd, queues):
                continue
            earliest = max(now, slot.accepted + 1)
            if self.mode is Mode.STATIC and slot.issued == 0:
                earliest = max(earliest, barrier)
            at = self.ch.probe(cmd, earliest, check_mode=False)
            switch = self.ch.needs_switch(cmd.op)
            cand = (at, slot.seq, slot, Command(Op.TMOD) if switch else cmd)
            if best is None or cand[:2] < best[:2]:
                best = cand
            if not switch and (best_same_mode is None or cand[:2] < best_same_mode[:2]):
                best_same_mode = cand
        return best_same_mode or best

    def _refresh(
        self, at: int, trace: list[TraceEntry], stats: SchedStats, last_issue: int
    ) -> None:
        if any(r is not None for r in self.ch.open_row):
            pre = Command(Op.PREA)
            tmod = self.ch.tmod_cycle(pre, at)
            if tmod is not None:
                self._issue(TMOD, tmod, trace, stats, last_issue)
                last_issue, at = tmod, tmod + 1
            at = self.ch.probe(pre, at)
            self._issue(pre, at, trace, stats, last_issue)
            last_issue, at = at, at + 1
        ref = Command(Op.REF)
        self._issue(ref, self.ch.probe(ref, at), trace, stats, last_issue)

    def _issue(
        self, cmd: Command, at: int, trace: list[TraceEntry], stats: SchedStats, last_issue: int
    ) -> U16 | None:
        gap = at - last_issue
        if gap > 1:
            cause = self._cause(cmd, at)
            stats.causes[cause] += gap - 1
        stats.causes[_CAUSE_OF_OP[cmd.op]] += 1
        result = self.ch.issue(cmd, at)
        trace.append(TraceEntry(at, cmd))
        stats.commands[cmd.op.name] += 1
        return result

    def _cause(self, cmd: Command, at: int) -> str:
        """What the idle cycles before ``cmd`` waited for: its binding timing rule, else a
        dependency or the intake (stall)."""
        rule, earliest = self.ch.binding_rule(cmd)
        if earliest < at:
            return "stall"
        for prefix, cause in _CAUSE_OF_RULE_PREFIX:
            if rule.startswith(prefix):
                return cause
        return _CAUSE_OF_OP[cmd.op]


def run_kernel(
    cfg: PimConfig,
    mode: Mode,
    program: Sequence[Instruction],
    rows: dict[int, U16] | None = None,
    gpr: dict[int, U16] | None = None,
) -> SchedResult:
    """Schedule ``program`` on a fresh channel preloaded with ``rows``."""
    ch = Channel(cfg)
    for row, data in (rows or {}).items():
        ch.load_row(row, data)
    return Scheduler(cfg, mode, ch).run(program, dict(gpr or {}))


def gpr_equal(expected: dict[int, U16], got: dict[int, U16]) -> list[int]:
    """GPR entries whose contents differ (missing entries count as different)."""
    return [k for k, v in expected.items() if k not in got or not np.array_equal(got[k], v)]


def iter_modes(names: Iterable[str]) -> list[Mode]:
    return [Mode(n) for n in names]
