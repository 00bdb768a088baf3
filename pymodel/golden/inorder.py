"""The simplest legal controller: commands strictly in program order, each at its earliest cycle.

It asks the channel model (``probe``) for every cycle instead of re-deriving timing, inserts an
all-bank refresh as soon as one is due (closing the open rows first and reopening them after), so
refresh is never postponed, and, like the AiM controller, a TMOD whenever the next command needs
the other register-access mode, issued in the cycle that command would be ready. The reference
schedulers of ``pymodel.golden.sched`` build on the same idea.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16
from pymodel.golden.channel import TMOD, Channel
from pymodel.isa import Command, InstOp, Instruction, Op, TraceEntry


@dataclass
class CommandStats:
    """Observer counting commands per opcode and the span of cycles they occupy."""

    counts: dict[Op, int] = field(default_factory=lambda: {op: 0 for op in Op})
    first_cycle: int | None = None
    last_cycle: int = 0

    def __call__(self, cycle: int, cmd: Command, result: U16 | None) -> None:
        self.counts[cmd.op] += 1
        if self.first_cycle is None:
            self.first_cycle = cycle
        self.last_cycle = cycle

    def mac_utilization(self, n_ccdl: int, total_cycles: int) -> float:
        """Issued MAC16 slots over the peak (one MAC16 every nCCDL cycles)."""
        peak = total_cycles / n_ccdl
        return self.counts[Op.MAC16] / peak if peak else 0.0


@dataclass
class TraceRecorder:
    """Observer recording the issued command trace."""

    entries: list[TraceEntry] = field(default_factory=list)

    def __call__(self, cycle: int, cmd: Command, result: U16 | None) -> None:
        self.entries.append(TraceEntry(cycle, cmd))


_REF = Op.REF  # a module constant: faster than the enum attribute, once per command


class InOrderIssuer:
    """Issue a command stream in order on one channel, refreshing on time."""

    def __init__(self, channel: Channel, start_cycle: int = 0) -> None:
        self.ch = channel
        self.cycle = start_cycle  # no command may issue before this cycle

    def _issue_now(self, cmd: Command) -> U16 | None:
        ch = self.ch
        tmod = ch.tmod_cycle(cmd, self.cycle)
        if tmod is not None:
            ch.issue(TMOD, tmod)
            self.cycle = tmod + 1
        at = ch.probe(cmd, self.cycle)  # after issue()'s probe of cmd: the channel's memo
        result = ch.issue(cmd, at)
        self.cycle = at + 1
        return result

    def refresh(self) -> None:
        """Close open rows, REF, and reopen the same rows."""
        rows = list(self.ch.open_row)
        if any(r is not None for r in rows):
            self._issue_now(Command(Op.PREA))
        self._issue_now(Command(Op.REF))
        if rows[0] is not None and all(r == rows[0] for r in rows):
            self._issue_now(Command(Op.ACT16, row=rows[0]))
        else:
            for bank, row in enumerate(rows):
                if row is not None:
                    self._issue_now(Command(Op.ACT, bank=bank, row=row))

    def issue(self, cmd: Command) -> U16 | None:
        ch = self.ch
        if cmd.op is _REF:
            return self._issue_now(cmd)
        at = ch.probe(cmd, self.cycle, False)  # check_mode=False (positional: once per command)
        if at >= ch.next_refresh_due:  # ch.refresh_due(at), in line
            self.refresh()
        elif not ch.needs_switch(cmd.op):  # the common case: cmd issues where probed
            result = ch.issue(cmd, at)
            self.cycle = at + 1
            return result
        return self._issue_now(cmd)

    def run(self, cmds: Iterable[Command]) -> list[U16]:
        """Issue every command; returns the read data of RDMAC/RD in program order."""
        reads = []
        issue = self.issue
        for cmd in cmds:
            result = issue(cmd)
            if result is not None:
                reads.append(result)
        return reads


def run_sequential(
    cfg: PimConfig,
    program: Sequence[Instruction],
    rows: dict[int, U16],
    gpr: dict[int, U16],
    channel: Channel | None = None,
) -> dict[int, U16]:
    """Sequential semantics of a HUB program: each instruction's commands strictly in order on
    the in-order issuer. An oracle independent of ``pymodel.golden.sched``; returns the final
    GPR."""
    ch = channel or Channel(cfg)
    for r, d in rows.items():
        ch.load_row(r, d)
    issuer = InOrderIssuer(ch)
    out = dict(gpr)
    zero = (0,) * cfg.geometry.lanes

    def data(addr: int) -> tuple[int, ...]:
        return tuple(int(v) for v in out[addr]) if addr in out else zero

    for inst in program:
        n = inst.op_size
        if inst.op is InstOp.WR_INP:
            for i in range(n):
                issuer.issue(Command(Op.WRGB, gb=inst.gb + i, data=data(inst.gpr + i)))
        elif inst.op is InstOp.WR_BIAS:
            for i in range(n):
                issuer.issue(Command(Op.WRBIAS, out=inst.out + i, data=data(inst.gpr + i)))
        elif inst.op in (InstOp.RD_OUT, InstOp.RD_MAC):
            for i in range(n):
                read = issuer.issue(Command(Op.RDMAC, out=inst.out + i))
                assert read is not None
                out[inst.gpr + i] = read
                if inst.op is InstOp.RD_OUT:
                    issuer.issue(Command(Op.CLRMAC, out=inst.out + i))
        elif inst.op is InstOp.MAC:
            if ch.open_row != [inst.row] * cfg.geometry.banks:
                if any(r is not None for r in ch.open_row):
                    issuer.issue(Command(Op.PREA))
                issuer.issue(Command(Op.ACT16, row=inst.row))
            for i in range(n):
                issuer.issue(Command(Op.MAC16, col=inst.col + i, gb=inst.gb + i, out=inst.out))
        else:
            raise ValueError(f"run_sequential: {inst.op.name} is not supported")
    return out
