"""The table of timing constraints between channel commands.

Each row says: after a command in ``prev`` was issued, a command in ``next`` may issue no earlier
than ``latency`` cycles later, when both touch the same ``scope`` (bank, bank group, channel, GB
entry or OBuf entry). The channel model's ``probe()``/``issue()``, the scoreboards and the generated
RTL package all read this one table. All-bank commands (ACT16, PREA, MAC16, REF) touch every bank.

Two constraints are not pairwise and live in the channel model: nFAW (a rolling window of
activations, ACT16 counting as four) and the refresh schedule (at most ``max_postponed_refs`` REF
owed past nREFI, and at most as many pulled in early).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

from pymodel.config import Timing
from pymodel.isa import Op


class Scope(Enum):
    BANK = "same bank"
    BANK_GROUP = "other bank, same bank group"
    OTHER_GROUP = "other bank group"
    CHANNEL = "channel"
    GB_ENTRY = "same GB entry"
    OUT_ENTRY = "same OBuf entry"


@dataclass(frozen=True)
class Rule:
    name: str
    prev: frozenset[Op]
    next: frozenset[Op]
    scope: Scope
    latency: Callable[[Timing], int]
    doc: str

    @property
    def sv_name(self) -> str:
        """Identifier of this rule's latency constant in the generated SV package."""
        parts = self.name.replace("->", "_to_").replace(":", "_").replace("-", "_").split("_")
        return "Rule" + "".join(p[:1].upper() + p[1:] for p in parts if p)


ACTS = frozenset({Op.ACT, Op.ACT16})
PRES = frozenset({Op.PRE, Op.PREA})
# Column commands occupy a CAS slot (nCCDS). CLRMAC only resets registers: no array or data-bus
# access, so it needs just a command-bus cycle (and its OBuf-entry rules).
CAS = frozenset({Op.MAC16, Op.WRGB, Op.RDMAC, Op.WR, Op.RD})
# PIM (register-access) mode vs normal DRAM mode; switching costs nMODCH.
PIM_MODE = frozenset({Op.ACT16, Op.PREA, Op.MAC16, Op.WRGB, Op.RDMAC, Op.CLRMAC})
NORMAL_MODE = frozenset({Op.ACT, Op.PRE, Op.WR, Op.RD})
ALL_REAL = frozenset(Op) - {Op.NOP}

# Data-bus commands: latency from command to first data beat, and direction.
BUS_LATENCY: dict[Op, Callable[[Timing], int]] = {
    Op.WR: lambda t: t.nCWL,
    Op.RD: lambda t: t.nCL,
    Op.WRGB: lambda t: t.nCWLGB,
    Op.RDMAC: lambda t: t.nCLREG,
}
BUS_WRITES = frozenset({Op.WR, Op.WRGB})


def _one(op: Op) -> frozenset[Op]:
    return frozenset({op})


def _bus_rule(a: Op, b: Op) -> Rule:
    turn = (a in BUS_WRITES) != (b in BUS_WRITES)
    la, lb = BUS_LATENCY[a], BUS_LATENCY[b]

    def latency(t: Timing) -> int:
        return la(t) + t.nBL + (t.nTURN if turn else 0) - lb(t)

    kind = "turnaround" if turn else "burst"
    return Rule(
        f"bus:{a.name}->{b.name}",
        _one(a),
        _one(b),
        Scope.CHANNEL,
        latency,
        f"data bus {kind}: {b.name} data may not overlap {a.name} data",
    )


