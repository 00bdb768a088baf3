"""Scoreboards for the RTL command scheduler (``rtl/sched/pim_sched.sv``); plain Python.

* :class:`SchedCycleScoreboard` - lockstep check against :class:`pymodel.golden.sched.Scheduler`.
The
  bench's input monitor calls :meth:`~SchedCycleScoreboard.accept` with every instruction the DUT
  accepted and its acceptance cycle; the command-bus monitor calls
  :meth:`~SchedCycleScoreboard.observe` with every command in *model* cycles (bus cycle minus
  :data:`BUS_OFFSET`). :meth:`~SchedCycleScoreboard.check` runs the reference on exactly that
  program with those acceptance cycles (``Scheduler.run(..., arrivals=...)``) and requires the
  same commands (including write data) at the same cycles; the first difference raises
  :class:`SchedMismatch` naming the cycle. After the reference's last command the DUT may only
  keep refreshing (PREA/REF): the reference stops with the program, the hardware does not.
* :class:`GprScoreboard` - the GPR results (written through the DUT's return path) against
  bit-exact expected data (``pymodel.golden.kernels`` ``.data(rng).expected`` or the reference's
  GPR).
* :class:`SchedLockstep` - the same lockstep check over a *session* of programs on one channel
  (the module co-simulation, ``tb/top``): the reference channel and its refresh count persist
  between programs, each program is checked when the bench has drained it, and refresh commands
  the DUT issues while idle are applied to the reference channel.
* :class:`BusChannel` - the golden channel behind the command bus: decodes words, issues them to
  :class:`pymodel.golden.channel.Channel` (which raises on any timing or state violation) and
  returns the RDMAC data; it also counts, per timing rule, the commands it bound exactly (ties
  included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16
from pymodel.golden.channel import Channel
from pymodel.golden.sched import Mode, SchedResult, Scheduler
from pymodel.isa import Command, Instruction, Op, TraceEntry, decode
from pymodel.timing import CMD_BUS_RULE

#: The RTL registers its command output: bus cycle = model (decision) cycle + BUS_OFFSET.
BUS_OFFSET = 1
_REFRESH_OPS = frozenset({Op.PREA, Op.REF, Op.TMOD})  # TMOD: a refresh from register mode


class SchedMismatch(AssertionError):
    """The DUT's command stream differs from the reference scheduler's."""


class GprMismatch(AssertionError):
    """A GPR entry written by the DUT differs from the expected data."""


def lanes_to_int(lanes: Sequence[int]) -> int:
    """16 bf16 lanes -> the 256-bit bus value (lane 0 in the low bits)."""
    v = 0
    for i, x in enumerate(lanes):
        v |= int(x) << (16 * i)
    return v


def int_to_lanes(value: int, n: int) -> tuple[int, ...]:
    return tuple((value >> (16 * i)) & 0xFFFF for i in range(n))


@dataclass
class SchedCycleScoreboard:
    cfg: PimConfig
    mode: Mode
    rows: dict[int, U16] = field(default_factory=dict)
    gpr: dict[int, U16] = field(default_factory=dict)  # WR_INP/WR_BANK source data
    program: list[Instruction] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)
    observed: list[TraceEntry] = field(default_factory=list)
    result: SchedResult | None = None
    trailing_refresh: int = 0

    def accept(self, cycle: int, inst: Instruction) -> None:
        if self.arrivals and cycle <= self.arrivals[-1]:
            raise SchedMismatch(
                f"cycle {cycle}: instruction accepted at or before the previous acceptance "
                f"(cycle {self.arrivals[-1]})"
            )
        self.program.append(inst)
        self.arrivals.append(cycle)

    def observe(self, cycle: int, cmd: Command) -> None:
        if self.observed and cycle <= self.observed[-1].cycle:
            raise SchedMismatch(f"cycle {cycle}: two commands in one cycle or out of order")
        self.observed.append(TraceEntry(cycle, cmd))

    def reference(self) -> SchedResult:
        ch = Channel(self.cfg)
        for row, data in self.rows.items():
            ch.load_row(row, data)
        sched = Scheduler(self.cfg, self.mode, ch)
        return sched.run(self.program, dict(self.gpr), arrivals=self.arrivals)

    def check(self) -> SchedResult:
        """Compare the whole run; raises :class:`SchedMismatch` at the first difference."""
        if not self.program:
            raise SchedMismatch("cycle scoreboard saw no accepted instruction")
        if not self.observed:
            raise SchedMismatch("cycle scoreboard saw no command on the bus")
        res = self.reference()
        self.result = res
        exp, got = res.trace, self.observed
        for i, e in enumerate(exp):
            if i >= len(got):
                raise SchedMismatch(
                    f"cycle {e.cycle}: expected {e.cmd} (command #{i}) but the DUT issued "
                    f"nothing more ({len(got)} commands)"
                )
            g = got[i]
            if (g.cycle, g.cmd) != (e.cycle, e.cmd):
                cyc = min(g.cycle, e.cycle)
                raise SchedMismatch(
                    f"cycle {cyc}: command #{i}: DUT {g.cmd} at cycle {g.cycle}, "
                    f"reference {e.cmd} at cycle {e.cycle}"
                )
        extra = got[len(exp) :]
        for g in extra:
            if g.cmd.op not in _REFRESH_OPS:
                raise SchedMismatch(
                    f"cycle {g.cycle}: DUT issued {g.cmd} after the reference finished"
                )
        self.trailing_refresh = len(extra)
        return res

    def summary(self) -> str:
        n = len(self.result.trace) if self.result else 0
        cyc = self.result.stats.cycles if self.result else 0
        return (
            f"{len(self.program)} instructions, {n} commands in lockstep over {cyc} cycles "
            f"(+{self.trailing_refresh} trailing refresh commands)"
        )


class SchedLockstep:
    """Lockstep of one channel's scheduler over a session of programs (see the module doc).

    Per program: :meth:`begin` (the GPR contents its WR_INP/WR_BANK read), :meth:`accept` /
    :meth:`observe` from the monitors, :meth:`check` once the DUT is idle. The reference
    ``Scheduler`` runs on a persistent :class:`Channel` (rows loaded with :meth:`load_row`),
    starting at the program's first acceptance cycle with the DUT's acceptance cycles.
    """

    def __init__(self, cfg: PimConfig, mode: Mode, name: str = "") -> None:
        self.cfg, self.mode, self.name = cfg, mode, name
        self.ch = Channel(cfg)
        self.sched = Scheduler(cfg, mode, self.ch)
        self.gpr: dict[int, U16] = {}
        self.program: list[Instruction] = []
        self.arrivals: list[int] = []
        self.observed: list[TraceEntry] = []
        self.programs = self.instructions = self.commands = self.idle_refresh = 0

    def load_row(self, row: int, data: U16) -> None:
        self.ch.load_row(row, data)

    def begin(self, gpr: dict[int, U16]) -> None:
        self.gpr = dict(gpr)

    def accept(self, cycle: int, inst: Instruction) -> None:
        if self.arrivals and cycle <= self.arrivals[-1]:
            raise SchedMismatch(f"{self.name} cycle {cycle}: two acceptances in one cycle")
        self.program.append(inst)
        self.arrivals.append(cycle)

    def observe(self, cycle: int, cmd: Command) -> None:
        # Idle between programs: only refresh, applied to the reference. A program's commands
        # issue after its first acceptance, so a refresh decided in that same cycle (the monitors
        # may report the acceptance first) is still an idle one.
        if not self.program or cycle <= self.arrivals[0]:
            if cmd.op not in _REFRESH_OPS:
                raise SchedMismatch(f"{self.name} cycle {cycle}: {cmd} with no instruction")
            self.ch.issue(cmd, cycle)
            self.idle_refresh += 1
            return
        if self.observed and cycle <= self.observed[-1].cycle:
            raise SchedMismatch(f"{self.name} cycle {cycle}: two commands in one cycle")
        self.observed.append(TraceEntry(cycle, cmd))

    def check(self) -> SchedResult | None:
        """Compare the program accepted since the last check; raises at the first difference."""
        if not self.program:
            return None
        res = self.sched.run(
            self.program, self.gpr, arrivals=self.arrivals, start_cycle=self.arrivals[0]
        )
        exp, got = res.trace, self.observed
        for i, e in enumerate(exp):
            if i >= len(got):
                raise SchedMismatch(
                    f"{self.name} cycle {e.cycle}: expected {e.cmd} (command #{i} of the program) "
                    f"but the DUT issued nothing more ({len(got)} commands)"
                )
            g = got[i]
            if (g.cycle, g.cmd) != (e.cycle, e.cmd):
                raise SchedMismatch(
                    f"{self.name} cycle {min(g.cycle, e.cycle)}: command #{i} of the program: "
                    f"DUT {g.cmd} at cycle {g.cycle}, reference {e.cmd} at cycle {e.cycle}"
                )
        for g in got[len(exp) :]:
            if g.cmd.op not in _REFRESH_OPS:
                raise SchedMismatch(
                    f"{self.name} cycle {g.cycle}: DUT issued {g.cmd} after the reference finished"
                )
            self.ch.issue(g.cmd, g.cycle)  # the hardware keeps refreshing; so must the reference
        self.programs += 1
        self.instructions += len(self.program)
        self.commands += len(got)
        self.program, self.arrivals, self.observed = [], [], []
        return res


@dataclass
class GprScoreboard:
    expected: dict[int, U16]
    written: dict[int, U16] = field(default_factory=dict)
    n_writes: int = 0

    def write(self, addr: int, lanes: Sequence[int]) -> None:
        self.written[addr] = np.asarray(lanes, dtype=np.uint16)
        self.n_writes += 1

    def check(self) -> None:
        if not self.expected:
            raise GprMismatch("GPR scoreboard has no expected data")
        if self.n_writes == 0:
            raise GprMismatch("GPR scoreboard saw no write")
        for addr in sorted(self.expected):
            exp = np.asarray(self.expected[addr], dtype=np.uint16)
            got = self.written.get(addr)
            if got is None:
                raise GprMismatch(f"GPR[{addr}] was never written (expected {_hex(exp)})")
            if not np.array_equal(got, exp):
                lane = int(np.flatnonzero(got != exp)[0])
                raise GprMismatch(
                    f"GPR[{addr}] lane {lane}: got 0x{int(got[lane]):04x} expected "
                    f"0x{int(exp[lane]):04x} (got {_hex(got)}, expected {_hex(exp)})"
                )


def _hex(v: U16) -> str:
    return "".join(f"{int(x):04x}" for x in v)


class BusChannel:
    """The memory behind the command bus (raises on any illegal or mistimed command)."""

    def __init__(self, cfg: PimConfig, rows: dict[int, U16] | None = None) -> None:
        self.cfg = cfg
        self.ch = Channel(cfg)
        for row, data in (rows or {}).items():
            self.ch.load_row(row, data)
        self.counts: Counter[str] = Counter()
        self.binding: Counter[str] = Counter()  # rule that set a command's earliest cycle
        self.last_binding: tuple[str, ...] = ()  # the rules that did for the last command

    def command(self, cycle: int, word: int, data: int) -> tuple[Command, U16 | None]:
        """Decode and issue the bus word seen at model ``cycle``; returns (command, RDMAC data)."""
        lanes = int_to_lanes(data, self.cfg.geometry.lanes)
        cmd = decode(word, self.cfg, lanes)
        bounds = self.ch._bounds(cmd)  # every (rule, earliest) pair, ties included
        self.last_binding = tuple(
            rule for rule, earliest in bounds if earliest == cycle and rule != CMD_BUS_RULE
        )
        self.binding.update(self.last_binding)
        result = self.ch.issue(cmd, cycle)
        self.counts[cmd.op.name] += 1
        return cmd, result
