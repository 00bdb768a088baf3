"""Golden model of one PIM channel: bf16 data in banks, GB and accumulators, plus DRAM/PIM timing.

Data semantics (what the RTL co-simulation and every scoreboard compare against):

* ``MAC16 col gb out``: for every bank, the 16 bf16 lanes of the open row's column ``col`` times the
  16 lanes of GB entry ``gb``. Products are formed in float32 (exact for finite bf16 inputs that do
  not under/overflow), summed by a pairwise adder tree in float32 (lanes 0+1, 2+3, ...; then pairs
  of those, ...), and the tree sum is added to the bank's float32 accumulator ``out``. Every float32
  addition rounds to nearest even.
* ``RDMAC out`` returns each bank's accumulator rounded to bf16 (round to nearest even, see
  :mod:`pymodel.golden.bf16`): 16 banks x 2 B = 32 B. Reading does not clear; ``CLRMAC`` zeroes;
  ``WRBIAS out`` (AiM WRMAC16) sets bank ``b``'s accumulator ``out`` to lane ``b`` of its 32 B
  (bf16, exact in float32).
* ``TMOD`` switches the register-access mode (``timing.mode_switch``, see
  :func:`pymodel.timing.mode_of`); a command that needs the other mode is illegal. The channel
  starts in normal mode.
* ``WR``/``RD`` write/read 32 B of one bank's open row; ``WRGB`` writes a GB entry.
* Rows never written read as zero.

Timing: :meth:`Channel.probe` returns the earliest legal cycle for a command (no side effects) and
:meth:`Channel.issue` applies it or raises :class:`TimingViolation` naming the rule of
:mod:`pymodel.timing`, the command and the cycle. State errors (MAC with a closed row, ACT to an
open bank, REF with open banks, ...) raise :class:`IllegalCommand` whatever the cycle.

Speed: the rule table is compiled per next opcode into flat (previous opcode, latency) terms and a
probe's result is remembered until the next issue, so a command probed and then issued is checked
once (operands, state, every rule). ``Channel(cfg, checked=True)`` is the reference path kept for
the equivalence tests and the benchmark: every probe and every issue re-derives legality rule by
rule (:meth:`Channel._bounds`, :meth:`Channel.check_state`) and each MAC16 is applied as it issues.
``data=False`` models timing only (no rows, GB or accumulators; RD/RDMAC return None).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from operator import add, itemgetter
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16
from pymodel.golden.channel_data import ChannelData
from pymodel.isa import CMD_FIELDS, DATA_OPS, Command, IsaError, Op, check_command, operand_limits
from pymodel.timing import (
    CMD_BUS_RULE,
    FAW_LIMIT,
    FAW_RULE,
    FAW_WEIGHT,
    MODE_NORMAL,
    MODE_REGISTER,
    REFRESH_RULE,
    RULES,
    Scope,
    applies,
    mode_of,
)

__all__ = ["TMOD", "Channel", "ChannelError", "IllegalCommand", "TimingViolation"]

NEVER = -(1 << 60)
NO_REFRESH = 1 << 62  # refresh deadline / due cycle with timing.refresh = false
ALL_BANK_OPS = frozenset({Op.ACT16, Op.PREA, Op.MAC16, Op.REF})
SINGLE_BANK_OPS = frozenset({Op.ACT, Op.PRE, Op.WR, Op.RD})
TMOD = Command(Op.TMOD)
_NOP, _MAC16, _REF = Op.NOP, Op.MAC16, Op.REF  # module constants: faster than Op.X in hot code
assert CMD_FIELDS == ("bank", "row", "col", "gb", "out"), "Channel._fast_bound reads them so"
# Bank-state precondition of each opcode (the fast path's form of check_state's row checks).
_ST_NONE, _ST_BANK_CLOSED, _ST_ALL_CLOSED, _ST_ALL_SAME_ROW, _ST_BANK_ROW, _ST_NEVER = range(6)
_STATE_KIND = {
    Op.ACT: _ST_BANK_CLOSED,
    Op.ACT16: _ST_ALL_CLOSED,
    Op.REF: _ST_ALL_CLOSED,
    Op.MAC16: _ST_ALL_SAME_ROW,
    Op.WR: _ST_BANK_ROW,
    Op.RD: _ST_BANK_ROW,
}


class ChannelError(Exception):
    """Base of the channel model's errors."""