RULES: tuple[Rule, ...] = (
    Rule("nRCD_MAC", ACTS, _one(Op.MAC16), Scope.BANK, lambda t: t.nRCD_MAC, "ACT -> MAC"),
    Rule("nRCD_RD", ACTS, _one(Op.RD), Scope.BANK, lambda t: t.nRCD_RD, "ACT -> RD"),
    Rule("nRCD_WR", ACTS, _one(Op.WR), Scope.BANK, lambda t: t.nRCD_WR, "ACT -> WR"),
    Rule("nRAS", ACTS, PRES, Scope.BANK, lambda t: t.nRAS, "ACT -> PRE"),
    Rule("nRP", PRES, ACTS | _one(Op.REF), Scope.BANK, lambda t: t.nRP, "PRE -> ACT/REF"),
    Rule("nRC", ACTS, ACTS, Scope.BANK, lambda t: t.nRC, "ACT -> ACT, same bank"),
    Rule(
        "nRRDL",
        ACTS,
        ACTS,
        Scope.BANK_GROUP,
        lambda t: t.nRRDL,
        "ACT -> ACT, other bank in the same bank group",
    ),
    Rule("nRRDS", ACTS, ACTS, Scope.OTHER_GROUP, lambda t: t.nRRDS, "ACT -> ACT, other bank group"),
    Rule(
        "nRTP",
        frozenset({Op.MAC16, Op.RD}),
        PRES,
        Scope.BANK,
        lambda t: t.nRTP,
        "MAC/RD -> PRE (read to precharge)",
    ),
    Rule(
        "nWR",
        _one(Op.WR),
        PRES,
        Scope.BANK,
        lambda t: t.nCWL + t.nBL + t.nWR,
        "WR -> PRE: write recovery after the last data beat",
    ),
    Rule(
        "nWTR",
        _one(Op.WR),
        _one(Op.RD),
        Scope.CHANNEL,
        lambda t: t.nCWL + t.nBL + t.nWTR,
        "WR -> RD: write-to-read after the last data beat",
    ),
    Rule("nCCDS", CAS, CAS, Scope.CHANNEL, lambda t: t.nCCDS, "column -> column"),
    Rule(
        "nCCDL_MAC",
        _one(Op.MAC16),
        _one(Op.MAC16),
        Scope.CHANNEL,
        lambda t: t.nCCDL,
        "MAC -> MAC (all-bank, every bank group)",
    ),
    Rule(
        "nCCDL_RD",
        _one(Op.RD),
        _one(Op.RD),
        Scope.BANK_GROUP,
        lambda t: t.nCCDL,
        "RD -> RD, same bank group",
    ),
    Rule(
        "nCCDL_WR",
        _one(Op.WR),
        _one(Op.WR),
        Scope.BANK_GROUP,
        lambda t: t.nCCDL,
        "WR -> WR, same bank group",
    ),
    Rule("nRFC", _one(Op.REF), ALL_REAL, Scope.CHANNEL, lambda t: t.nRFC, "REF blocks the channel"),
    Rule(
        "nMODCH_PIM",
        NORMAL_MODE,
        PIM_MODE,
        Scope.CHANNEL,
        lambda t: t.nMODCH,
        "normal -> PIM mode switch",
    ),
    Rule(
        "nMODCH_NORMAL",
        PIM_MODE,
        NORMAL_MODE,
        Scope.CHANNEL,
        lambda t: t.nMODCH,
        "PIM -> normal mode switch",
    ),
    # Buffer-entry dependencies (what DCS's dependency/status tables track).
    Rule(
        "gb:WRGB->MAC16",
        _one(Op.WRGB),
        _one(Op.MAC16),
        Scope.GB_ENTRY,
        lambda t: t.nCWLGB + t.nBL,
        "GB entry written before a MAC reads it",
    ),
    Rule(
        "gb:MAC16->WRGB",
        _one(Op.MAC16),
        _one(Op.WRGB),
        Scope.GB_ENTRY,
        lambda t: t.nCLGB,
        "MAC has read the GB entry before it is overwritten",
    ),
    Rule(
        "out:MAC16->RDMAC",
        _one(Op.MAC16),
        _one(Op.RDMAC),
        Scope.OUT_ENTRY,
        lambda t: t.nCCDL,
        "accumulation finished before read-out",
    ),
    Rule(
        "out:MAC16->CLRMAC",
        _one(Op.MAC16),
        _one(Op.CLRMAC),
        Scope.OUT_ENTRY,
        lambda t: t.nCCDL,
        "accumulation finished before clear",
    ),
    Rule(
        "out:RDMAC->CLRMAC",
        _one(Op.RDMAC),
        frozenset({Op.CLRMAC, Op.MAC16}),
        Scope.OUT_ENTRY,
        lambda t: t.nCLREG + t.nBL,
        "read-out finished before the entry changes",
    ),
) + tuple(_bus_rule(a, b) for a in BUS_LATENCY for b in BUS_LATENCY)

RULE_BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
assert len(RULE_BY_NAME) == len(RULES), "rule names must be unique"

# Non-pairwise constraints, named like rules so violations and the RTL package use one vocabulary.
FAW_RULE = "nFAW"
REFRESH_RULE = "nREFI"
CMD_BUS_RULE = "cmd-bus"  # at most one command per cycle
FAW_WEIGHT = {Op.ACT: 1, Op.ACT16: 4}
FAW_LIMIT = 4


def rules_for(op: Op) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if op in r.next)


# Cycles after issue at which a command's effect is complete (data written, read data returned,
# accumulation done). The STATIC scheduler waits for it between instructions ("fixed gaps").
COMPLETION: dict[Op, Callable[[Timing], int]] = {
    Op.WRGB: lambda t: t.nCWLGB + t.nBL,
    Op.MAC16: lambda t: t.nCCDL,
    Op.RDMAC: lambda t: t.nCLREG + t.nBL,
    Op.CLRMAC: lambda t: 1,
    Op.WR: lambda t: t.nCWL + t.nBL,
}
