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
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16, from_bf16, to_bf16
from pymodel.isa import Command, IsaError, Op, check_command
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

NEVER = -(1 << 60)
ALL_BANK_OPS = frozenset({Op.ACT16, Op.PREA, Op.MAC16, Op.REF})
SINGLE_BANK_OPS = frozenset({Op.ACT, Op.PRE, Op.WR, Op.RD})


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


class Channel:
    """One PIM channel. Attach observers (trace, statistics) with :meth:`observe`."""

    def __init__(self, cfg: PimConfig) -> None:
        self.cfg = cfg
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
        # Last issue cycle of each op: anywhere, per bank, per GB entry, per OBuf entry.
        self._last_any = {op: NEVER for op in Op}
        self._last_bank = {op: [NEVER] * g.banks for op in Op}
        self._last_gb = {op: [NEVER] * cfg.buffers.gb_entries for op in Op}
        self._last_out = {op: [NEVER] * cfg.buffers.obuf_entries for op in Op}
        self._acts: deque[tuple[int, int]] = deque()  # (cycle, FAW weight), newest last
        self.last_cycle = NEVER
        self.refs_issued = 0
        self.mode = MODE_NORMAL
        self._mode_of = {op: mode_of(op, t.mode_switch, dual) for op in Op}
        self.open_row: list[int | None] = [None] * g.banks
        # Data.
        self._rows: dict[int, U16] = {}
        self.gb = np.zeros((cfg.buffers.gb_entries, g.lanes), dtype=np.uint16)
        self.acc = np.zeros((g.banks, cfg.buffers.obuf_entries), dtype=np.float32)
        self._observers: list[Observer] = []

    # ------------------------------------------------------------------ observers and backdoor

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def row_data(self, row: int) -> U16:
        """All banks' data of ``row`` (banks x columns x lanes), allocated on first touch."""
        data = self._rows.get(row)
        if data is None:
            g = self.cfg.geometry
            if not 0 <= row < g.rows_per_bank:
                raise IsaError(f"row = {row} out of range [0, {g.rows_per_bank - 1}]")
            data = np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
            self._rows[row] = data
        return data

    def load_row(self, row: int, data: npt.ArrayLike) -> None:
        """Backdoor write of a whole all-bank row (no timing), for preloading weights/KV."""
        g = self.cfg.geometry
        arr = np.asarray(data, dtype=np.uint16)
        if arr.shape != (g.banks, g.columns_per_row, g.lanes):
            raise ValueError(
                f"row data must have shape {(g.banks, g.columns_per_row, g.lanes)}, got {arr.shape}"
            )
        self.row_data(row)[...] = arr

    # ------------------------------------------------------------------ timing

    @property
    def refresh_deadline(self) -> int:
        """Last cycle at which the next owed REF may still be issued (never: refresh off)."""
        t = self.cfg.timing
        if not t.refresh:
            return 1 << 62
        return (self.refs_issued + 1 + t.max_postponed_refs) * t.nREFI

    @property
    def next_refresh_due(self) -> int:
        """Cycle at which the next REF is due, before any postponement (never: refresh off)."""
        t = self.cfg.timing
        return (self.refs_issued + 1) * t.nREFI if t.refresh else 1 << 62

    def refresh_due(self, cycle: int) -> bool:
        """True once the next REF is due at ``cycle`` (before any postponement)."""
        return cycle >= self.next_refresh_due

    def needs_switch(self, op: Op) -> bool:
        """True when ``op`` needs the other register-access mode (a TMOD first)."""
        need = self._mode_of[op]
        return need is not None and need != self.mode

    def _bounds(self, cmd: Command) -> list[tuple[str, int]]:
        """(rule, earliest cycle) for every constraint that applies to ``cmd``."""
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
            t = self.cfg.timing
            ahead = self.refs_issued - t.max_postponed_refs + 1
            if ahead > 0 and t.refresh:
                out.append((REFRESH_RULE, ahead * t.nREFI))
        return out

    def _scoped_bank_last(self, prev: Op, scope: Scope, banks: range | tuple[int, ...]) -> int:
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
        if cmd.op is Op.NOP:
            return max(cycle, self.last_cycle + 1)
        self.check_state(cmd, cycle, check_mode)
        earliest = max([cycle] + [c for _, c in self._bounds(cmd)])
        if earliest > self.refresh_deadline:
            raise TimingViolation(cmd, earliest, REFRESH_RULE, None)
        return earliest

    def issue(self, cmd: Command, cycle: int) -> U16 | None:
        """Issue ``cmd`` at ``cycle``; returns the 32 B read data for RDMAC/RD, else None."""
        if cmd.op is Op.NOP:
            return None
        self.check_state(cmd, cycle)
        violated = [(c, name) for name, c in self._bounds(cmd) if c > cycle]
        if violated:
            earliest, name = max(violated)
            raise TimingViolation(cmd, cycle, name, earliest)
        if cycle > self.refresh_deadline:
            raise TimingViolation(cmd, cycle, REFRESH_RULE, None)
        self._record(cmd, cycle)
        result = self._execute(cmd)
        for obs in self._observers:
            obs(cycle, cmd, result)
        return result

    def _record(self, cmd: Command, cycle: int) -> None:
        op = cmd.op
        self.last_cycle = cycle
        self._last_any[op] = cycle
        lasts = self._last_bank[op]
        for b in _banks_of(cmd, self.n_banks):
            lasts[b] = cycle
        if op in (Op.WRGB, Op.MAC16):
            self._last_gb[op][cmd.gb] = cycle
        if op in (Op.MAC16, Op.RDMAC, Op.CLRMAC, Op.WRBIAS):
            self._last_out[op][cmd.out] = cycle
        if op in FAW_WEIGHT:
            self._acts.append((cycle, FAW_WEIGHT[op]))
            while sum(w for _, w in self._acts) > FAW_LIMIT:
                self._acts.popleft()
        if op is Op.REF:
            self.refs_issued += 1

    # ------------------------------------------------------------------ data

    def _execute(self, cmd: Command) -> U16 | None:
        op = cmd.op
        if op is Op.ACT16:
            self.open_row = [cmd.row] * self.n_banks
        elif op is Op.ACT:
            self.open_row[cmd.bank] = cmd.row
        elif op is Op.PREA:
            self.open_row = [None] * self.n_banks
        elif op is Op.PRE:
            self.open_row[cmd.bank] = None
        elif op is Op.MAC16:
            row = self.open_row[0]
            assert row is not None
            weights = from_bf16(self.row_data(row)[:, cmd.col, :])  # banks x lanes
            inputs = from_bf16(self.gb[cmd.gb])
            self.acc[:, cmd.out] += adder_tree(weights * inputs)
        elif op is Op.WRGB:
            assert cmd.data is not None
            self.gb[cmd.gb] = cmd.data
        elif op is Op.RDMAC:
            return to_bf16(self.acc[:, cmd.out])
        elif op is Op.CLRMAC:
            self.acc[:, cmd.out] = 0.0
        elif op is Op.WRBIAS:
            assert cmd.data is not None
            self.acc[:, cmd.out] = from_bf16(np.asarray(cmd.data, dtype=np.uint16))
        elif op is Op.TMOD:
            self.mode = MODE_REGISTER if self.mode == MODE_NORMAL else MODE_NORMAL
        elif op is Op.WR:
            assert cmd.data is not None
            self.row_data(cmd.row)[cmd.bank, cmd.col] = cmd.data
        elif op is Op.RD:
            read: U16 = self.row_data(cmd.row)[cmd.bank, cmd.col].copy()
            return read
        return None


_BANK_SCOPES = frozenset({Scope.BANK, Scope.BANK_GROUP, Scope.OTHER_GROUP})


def adder_tree(products: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise float32 sum over the last axis (length a power of two), lanes 0+1 first."""
    p = products.astype(np.float32, copy=False)
    while p.shape[-1] > 1:
        p = p[..., 0::2] + p[..., 1::2]
    return p[..., 0]
