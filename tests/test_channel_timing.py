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

from pymodel.channel import Channel, IllegalCommand, TimingViolation
from pymodel.config import preset
from pymodel.isa import Command, Op
from pymodel.timing import BUS_LATENCY, RULES, Rule

C = Command
GAP = 1000  # cycles between setup and prev: longer than any default latency except refresh


@dataclass
class Scenario:
    prev: Command
    next: Command
    setup: list[Command] = field(default_factory=list)
    between: list[Command] = field(default_factory=list)
    timing: dict[str, int] = field(default_factory=dict)


def _wrgb(gb: int) -> Command:
    return C(Op.WRGB, gb=gb, data=(0x3F80,) * 16)


def _wr(bank: int, row: int = 0, col: int = 0) -> Command:
    return C(Op.WR, bank=bank, row=row, col=col, data=(0x4000,) * 16)


ACT16 = C(Op.ACT16, row=3)
MAC0 = C(Op.MAC16, col=0, gb=0, out=0)
BUS = {"nMODCH": 1, "nBL": 4}  # bus rules bind once the mode switch and CAS spacing are shorter
OPEN_B0_B4 = [C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=4, row=0)]
BUS_CMD = {
    Op.WR: (_wr(0), _wr(4)),
    Op.RD: (C(Op.RD, bank=0, row=0, col=0), C(Op.RD, bank=4, row=0, col=1)),
    Op.WRGB: (_wrgb(0), _wrgb(1)),
    Op.RDMAC: (C(Op.RDMAC, out=0), C(Op.RDMAC, out=1)),
}

SCENARIOS: dict[str, Scenario] = {
    "nRCD_MAC": Scenario(ACT16, MAC0),
    "nRCD_RD": Scenario(C(Op.ACT, bank=0, row=5), C(Op.RD, bank=0, row=5, col=1)),
    "nRCD_WR": Scenario(C(Op.ACT, bank=0, row=5), _wr(0, row=5)),
    "nRAS": Scenario(C(Op.ACT, bank=2, row=5), C(Op.PRE, bank=2)),
    "nRP": Scenario(C(Op.PRE, bank=0), C(Op.ACT, bank=0, row=1), setup=[C(Op.ACT, bank=0, row=0)]),
    "nRC": Scenario(
        C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=0, row=1), between=[C(Op.PRE, bank=0)]
    ),
    "nRRDL": Scenario(C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=1, row=0)),
    "nRRDS": Scenario(C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=4, row=0)),
    "nRTP": Scenario(MAC0, C(Op.PREA), setup=[ACT16]),
    "nWR": Scenario(_wr(0), C(Op.PRE, bank=0), setup=[C(Op.ACT, bank=0, row=0)]),
    "nWTR": Scenario(_wr(0), C(Op.RD, bank=0, row=0, col=0), setup=[C(Op.ACT, bank=0, row=0)]),
    "nCCDS": Scenario(C(Op.RDMAC, out=0), _wrgb(5), timing={"nCCDS": 8}),
    "nCCDL_MAC": Scenario(
        MAC0, C(Op.MAC16, col=1, gb=1, out=1), setup=[ACT16], timing={"nCCDL": 4}
    ),
    "nCCDL_RD": Scenario(
        C(Op.RD, bank=0, row=0, col=0),
        C(Op.RD, bank=1, row=0, col=0),
        setup=[C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=1, row=0)],
        timing={"nCCDL": 4},
    ),
    "nCCDL_WR": Scenario(
        _wr(0),
        _wr(1),
        setup=[C(Op.ACT, bank=0, row=0), C(Op.ACT, bank=1, row=0)],
        timing={"nCCDL": 4},
    ),
    "nRFC": Scenario(C(Op.REF), ACT16),
    "nMODCH_PIM": Scenario(C(Op.PRE, bank=0), _wrgb(0)),
    "nMODCH_NORMAL": Scenario(_wrgb(0), C(Op.ACT, bank=0, row=0)),
    "gb:WRGB->MAC16": Scenario(_wrgb(0), MAC0, setup=[ACT16]),
    "gb:MAC16->WRGB": Scenario(MAC0, _wrgb(0), setup=[ACT16], timing={"nCLGB": 5}),
    "out:MAC16->RDMAC": Scenario(MAC0, C(Op.RDMAC, out=0), setup=[ACT16], timing={"nCCDL": 4}),
    "out:MAC16->CLRMAC": Scenario(MAC0, C(Op.CLRMAC, out=0), setup=[ACT16], timing={"nCCDL": 4}),
    "out:RDMAC->CLRMAC": Scenario(C(Op.RDMAC, out=0), C(Op.CLRMAC, out=0), timing={"nCLREG": 3}),
}
for a in BUS_LATENCY:
    for b in BUS_LATENCY:
        SCENARIOS[f"bus:{a.name}->{b.name}"] = Scenario(
            BUS_CMD[a][0], BUS_CMD[b][1], setup=list(OPEN_B0_B4), timing=dict(BUS)
        )


def _cfg(timing: dict[str, int]) -> Any:
    return preset("aim-gddr6").with_overrides({"timing": timing} if timing else {})


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
