"""The table of timing constraints between channel commands.

Each row says: after a command in ``prev`` was issued, a command in ``next`` may issue no earlier
than ``latency`` cycles later, when both touch the same ``scope`` (bank, bank group, channel, GB
entry or OBuf entry). The channel model's ``probe()``/``issue()``, the scoreboards and the generated
RTL package all read this one table. All-bank commands (ACT16, PREA, MAC16, REF) touch every bank.

Three constraints are not pairwise and live in the channel model: nFAW (a rolling window of
activations, ACT16 counting as four), the refresh schedule (at most ``max_postponed_refs`` REF
owed past nREFI, and at most as many pulled in early; none with ``timing.refresh = false``) and the
register-access mode (``timing.mode_switch``): a command that needs the other mode is illegal until
a TMOD switches it (:func:`mode_of`), and nothing may follow a TMOD for nMODCH cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

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
    column_path: bool = False  # spacing on the banks' column path (see :func:`applies`)

    @property
    def sv_name(self) -> str:
        """Identifier of this rule's latency constant in the generated SV package."""
        parts = self.name.replace("->", "_to_").replace(":", "_").replace("-", "_").split("_")
        return "Rule" + "".join(p[:1].upper() + p[1:] for p in parts if p)


ACTS = frozenset({Op.ACT, Op.ACT16})
PRES = frozenset({Op.PRE, Op.PREA})
# Column commands by direction on the channel's shared column path (AiM GDDR6 model): reads move
# data out of banks or registers, writes into them. CLRMAC (PIMphony's data-less clear) is neither:
# it needs a command-bus cycle and its OBuf-entry rules only.
READS = frozenset({Op.RD, Op.MAC16, Op.RDMAC})
WRITES = frozenset({Op.WR, Op.WRGB, Op.WRBIAS})
ALL_REAL = frozenset(Op) - {Op.NOP}

# External data bus: latency from command to first beat, per direction.
READ_LATENCY: dict[Op, Callable[[Timing], int]] = {
    Op.RD: lambda t: t.nCL,
    Op.RDMAC: lambda t: t.nCLREG,
}
WRITE_LATENCY: dict[Op, Callable[[Timing], int]] = {
    Op.WR: lambda t: t.nCWL,
    Op.WRGB: lambda t: t.nCWLGB,
    Op.WRBIAS: lambda t: t.nCWLREG,
}
BUS_READS = frozenset(READ_LATENCY)
BUS_WRITES = frozenset(WRITE_LATENCY)

# ---------------------------------------------------------------- register-access mode
# The AiM controller keeps a channel in *register-RW* mode for the commands that move data between
# host and channel registers and in *normal* mode for the rest; TMOD switches (then nMODCH).
MODE_NORMAL, MODE_REGISTER = 0, 1
MODE_NEUTRAL = frozenset({Op.NOP, Op.TMOD, Op.REF})  # legal in either mode (REF: our choice)
REGISTER_MODE_OPS: dict[str, frozenset[Op]] = {
    # aim_simulator: WRGB, WRMAC16 (WR_BIAS), RDMAC16 (RD_MAC), RDAF16 need register-RW mode.
    # CLRMAC (not in AiM) touches only the accumulators: register mode too.
    "aim-register": frozenset({Op.WRGB, Op.WRBIAS, Op.RDMAC, Op.CLRMAC}),
    # The older pimphony rule: all-bank PIM commands vs single-bank DRAM commands.
    "pim-normal": frozenset({Op.ACT16, Op.PREA, Op.MAC16, Op.WRGB, Op.WRBIAS, Op.RDMAC, Op.CLRMAC}),
    "none": frozenset(),
}


# A dual-ported OBuf (``buffers.obuf_dual_port``) reads out through its own port: these commands
# are decoded in either mode, and they leave the banks' column path (``Rule.column_path``).
OBUF_PORT_OPS = frozenset({Op.RDMAC, Op.CLRMAC})
_COLUMN_PATH_OPS = frozenset({Op.MAC16, Op.RD})


def mode_of(op: Op, policy: str, obuf_dual_port: bool = False) -> int | None:
    """Mode ``op`` needs under ``policy``: MODE_NORMAL, MODE_REGISTER, or None (either)."""
    if policy == "none" or op in MODE_NEUTRAL or (obuf_dual_port and op in OBUF_PORT_OPS):
        return None
    return MODE_REGISTER if op in REGISTER_MODE_OPS[policy] else MODE_NORMAL


def _one(op: Op) -> frozenset[Op]:
    return frozenset({op})