class IllegalCommand(ChannelError):
    """The command is not legal in the channel's current state (at any cycle)."""

    def __init__(self, cmd: Command, cycle: int, reason: str) -> None:
        super().__init__(f"cycle {cycle}: illegal {cmd}: {reason}")
        self.cmd, self.cycle, self.reason = cmd, cycle, reason


class TimingViolation(ChannelError):
    """The command is issued before the named rule allows."""

    def __init__(self, cmd: Command, cycle: int, rule: str, earliest: int | None) -> None:
        when = f"earliest legal cycle {earliest}" if earliest is not None else "no legal cycle"
        super().__init__(f"cycle {cycle}: {cmd} violates {rule} ({when})")
        self.cmd, self.cycle, self.rule, self.earliest = cmd, cycle, rule, earliest


class Observer(Protocol):
    def __call__(self, cycle: int, cmd: Command, result: U16 | None) -> None: ...


def _banks_of(cmd: Command, n_banks: int) -> range | tuple[int, ...]:
    if cmd.op in ALL_BANK_OPS:
        return range(n_banks)
    if cmd.op in SINGLE_BANK_OPS:
        return (cmd.bank,)
    return ()


Terms = tuple[tuple[int, int], ...]  # (previous opcode, latency)


@dataclass(frozen=True, slots=True)  # slots: the fast path reads about 20 of these per command
class OpTable:
    """One opcode's compiled rules and checks: all the fast path reads for it, in one object (one
    list index per command instead of a table look-up per field)."""

    limits: tuple[int, ...]  # operand bounds per CMD_FIELDS (isa.operand_limits)
    carries_data: bool
    mode: int | None  # the register-access mode it needs (timing.mode_of)
    state: int  # its bank-state precondition (_ST_*)
    any_last: Callable[[list[int]], tuple[int, ...]]  # previous ops' last cycles anywhere ...
    any_latency: tuple[int, ...]  # ... and their latencies
    gb_terms: Terms  # on the same GB entry
    out_terms: Terms  # on the same OBuf entry
    bank_terms: tuple[tuple[Op, Scope, int], ...]  # single-bank commands: (prev, scope, latency)
    faw_weight: int
    # What an issue records besides the last cycle anywhere: the bank of a single-bank op (an
    # all-bank op's last cycle is the same in every bank: _last_any), the GB and OBuf entry.
    records_bank: bool
    records_gb: bool
    records_out: bool
    changes_state: bool  # whether _execute has anything to do


