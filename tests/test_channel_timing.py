"""One test per timing-table row: legal at the earliest cycle, rejected one cycle earlier.

Each scenario issues ``setup`` commands at their earliest cycles, then ``prev`` well after them
(so only ``prev`` constrains what follows), then ``between`` commands at their earliest cycles, and
finally probes ``next``: it must be exactly ``prev``'s cycle + the rule's latency. Some rows only
bind on a config where a competing rule is shorter; those scenarios name the overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from pymodel.config import preset
from pymodel.golden.channel import Channel, IllegalCommand, TimingViolation
from pymodel.isa import Command, Op
from pymodel.timing import READ_LATENCY, RULES, WRITE_LATENCY, Rule, Scope

C = Command
GAP = 1000  # cycles between setup and prev: longer than any default latency except refresh
LANES = (0x3F80,) * 16


@dataclass
class Scenario:
    prev: Command
    next: Command
    setup: list[Command] = field(default_factory=list)
    between: list[Command] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)


def _wrgb(gb: int) -> Command:
    return C(Op.WRGB, gb=gb, data=LANES)


def _wrbias(out: int) -> Command:
    return C(Op.WRBIAS, out=out, data=LANES)


def _wr(bank: int, row: int = 0, col: int = 0) -> Command:
    return C(Op.WR, bank=bank, row=row, col=col, data=(0x4000,) * 16)


def _rd(bank: int, row: int = 0, col: int = 0) -> Command:
    return C(Op.RD, bank=bank, row=row, col=col)


ACT16 = C(Op.ACT16, row=3)
MAC0 = C(Op.MAC16, col=0, gb=0, out=0)
OPEN_B0_B1_B4 = [C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=1, row=0), C(Op.ACT, bank=4, row=0)]
# (prev, next) command of each data-bus op in the turnaround scenarios (other bank group / entry)
BUS_CMD = {
    Op.WR: (_wr(0), _wr(4)),
    Op.RD: (_rd(0), _rd(4, col=1)),
    Op.WRGB: (_wrgb(0), _wrgb(1)),
    Op.WRBIAS: (_wrbias(0), _wrbias(1)),
    Op.RDMAC: (C(Op.RDMAC, out=0), C(Op.RDMAC, out=1)),
}

# Scenarios run with timing.mode_switch = "none" (no TMOD needed between the commands) unless they
# say otherwise; the mode rule itself is pinned under "aim-register".
SCENARIOS: dict[str, Scenario] = {
    "nRCD_MAC": Scenario(ACT16, MAC0),
    "nRCD_RD": Scenario(C(Op.ACT, bank=0, row=5), _rd(0, row=5, col=1)),
    "nRCD_WR": Scenario(C(Op.ACT, bank=0, row=5), _wr(0, row=5)),
    "nRAS": Scenario(C(Op.ACT, bank=2, row=5), C(Op.PRE, bank=2)),
    "nRP": Scenario(C(Op.PRE, bank=0), C(Op.ACT, bank=0, row=1), setup=[C(Op.ACT, bank=0, row=0)]),
    "nRP_PRE": Scenario(C(Op.PRE, bank=0), C(Op.PRE, bank=0), setup=[C(Op.ACT, bank=0, row=0)]),
    "nRC": Scenario(
        C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=0, row=1), between=[C(Op.PRE, bank=0)]
    ),
    "nRC_REF": Scenario(C(Op.ACT, bank=0, row=0), C(Op.REF), between=[C(Op.PRE, bank=0)]),
    "nRRDL": Scenario(C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=1, row=0)),
    "nRRDS": Scenario(C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=4, row=0)),
    "nRTP": Scenario(MAC0, C(Op.PREA), setup=[ACT16]),
    "nWR": Scenario(_wr(0), C(Op.PRE, bank=0), setup=[C(Op.ACT, bank=0, row=0)]),
    "nWTRL": Scenario(_wr(0), _rd(1), setup=list(OPEN_B0_B1_B4)),
    "nWTRL_BANK": Scenario(_wr(0), _rd(0, col=1), setup=list(OPEN_B0_B1_B4)),
    "bus:reads": Scenario(_rd(0), _rd(4), setup=list(OPEN_B0_B1_B4), timing={"nBL": 4}),
    "bus:writes": Scenario(_wr(0), _wr(4), setup=list(OPEN_B0_B1_B4), timing={"nBL": 4}),
    "nCCDS_RD": Scenario(MAC0, C(Op.MAC16, col=1, gb=1, out=1), setup=[ACT16], timing={"nCCDS": 8}),
    "nCCDS_WR": Scenario(_wrgb(0), _wrgb(1), timing={"nCCDS": 8}),
    "nCCDL_MAC": Scenario(
        MAC0, C(Op.MAC16, col=1, gb=1, out=1), setup=[ACT16], timing={"nCCDL": 4}
    ),
    "nCCDL_MAC_RD": Scenario(MAC0, _rd(0, row=3), setup=[ACT16], timing={"nCCDL": 4}),
    "nCCDL_BIAS": Scenario(_wrbias(0), _wrbias(1), timing={"nCCDL": 4}),
    "nCCDL_BIAS_WR": Scenario(
        _wrbias(0), _wr(0), setup=[C(Op.ACT, bank=0, row=0)], timing={"nCCDL": 4}
    ),
    "nCCDL_RD": Scenario(_rd(0), _rd(1), setup=list(OPEN_B0_B1_B4), timing={"nCCDL": 4}),
    "nCCDL_WR": Scenario(_wr(0), _wr(1), setup=list(OPEN_B0_B1_B4), timing={"nCCDL": 4}),
    "nRFC": Scenario(C(Op.REF), ACT16),
    "nMODCH": Scenario(C(Op.TMOD), _wrgb(0), timing={"mode_switch": "aim-register"}),
    "gb:WRGB->MAC16": Scenario(_wrgb(0), MAC0, setup=[ACT16]),
    "gb:MAC16->WRGB": Scenario(MAC0, _wrgb(0), setup=[ACT16], timing={"nCLGB": 5}),
    "out:MAC16->CLRMAC": Scenario(MAC0, C(Op.CLRMAC, out=0), setup=[ACT16], timing={"nCCDL": 4}),
    "out:RDMAC->CLRMAC": Scenario(C(Op.RDMAC, out=0), C(Op.CLRMAC, out=0), timing={"nCLREG": 3}),
    "out:WRBIAS->MAC16": Scenario(_wrbias(0), MAC0, setup=[ACT16]),
}
for _a in READ_LATENCY:
    for _b in WRITE_LATENCY:
        SCENARIOS[f"bus:{_a.name}->{_b.name}"] = Scenario(
            BUS_CMD[_a][0], BUS_CMD[_b][1], setup=list(OPEN_B0_B1_B4)
        )
        SCENARIOS[f"bus:{_b.name}->{_a.name}"] = Scenario(
            BUS_CMD[_b][0], BUS_CMD[_a][1], setup=list(OPEN_B0_B1_B4)
        )


def _cfg(timing: dict[str, Any]) -> Any:
    return preset("aim-gddr6").with_overrides({"timing": {"mode_switch": "none", **timing}})


def _run_until_next(s: Scenario) -> tuple[Channel, int]:
    ch = Channel(_cfg(s.timing))
    cycle = 0
    for cmd in s.setup:
        cycle = ch.probe(cmd, cycle)
        ch.issue(cmd, cycle)
    p = ch.probe(s.prev, cycle + GAP)
    ch.issue(s.prev, p)
    cycle = p
    for cmd in s.between:
        cycle = ch.probe(cmd, cycle)
        ch.issue(cmd, cycle)
    return ch, p


def _binding(rule: Rule, s: Scenario) -> bool:
    t = _cfg(s.timing).timing
    return rule.latency(t) > 1


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_rule_has_scenario(rule: Rule) -> None:
    assert rule.name in SCENARIOS, f"timing rule {rule.name} has no test scenario"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rule_earliest_cycle(name: str) -> None:
    s = SCENARIOS[name]
    rule = next(r for r in RULES if r.name == name)
    assert s.prev.op in rule.prev and s.next.op in rule.next
    latency = rule.latency(_cfg(s.timing).timing)
    ch, p = _run_until_next(s)
    earliest = ch.probe(s.next, p)
    if not _binding(rule, s):
        # Never binding: a one-cycle (or shorter) gap is already implied by one command per cycle.
        # The model drops such rows (Channel only keeps latencies > 0), nothing else is checked.
        assert latency <= 1 and earliest > p
        return
    assert earliest == p + latency, f"{name}: expected {p + latency}, probe says {earliest}"
    with pytest.raises(TimingViolation) as info:
        ch.issue(s.next, earliest - 1)
    assert info.value.rule == name
    assert info.value.earliest == earliest
    ch.issue(s.next, earliest)


# Bank-scoped rules from an all-bank command (which touches every bank) to a single-bank one: the
# scenarios above time single-bank pairs only, and both channel paths read an all-bank command's
# per-bank cycles the same way (from its last cycle anywhere), so the equivalence tests could not
# see a slip there.
_SINGLE_NEXT = {
    Op.ACT: C(Op.ACT, bank=0, row=1),
    Op.PRE: C(Op.PRE, bank=0),
    Op.RD: _rd(0, row=3),
    Op.WR: _wr(0, row=3),
}
_ALL_BANK_PREV = {Op.ACT16: ([], ACT16), Op.PREA: ([], C(Op.PREA)), Op.MAC16: ([ACT16], MAC0)}
_ALL_TO_SINGLE = [
    (rule, prev, nxt)
    for rule in RULES
    if rule.scope in (Scope.BANK, Scope.BANK_GROUP, Scope.OTHER_GROUP)
    for prev in sorted(rule.prev & _ALL_BANK_PREV.keys())
    for nxt in sorted(rule.next & _SINGLE_NEXT.keys())
]


@pytest.mark.parametrize(
    "rule,prev,nxt",
    _ALL_TO_SINGLE,
    ids=[f"{r.name}:{p.name}->{n.name}" for r, p, n in _ALL_TO_SINGLE],
)
def test_all_bank_command_binds_single_bank_rules(rule: Rule, prev: Op, nxt: Op) -> None:
    cfg = _cfg({})
    ch = Channel(cfg)
    setup, prev_cmd = _ALL_BANK_PREV[prev]
    cycle = 0
    for cmd in setup:
        cycle = ch.probe(cmd, cycle)
        ch.issue(cmd, cycle)
    p = ch.probe(prev_cmd, cycle + GAP)
    ch.issue(prev_cmd, p)
    if nxt is Op.ACT and prev is not Op.PREA:  # the bank must close first (a PREA between)
        ch.issue(C(Op.PREA), ch.probe(C(Op.PREA), p))
    assert ch.probe(_SINGLE_NEXT[nxt], p) >= p + rule.latency(cfg.timing), rule.name


def test_all_bank_to_single_bank_pairs_exist() -> None:
    """The table above is not empty: nRP (PREA -> ACT), nRCD (ACT16 -> RD/WR), nRTP (MAC16 ->
    PRE) and nRC (ACT16 -> ACT) among them."""
    names = {(r.name, p, n) for r, p, n in _ALL_TO_SINGLE}
    assert {
        ("nRP", Op.PREA, Op.ACT),
        ("nRCD_RD", Op.ACT16, Op.RD),
        ("nRTP", Op.MAC16, Op.PRE),
        ("nRC", Op.ACT16, Op.ACT),
    } <= names


def test_probe_has_no_side_effects() -> None:
    ch = Channel(preset("aim-gddr6"))
    ch.issue(ACT16, 0)
    first = ch.probe(MAC0, 0)
    assert ch.probe(MAC0, 0) == first == 56
    assert ch.last_cycle == 0


def test_faw_fifth_activate_waits_for_window() -> None:
    ch = Channel(preset("aim-gddr6"))
    cycle = 0
    issued = []
    for bank in (0, 4, 8, 12):
        cmd = C(Op.ACT, bank=bank, row=0)
        cycle = ch.probe(cmd, cycle)
        ch.issue(cmd, cycle)
        issued.append(cycle)
    assert issued == [0, 5, 10, 15]  # nRRDS apart
    fifth = C(Op.ACT, bank=1, row=0)
    assert ch.probe(fifth, 0) == 28  # nFAW after the first, beyond nRRDS/nRRDL
    with pytest.raises(TimingViolation) as info:
        ch.issue(fifth, 27)
    assert info.value.rule == "nFAW"
    ch.issue(fifth, 28)


def test_one_command_per_cycle() -> None:
    ch = Channel(preset("aim-gddr6"))
    ch.issue(C(Op.PRE, bank=0), 10)  # no timing rule links two PREs
    assert ch.probe(C(Op.PRE, bank=1), 0) == 11
    with pytest.raises(TimingViolation) as info:
        ch.issue(C(Op.PRE, bank=1), 10)
    assert info.value.rule == "cmd-bus"


def test_refresh_postponement_limit() -> None:
    cfg = preset("aim-gddr6")
    t = cfg.timing
    deadline = (1 + t.max_postponed_refs) * t.nREFI
    ch = Channel(cfg)
    assert ch.refresh_deadline == deadline
    assert ch.probe(ACT16, deadline) == deadline
    with pytest.raises(TimingViolation) as info:
        ch.probe(ACT16, deadline + 1)
    assert info.value.rule == "nREFI"
    with pytest.raises(TimingViolation):
        ch.issue(ACT16, deadline + 1)
    ch.issue(C(Op.REF), deadline)  # the owed REF is still accepted at the deadline
    assert ch.refresh_deadline == deadline + t.nREFI


def test_refresh_pull_in_limit() -> None:
    cfg = preset("aim-gddr6")
    t = cfg.timing
    ch = Channel(cfg)
    cycle = 0
    for _ in range(t.max_postponed_refs):
        cycle = ch.probe(C(Op.REF), cycle)
        ch.issue(C(Op.REF), cycle)
    assert cycle == (t.max_postponed_refs - 1) * t.nRFC
    assert ch.probe(C(Op.REF), cycle) == t.nREFI
    with pytest.raises(TimingViolation) as info:
        ch.issue(C(Op.REF), t.nREFI - 1)
    assert info.value.rule == "nREFI"


@pytest.mark.parametrize(
    "setup, cmd, reason",
    [
        ([], MAC0, "ACT16"),
        ([C(Op.ACT, bank=0, row=0)], C(Op.ACT, bank=0, row=1), "already has row"),
        ([C(Op.ACT, bank=3, row=0)], C(Op.REF), "precharge first"),
        ([C(Op.ACT, bank=3, row=0)], ACT16, "precharge first"),
        ([C(Op.ACT, bank=0, row=0)], C(Op.RD, bank=0, row=1, col=0), "needs row 1"),
        ([], _wr(2), "closed"),
        ([], C(Op.MAC16, col=64, gb=0, out=0), "col = 64 out of range [0, 63]"),
        ([], C(Op.RDMAC, out=8), "out = 8 out of range [0, 7]"),
        ([], C(Op.RDMAC, out=0, bank=1), "unused"),
    ],
)
def test_illegal_commands(setup: list[Command], cmd: Command, reason: str) -> None:
    ch = Channel(preset("aim-gddr6"))
    cycle = 0
    for c in setup:
        cycle = ch.probe(c, cycle)
        ch.issue(c, cycle)
    with pytest.raises(IllegalCommand, match=re.escape(reason)):
        ch.probe(cmd, cycle + 5000)
    with pytest.raises(IllegalCommand, match=re.escape(reason)):
        ch.issue(cmd, cycle + 5000)


@pytest.mark.parametrize("preset_name", ["aim-gddr6", "hbm3-pim"])
@pytest.mark.parametrize("n_rows", [1, 3])
def test_full_row_mac_stream_matches_formula(preset_name: str, n_rows: int) -> None:
    """ACT16, one MAC16 per column, PREA, for n rows: the analytic row period."""
    cfg = preset(preset_name)
    t, cols = cfg.timing, cfg.geometry.columns_per_row
    ch = Channel(cfg)
    cycle = 0
    acts, preas = [], []
    for r in range(n_rows):
        for cmd in (
            [C(Op.ACT16, row=r)]
            + [C(Op.MAC16, col=c, gb=c % cfg.buffers.gb_entries) for c in range(cols)]
            + [C(Op.PREA)]
        ):
            cycle = ch.probe(cmd, cycle)
            ch.issue(cmd, cycle)
            if cmd.op is Op.ACT16:
                acts.append(cycle)
            if cmd.op is Op.PREA:
                preas.append(cycle)
    last_mac = t.nRCD_MAC + (cols - 1) * t.nCCDL
    pre = max(t.nRAS, last_mac + t.nRTP)
    period = max(t.nRC, pre + t.nRP)
    assert acts == [r * period for r in range(n_rows)]
    assert preas == [r * period + pre for r in range(n_rows)]


# ---------------------------------------------------------------- register-access mode


def _issue_all(ch: Channel, cmds: list[Command]) -> list[int]:
    cycles, cycle = [], 0
    for cmd in cmds:
        cycle = ch.probe(cmd, cycle)
        ch.issue(cmd, cycle)
        cycles.append(cycle)
    return cycles


@pytest.mark.parametrize(
    "policy, register_ops",
    [
        ("aim-register", {Op.WRGB, Op.WRBIAS, Op.RDMAC, Op.CLRMAC}),
        ("pim-normal", {Op.ACT16, Op.PREA, Op.MAC16, Op.WRGB, Op.WRBIAS, Op.RDMAC, Op.CLRMAC}),
    ],
)
def test_mode_classes(policy: str, register_ops: set[Op]) -> None:
    """Every op is legal in exactly its mode (REF, TMOD, NOP in both); TMOD toggles."""
    from pymodel.timing import MODE_NORMAL, MODE_REGISTER, mode_of

    for op in Op:
        want = (
            None
            if op in (Op.REF, Op.TMOD, Op.NOP)
            else (MODE_REGISTER if op in register_ops else MODE_NORMAL)
        )
        assert mode_of(op, policy) == want, op
    cfg = preset("aim-gddr6").with_overrides({"timing": {"mode_switch": policy}})
    ch = Channel(cfg)
    wrong = _wrgb(0)
    with pytest.raises(IllegalCommand, match="needs the other mode"):
        ch.probe(wrong, 0)
    assert ch.probe(wrong, 0, check_mode=False) == 0  # timed as if the mode were right
    ch.issue(C(Op.TMOD), 0)
    assert ch.probe(wrong, 0) == cfg.timing.nMODCH
    ch.issue(wrong, cfg.timing.nMODCH)
    with pytest.raises(IllegalCommand, match="channel is in register mode"):
        ch.probe(C(Op.ACT, bank=0, row=0), 100)
    ch.issue(C(Op.REF), 100)  # REF is legal in either mode (our choice; AiM never refreshes)


def test_mode_switch_none_has_no_tmod() -> None:
    ch = Channel(preset("hbm3-pim"))
    with pytest.raises(IllegalCommand, match="no mode switch"):
        ch.probe(C(Op.TMOD), 0)
    _issue_all(ch, [_wrgb(0), C(Op.ACT, bank=0, row=0), _wrbias(0)])  # any order, no TMOD


def test_tmod_gap_is_33_cycles_between_commands() -> None:
    """AiM: a mode change costs a TMOD slot plus nMODCH = 32 idle cycles."""
    ch = Channel(preset("aim-gddr6"))
    cycles = _issue_all(ch, [C(Op.ACT16, row=0), C(Op.TMOD), _wrgb(0)])
    assert cycles[2] - cycles[0] == 33


def test_refresh_off() -> None:
    cfg = preset("aim-gddr6").with_overrides({"timing": {"refresh": False}})
    ch = Channel(cfg)
    assert not ch.refresh_due(10**12)
    assert ch.probe(ACT16, 10**9) == 10**9  # no refresh deadline


@pytest.mark.parametrize("n_refi, ok", [(332, False), (333, True)])
def test_refresh_interval_lower_bound(n_refi: int, ok: bool) -> None:
    """nREFI must exceed nRFC + nRC + nMODCH + 1 (= 332 on aim-gddr6), else refresh alone fills
    the channel (a scheduler would never make progress)."""
    from pymodel.config import ConfigError

    base = preset("aim-gddr6")
    if ok:
        base.with_overrides({"timing": {"nREFI": n_refi}})
    else:
        with pytest.raises(ConfigError, match="nREFI = 332 must be > nRFC \\+ nRC"):
            base.with_overrides({"timing": {"nREFI": n_refi}})
    base.with_overrides({"timing": {"nREFI": 1, "refresh": False}})  # unchecked when off


def test_timing_source_values() -> None:
    """Refresh of the modeled device (see Timing's docstring): tREFI = 32 ms / 16k at 0.5 ns."""
    cfg = preset("aim-gddr6")
    assert cfg.timing.nREFI == int(32e6 / 16384 / cfg.tck_ns)
    assert (cfg.timing.nWTRS, cfg.timing.nWTRL, cfg.timing.nWPRE) == (9, 11, 1)