def _turnaround(a: Op, b: Op) -> Rule:
    """Data-bus direction change (AiM GDDR6 model): read -> write is ``RL(a) + nBL + nRTW_PAD -
    WL(b) + nWPRE``; write -> read is ``WL(a) + nBL + nWTRS``, with nWTRL where the AiM table
    has it on the channel (WR -> RDMAC, WRBIAS -> any read)."""
    if a in BUS_READS:
        ra, wb = READ_LATENCY[a], WRITE_LATENCY[b]

        def latency(t: Timing) -> int:
            return ra(t) + t.nBL + t.nRTW_PAD - wb(t) + t.nWPRE

        doc = f"read -> write turnaround: {b.name} data after {a.name} data + preamble"
    else:
        wa = WRITE_LATENCY[a]
        long_wtr = a is Op.WRBIAS or (a is Op.WR and b is Op.RDMAC)

        def latency(t: Timing) -> int:
            return wa(t) + t.nBL + (t.nWTRL if long_wtr else t.nWTRS)

        doc = f"write -> read turnaround ({'nWTRL' if long_wtr else 'nWTRS'} after the data)"
    return Rule(f"bus:{a.name}->{b.name}", _one(a), _one(b), Scope.CHANNEL, latency, doc)


RULES: tuple[Rule, ...] = (
    (
        Rule("nRCD_MAC", ACTS, _one(Op.MAC16), Scope.BANK, lambda t: t.nRCD_MAC, "ACT -> MAC"),
        Rule("nRCD_RD", ACTS, _one(Op.RD), Scope.BANK, lambda t: t.nRCD_RD, "ACT -> RD"),
        Rule("nRCD_WR", ACTS, _one(Op.WR), Scope.BANK, lambda t: t.nRCD_WR, "ACT -> WR"),
        Rule("nRAS", ACTS, PRES, Scope.BANK, lambda t: t.nRAS, "ACT -> PRE"),
        Rule("nRP", PRES, ACTS | _one(Op.REF), Scope.BANK, lambda t: t.nRP, "PRE -> ACT/REF"),
        Rule("nRP_PRE", PRES, PRES, Scope.BANK, lambda t: t.nRP, "PRE -> PRE, same bank"),
        Rule("nRC", ACTS, ACTS, Scope.BANK, lambda t: t.nRC, "ACT -> ACT, same bank"),
        Rule("nRC_REF", ACTS, _one(Op.REF), Scope.BANK, lambda t: t.nRC, "ACT -> REF (AiM: nRC)"),
        Rule(
            "nRRDL",
            ACTS,
            ACTS,
            Scope.BANK_GROUP,
            lambda t: t.nRRDL,
            "ACT -> ACT, other bank in the same bank group",
        ),
        Rule(
            "nRRDS",
            ACTS,
            ACTS,
            Scope.OTHER_GROUP,
            lambda t: t.nRRDS,
            "ACT -> ACT, other bank group",
        ),
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
            "nWTRL",
            _one(Op.WR),
            _one(Op.RD),
            Scope.BANK_GROUP,
            lambda t: t.nCWL + t.nBL + t.nWTRL,
            "WR -> RD, other bank of the same bank group",
        ),
        Rule(
            "nWTRL_BANK",
            _one(Op.WR),
            _one(Op.RD),
            Scope.BANK,
            lambda t: t.nCWL + t.nBL + t.nWTRL,
            "WR -> RD, same bank",
        ),
        Rule("bus:reads", BUS_READS, BUS_READS, Scope.CHANNEL, lambda t: t.nBL, "read bursts"),
        Rule("bus:writes", BUS_WRITES, BUS_WRITES, Scope.CHANNEL, lambda t: t.nBL, "write bursts"),
        Rule(
            "nCCDS_RD",
            READS,
            READS,
            Scope.CHANNEL,
            lambda t: t.nCCDS,
            "read column -> read column",
            column_path=True,
        ),
        Rule(
            "nCCDS_WR",
            WRITES,
            WRITES,
            Scope.CHANNEL,
            lambda t: t.nCCDS,
            "write column -> write column",
        ),
        Rule(
            "nCCDL_MAC",
            READS,
            frozenset({Op.MAC16, Op.RDMAC}),
            Scope.CHANNEL,
            lambda t: t.nCCDL,
            "read column -> MAC16/RDMAC (all-bank: every bank group)",
            column_path=True,
        ),
        Rule(
            "nCCDL_MAC_RD",
            frozenset({Op.MAC16, Op.RDMAC}),
            _one(Op.RD),
            Scope.CHANNEL,
            lambda t: t.nCCDL,
            "MAC16/RDMAC -> RD (all-bank: every bank group)",
            column_path=True,
        ),
        Rule(
            "nCCDL_BIAS",
            frozenset({Op.WR, Op.WRBIAS}),
            _one(Op.WRBIAS),
            Scope.CHANNEL,
            lambda t: t.nCCDL,
            "WR/WRBIAS -> WRBIAS (all-bank: every bank group)",
        ),
        Rule(
            "nCCDL_BIAS_WR",
            _one(Op.WRBIAS),
            _one(Op.WR),
            Scope.CHANNEL,
            lambda t: t.nCCDL,
            "WRBIAS -> WR (all-bank: every bank group)",
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
        Rule(
            "nRFC",
            _one(Op.REF),
            ALL_REAL,
            Scope.CHANNEL,
            lambda t: t.nRFC,
            "REF blocks the channel",
        ),
        Rule(
            "nMODCH",
            _one(Op.TMOD),
            ALL_REAL,
            Scope.CHANNEL,
            lambda t: t.nMODCH,
            "TMOD (mode switch) blocks the channel",
        ),
        # Buffer-entry dependencies (what DCS's dependency/status tables track). MAC16 -> RDMAC
        # of the same entry needs no row of its own: nCCDL_MAC holds channel-wide.
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
            "out:MAC16->CLRMAC",
            _one(Op.MAC16),
            frozenset({Op.CLRMAC, Op.WRBIAS}),
            Scope.OUT_ENTRY,
            lambda t: t.nCCDL,
            "accumulation finished before the entry is cleared or re-initialized",
        ),
        Rule(
            "out:RDMAC->CLRMAC",
            _one(Op.RDMAC),
            frozenset({Op.CLRMAC, Op.MAC16, Op.WRBIAS}),
            Scope.OUT_ENTRY,
            lambda t: t.nCLREG + t.nBL,
            "read-out finished before the entry changes",
        ),
        Rule(
            "out:WRBIAS->MAC16",
            _one(Op.WRBIAS),
            _one(Op.MAC16),
            Scope.OUT_ENTRY,
            lambda t: t.nCWLREG + t.nBL,
            "initial value written before a MAC accumulates onto it",
        ),
    )
    + tuple(_turnaround(a, b) for a in READ_LATENCY for b in WRITE_LATENCY)
    + tuple(_turnaround(a, b) for a in WRITE_LATENCY for b in READ_LATENCY)
)