class Channel:
    """One PIM channel. Attach observers (trace, statistics) with :meth:`observe`.

    ``checked=True``: the reference path (see the module docstring); ``data=False``: timing only.
    """

    def __init__(self, cfg: PimConfig, checked: bool = False, data: bool = True) -> None:
        self.cfg, self.checked = cfg, checked
        g, t = cfg.geometry, cfg.timing
        self.n_banks = g.banks
        self._group = [g.bank_group(b) for b in range(g.banks)]
        self._latency = {r.name: r.latency(t) for r in RULES}
        # Per next-op: (rule, latency, prev ops, scope) of the rules that can bind (latency > 0).
        dual = cfg.buffers.obuf_dual_port
        self._plan: dict[Op, list[tuple[str, int, tuple[Op, ...], Scope]]] = {
            op: [
                (r.name, self._latency[r.name], prev, r.scope)
                for r in RULES
                if op in r.next
                and self._latency[r.name] > 0
                and (prev := tuple(p for p in r.prev if applies(r, p, op, dual)))
            ]
            for op in Op
        }
        self._mode_of = [mode_of(op, t.mode_switch, dual) for op in Op]
        self.data = ChannelData(cfg, deferred=not checked) if data else None
        self._ops = self._compile()
        # Last issue cycle of each op: anywhere, per bank (single-bank ops), per GB entry, per
        # OBuf entry.
        self._last_any = [NEVER] * len(Op)
        self._last_bank = [[NEVER] * g.banks for _ in Op]
        self._last_gb = [[NEVER] * cfg.buffers.gb_entries for _ in Op]
        self._last_out = [[NEVER] * cfg.buffers.obuf_entries for _ in Op]
        self._acts: deque[tuple[int, int]] = deque()  # (cycle, FAW weight), newest last
        self.last_cycle = NEVER
        self.refs_issued = 0
        self.next_refresh_due = self.refresh_deadline = NO_REFRESH
        self._count_ref(0)
        self.mode = MODE_NORMAL
        self.open_row: list[int | None] = [None] * g.banks  # read-only outside the channel
        # The last probe's command, its earliest cycle by the rules alone and whether the mode
        # was checked (or needs no switch); cleared by every issue (fast path only).
        self._memo: tuple[Command, int, bool] | None = None
        self._observers: list[Observer] = []

    def _compile(self) -> list[OpTable]:
        """The fast path's tables, one :class:`OpTable` per opcode (indexed by its value)."""
        limits = operand_limits(self.cfg)
        never = {Op.WRBIAS} if self.n_banks != self.cfg.geometry.lanes else set()
        if self.cfg.timing.mode_switch == "none":
            never.add(Op.TMOD)
        # What _execute has work for: timing only, the open rows and the mode; with data, every
        # command but REF.
        changes = {Op.ACT, Op.ACT16, Op.PRE, Op.PREA, Op.TMOD}
        if self.data is not None:
            changes |= set(Op) - {Op.REF}
        tables = []
        for op in Op:
            by_table: dict[str, dict[int, int]] = {"any": {}, "gb": {}, "out": {}}
            bank: list[tuple[Op, Scope, int]] = []
            for _, latency, prevs, scope in self._plan[op]:
                if scope is Scope.CHANNEL or (op in ALL_BANK_OPS and scope in _BANK_SCOPES):
                    table = by_table["any"]
                elif scope is Scope.GB_ENTRY:
                    table = by_table["gb"]
                elif scope is Scope.OUT_ENTRY:
                    table = by_table["out"]
                else:  # a bank scope: binds only commands that touch a bank
                    if op in SINGLE_BANK_OPS:
                        bank += [(p, scope, latency) for p in prevs]
                    continue
                for p in prevs:  # one term per previous opcode: its longest latency
                    table[p] = max(table.get(p, 0), latency)
            any_prevs, latencies = list(by_table["any"]), list(by_table["any"].values())
            while len(any_prevs) < 2:  # so that itemgetter returns a tuple; NOP never issues
                any_prevs.append(Op.NOP)
                latencies.append(0)
            tables.append(
                OpTable(
                    limits=limits[op],
                    carries_data=op in DATA_OPS,
                    mode=self._mode_of[op],
                    state=_ST_NEVER if op in never else _STATE_KIND.get(op, _ST_NONE),
                    any_last=itemgetter(*any_prevs),
                    any_latency=tuple(latencies),
                    gb_terms=tuple(by_table["gb"].items()),
                    out_terms=tuple(by_table["out"].items()),
                    bank_terms=tuple(bank),
                    faw_weight=FAW_WEIGHT.get(op, 0),
                    records_bank=op in SINGLE_BANK_OPS,
                    records_gb=op in (Op.WRGB, Op.MAC16),
                    records_out=op in (Op.MAC16, Op.RDMAC, Op.CLRMAC, Op.WRBIAS),
                    changes_state=op in changes,
                )
            )
        return tables

    # ------------------------------------------------------------------ observers and backdoor

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def _data(self) -> ChannelData:
        if self.data is None:
            raise ValueError("this channel models timing only (data=False)")
        return self.data

    def row_data(self, row: int) -> U16:
        """All banks' data of ``row`` (banks x columns x lanes), allocated on first touch."""
        return self._data().row_data(row)

    def load_row(self, row: int, data: npt.ArrayLike) -> None:
        """Backdoor write of a whole all-bank row (no timing), for preloading weights/KV."""
        self._data().load_row(row, data)

    @property
    def gb(self) -> U16:
        return self._data().gb

    @property
    def acc(self) -> npt.NDArray[np.float32]:
        return self._data().acc

    # ------------------------------------------------------------------ timing

    def _count_ref(self, issued: int) -> None:
        t = self.cfg.timing
        self.refs_issued += issued
        if t.refresh:
            self.next_refresh_due = (self.refs_issued + 1) * t.nREFI  # before any postponement
            # last cycle at which the next owed REF may still be issued
            self.refresh_deadline = (self.refs_issued + 1 + t.max_postponed_refs) * t.nREFI

    def refresh_due(self, cycle: int) -> bool:
        """True once the next REF is due at ``cycle`` (before any postponement)."""
        return cycle >= self.next_refresh_due

    def needs_switch(self, op: Op) -> bool:
        """True when ``op`` needs the other register-access mode (a TMOD first)."""
        need = self._mode_of[op]
        return need is not None and need != self.mode

    def tmod_cycle(self, cmd: Command, cycle: int) -> int | None:
        """None when ``cmd`` needs no mode switch; else the cycle (>= ``cycle``) for the TMOD that
        must precede it: the cycle ``cmd`` would be legal ignoring the mode, where the AiM
        controller issues the TMOD."""
        if not self.needs_switch(cmd.op):
            return None
        return self.probe(TMOD, self.probe(cmd, cycle, check_mode=False))

    def _bounds(self, cmd: Command) -> list[tuple[str, int]]:
        """(rule, earliest cycle) for every constraint that applies to ``cmd``: the reference,
        rule by rule (error messages, :meth:`binding_rule`, ``checked=True``, scoreboards)."""
        out: list[tuple[str, int]] = [(CMD_BUS_RULE, self.last_cycle + 1)]
        op = cmd.op
        all_banks = op in ALL_BANK_OPS
        banks: range | tuple[int, ...] | None = None
        for name, latency, prevs, scope in self._plan[op]:
            last = NEVER
            if scope is Scope.CHANNEL or (all_banks and scope in _BANK_SCOPES):
                last_any = self._last_any
                for prev in prevs:
                    if last_any[prev] > last:
                        last = last_any[prev]
            elif scope is Scope.GB_ENTRY:
                for prev in prevs:
                    last = max(last, self._last_gb[prev][cmd.gb])
            elif scope is Scope.OUT_ENTRY:
                for prev in prevs:
                    last = max(last, self._last_out[prev][cmd.out])
            else:
                banks = banks or _banks_of(cmd, self.n_banks)
                for prev in prevs:
                    last = max(last, self._scoped_bank_last(prev, scope, banks))
            if last != NEVER:
                out.append((name, last + latency))
        if op in FAW_WEIGHT:
            faw = self._faw_bound(FAW_WEIGHT[op])
            if faw is not None:
                out.append((FAW_RULE, faw))
        if op is Op.REF:
            pull_in = self._pull_in_bound()
            if pull_in is not None:
                out.append((REFRESH_RULE, pull_in))
        return out

    def _pull_in_bound(self) -> int | None:
        """Earliest cycle of the next REF: at most max_postponed_refs pulled in early."""
        t = self.cfg.timing
        ahead = self.refs_issued - t.max_postponed_refs + 1
        return ahead * t.nREFI if ahead > 0 and t.refresh else None

    def _scoped_bank_last(self, prev: Op, scope: Scope, banks: range | tuple[int, ...]) -> int:
        if prev in ALL_BANK_OPS:  # it touched every bank at its last cycle anywhere
            lasts = [self._last_any[prev]] * self.n_banks
        else:
            lasts = self._last_bank[prev]
        best = NEVER
        for b in banks:
            grp = self._group[b]
            for b2, cyc in enumerate(lasts):
                if cyc <= best:
                    continue
                same_group = self._group[b2] == grp
                if (
                    (scope is Scope.BANK and b2 == b)
                    or (scope is Scope.BANK_GROUP and same_group and b2 != b)
                    or (scope is Scope.OTHER_GROUP and not same_group)
                ):
                    best = cyc
        return best

    def _faw_bound(self, weight: int) -> int | None:
        """Earliest cycle at which at most FAW_LIMIT weight of activations falls in a window."""
        allowed = FAW_LIMIT - weight
        total = sum(w for _, w in self._acts)
        bound = None
        for cyc, w in self._acts:  # oldest first: drop until the rest fit
            if total <= allowed:
                break
            total -= w
            bound = cyc + self.cfg.timing.nFAW
        return bound

    def check_state(self, cmd: Command, cycle: int, check_mode: bool = True) -> None:
        """Raise IllegalCommand if ``cmd`` is not legal in the current bank state (and mode,
        unless ``check_mode`` is False)."""
        try:
            check_command(cmd, self.cfg)
        except IsaError as exc:
            raise IllegalCommand(cmd, cycle, str(exc)) from None
        op, rows = cmd.op, self.open_row
        if op is Op.TMOD and self.cfg.timing.mode_switch == "none":
            raise IllegalCommand(cmd, cycle, "timing.mode_switch = 'none' has no mode switch")
        if check_mode and self.needs_switch(op):
            have = "register" if self.mode == MODE_REGISTER else "normal"
            raise IllegalCommand(cmd, cycle, f"needs the other mode (channel is in {have} mode)")
        if op is Op.WRBIAS and self.n_banks != self.cfg.geometry.lanes:
            raise IllegalCommand(cmd, cycle, "WRBIAS needs one data lane per bank")
        if op is Op.ACT and rows[cmd.bank] is not None:
            raise IllegalCommand(
                cmd, cycle, f"bank {cmd.bank} already has row {rows[cmd.bank]} open"
            )
        if op in (Op.ACT16, Op.REF):
            open_banks = [b for b, r in enumerate(rows) if r is not None]
            if open_banks:
                raise IllegalCommand(cmd, cycle, f"banks {open_banks} are open (precharge first)")
        if op is Op.MAC16:
            if rows[0] is None or any(r != rows[0] for r in rows):
                raise IllegalCommand(cmd, cycle, "needs the same row open in all banks (ACT16)")
        if op in (Op.WR, Op.RD) and rows[cmd.bank] != cmd.row:
            have = "closed" if rows[cmd.bank] is None else f"row {rows[cmd.bank]} open"
            raise IllegalCommand(cmd, cycle, f"bank {cmd.bank} has {have}, needs row {cmd.row}")

    def _legal(self, cmd: Command, t: OpTable, check_mode: bool) -> bool:
        """The fast form of :meth:`check_state` (``t``: the command's table): True when it would
        not raise."""
        lim = t.limits
        if not (
            0 <= cmd.bank < lim[0]
            and 0 <= cmd.row < lim[1]
            and 0 <= cmd.col < lim[2]
            and 0 <= cmd.gb < lim[3]
            and 0 <= cmd.out < lim[4]
        ):
            return False
        data = cmd.data
        if t.carries_data:
            lanes = self.cfg.geometry.lanes
            if data is None or len(data) != lanes or min(data) < 0 or max(data) > 0xFFFF:
                return False
        elif data is not None:
            return False
        if check_mode and t.mode is not None and t.mode != self.mode:
            return False
        kind, rows = t.state, self.open_row
        if kind == _ST_NONE:
            return True
        if kind == _ST_ALL_SAME_ROW:
            return rows[0] is not None and rows.count(rows[0]) == self.n_banks
        if kind == _ST_ALL_CLOSED:
            return rows.count(None) == self.n_banks
        if kind == _ST_BANK_CLOSED:
            return rows[cmd.bank] is None
        if kind == _ST_BANK_ROW:
            return rows[cmd.bank] == cmd.row
        return False  # _ST_NEVER

    def _fast_bound(self, cmd: Command, t: OpTable) -> int:
        """max over :meth:`_bounds`, from the command's compiled table ``t`` (the fast path's one
        timing computation per command)."""
        bound: int = max(map(add, t.any_last(self._last_any), t.any_latency))
        if bound <= self.last_cycle:
            bound = self.last_cycle + 1
        if t.gb_terms:
            gb, last = cmd.gb, self._last_gb
            for prev, latency in t.gb_terms:
                if last[prev][gb] + latency > bound:
                    bound = last[prev][gb] + latency
        if t.out_terms:
            out, last = cmd.out, self._last_out
            for prev, latency in t.out_terms:
                if last[prev][out] + latency > bound:
                    bound = last[prev][out] + latency
        for bprev, scope, latency in t.bank_terms:
            bound = max(bound, self._scoped_bank_last(bprev, scope, (cmd.bank,)) + latency)
        if t.faw_weight:
            faw = self._faw_bound(t.faw_weight)
            if faw is not None and faw > bound:
                bound = faw
        if cmd.op is _REF:
            pull_in = self._pull_in_bound()
            if pull_in is not None and pull_in > bound:
                bound = pull_in
        return bound

    def _legal_bound(self, cmd: Command, cycle: int, check_mode: bool) -> int:
        """Earliest legal cycle of ``cmd`` by the timing rules alone, after its state checks
        (IllegalCommand). The fast path remembers it until the next issue."""
        if self.checked:
            self.check_state(cmd, cycle, check_mode)
            return max(c for _, c in self._bounds(cmd))
        t = self._ops[cmd.op]
        if not self._legal(cmd, t, check_mode):
            self.check_state(cmd, cycle, check_mode)  # raises, with the reference's reason
            raise AssertionError(f"fast state check rejects {cmd}, check_state accepts it")
        bound = self._fast_bound(cmd, t)
        self._memo = (cmd, bound, check_mode or t.mode is None or t.mode == self.mode)
        return bound

    def binding_rule(self, cmd: Command) -> tuple[str, int]:
        """The constraint that sets ``cmd``'s earliest cycle now: (rule name, that cycle)."""
        earliest, name = max((c, n) for n, c in self._bounds(cmd))
        return name, earliest

    def probe(self, cmd: Command, cycle: int = 0, check_mode: bool = True) -> int:
        """Earliest legal cycle >= ``cycle`` for ``cmd`` given everything issued so far.

        Raises IllegalCommand for a state error and TimingViolation (rule nREFI) when the
        earliest cycle lies past the refresh deadline (a REF must come first). With
        ``check_mode=False`` a command of the other mode is timed as if the mode were right:
        the AiM controller issues the TMOD in the cycle its command would be ready.
        """
        if cmd.op is _NOP:
            return max(cycle, self.last_cycle + 1)
        memo = self._memo
        if memo is not None and memo[0] is cmd and (memo[2] or not check_mode):
            bound = memo[1]
        else:
            bound = self._legal_bound(cmd, cycle, check_mode)
        earliest = bound if bound > cycle else cycle
        if earliest > self.refresh_deadline:
            raise TimingViolation(cmd, earliest, REFRESH_RULE, None)
        return earliest

    def issue(self, cmd: Command, cycle: int) -> U16 | None:
        """Issue ``cmd`` at ``cycle``; returns the 32 B read data for RDMAC/RD, else None."""
        op = cmd.op
        if op is _NOP:
            return None
        memo = self._memo  # a probe of this very command since the last issue proved it legal
        if memo is None or memo[0] is not cmd or not memo[2] or memo[1] > cycle:
            if self._legal_bound(cmd, cycle, True) > cycle:
                earliest, name = max((c, n) for n, c in self._bounds(cmd) if c > cycle)
                raise TimingViolation(cmd, cycle, name, earliest)
        if cycle > self.refresh_deadline:
            raise TimingViolation(cmd, cycle, REFRESH_RULE, None)
        # Record what later bounds read (in line: this runs once per command).
        t = self._ops[op]
        self._memo = None
        self.last_cycle = cycle
        self._last_any[op] = cycle
        if t.records_bank:
            self._last_bank[op][cmd.bank] = cycle
        if t.records_gb:
            self._last_gb[op][cmd.gb] = cycle
        if t.records_out:
            self._last_out[op][cmd.out] = cycle
        if t.faw_weight:
            self._acts.append((cycle, t.faw_weight))
            while sum(w for _, w in self._acts) > FAW_LIMIT:
                self._acts.popleft()
        if op is _REF:
            self._count_ref(1)
        result = self._execute(cmd) if t.changes_state else None
        for obs in self._observers:
            obs(cycle, cmd, result)
        return result

    def _execute(self, cmd: Command) -> U16 | None:
        op = cmd.op
        if op is _MAC16:  # the common case first
            if self.data is not None:
                self.data.execute(cmd, self.open_row[0])
        elif op is Op.ACT16:
            self.open_row = [cmd.row] * self.n_banks
        elif op is Op.PREA:
            self.open_row = [None] * self.n_banks
        elif op is Op.ACT:
            self.open_row[cmd.bank] = cmd.row
        elif op is Op.PRE:
            self.open_row[cmd.bank] = None
        elif op is Op.TMOD:
            self.mode = MODE_REGISTER if self.mode == MODE_NORMAL else MODE_NORMAL
        elif op is not _REF and self.data is not None:
            return self.data.execute(cmd, self.open_row[0])
        return None


_BANK_SCOPES = frozenset({Scope.BANK, Scope.BANK_GROUP, Scope.OTHER_GROUP})