RULE_BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}
assert len(RULE_BY_NAME) == len(RULES), "rule names must be unique"

# Non-pairwise constraints, named like rules so violations and the RTL package use one vocabulary.
FAW_RULE = "nFAW"
REFRESH_RULE = "nREFI"
CMD_BUS_RULE = "cmd-bus"  # at most one command per cycle
FAW_WEIGHT = {Op.ACT: 1, Op.ACT16: 4}
FAW_LIMIT = 4


def applies(rule: Rule, prev: Op, nxt: Op, obuf_dual_port: bool) -> bool:
    """Whether ``rule`` constrains the pair ``prev -> nxt``: a column-path rule does not hold
    between an OBuf read-out (RDMAC) and a bank column read (MAC16, RD) when the OBuf is
    dual-ported (the read-out uses the OBuf's own port)."""
    if not (obuf_dual_port and rule.column_path):
        return True
    pair = {prev, nxt}
    return not (Op.RDMAC in pair and pair & _COLUMN_PATH_OPS)


def rule_parts(rule: Rule, obuf_dual_port: bool) -> list[tuple[frozenset[Op], frozenset[Op]]]:
    """``rule`` as (prev ops, next ops) rectangles covering exactly the pairs it constrains
    (:func:`applies`): prev ops grouped by the next ops they constrain. One rectangle, the rule's
    own, unless a dual-ported OBuf lifts some of its pairs."""
    groups: dict[frozenset[Op], set[Op]] = {}
    for p in sorted(rule.prev):
        nxt = frozenset(n for n in rule.next if applies(rule, p, n, obuf_dual_port))
        if nxt:
            groups.setdefault(nxt, set()).add(p)
    return [(frozenset(p), n) for n, p in groups.items()]


def rules_for(op: Op) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if op in r.next)


# Cycles after issue at which a command's effect is complete (data written, read data returned,
# accumulation done). The STATIC scheduler waits for it between instructions ("fixed gaps").
COMPLETION: dict[Op, Callable[[Timing], int]] = {
    Op.WRGB: lambda t: t.nCWLGB + t.nBL,
    Op.WRBIAS: lambda t: t.nCWLREG + t.nBL,
    Op.MAC16: lambda t: t.nCCDL,
    Op.RDMAC: lambda t: t.nCLREG + t.nBL,
    Op.CLRMAC: lambda t: 1,
    Op.WR: lambda t: t.nCWL + t.nBL,
}
