"""Programs of the pim_sched bench: kernel scenarios, random legal streams, and the directed
programs with the timing rules they must bind (``test_cmd_sched.py``)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from sched_env import Scenario

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16, random_bf16
from pymodel.golden.sched import Mode
from pymodel.isa import InstOp, Instruction, Op
from pymodel.timing import RULE_BY_NAME, mode_of

# ------------------------------------------------------------------------------------- scenarios


def kernel_scenario(kern: Any, mode: Mode, seed: int, idle: float, name: str) -> Scenario:
    d = kern.data(np.random.default_rng(seed))
    return Scenario(name, kern.program(), d.rows, d.gpr, d.expected, mode, idle, seed=seed)


def _rand_rows(cfg: PimConfig, rng: np.random.Generator, rows: list[int]) -> dict[int, U16]:
    g = cfg.geometry
    return {r: random_bf16(rng, (g.banks, g.columns_per_row, g.lanes)) for r in rows}


def random_program(cfg: PimConfig, seed: int, n: int = 50) -> tuple[list[Instruction], dict, dict]:
    """A random legal instruction stream over a few rows, GB/OBuf entries and GPR entries."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    g, b = cfg.geometry, cfg.buffers
    rows = rng.sample(range(8), 3)
    gpr_in = {a: random_bf16(nrng, (g.lanes,)) for a in range(64)}
    prog: list[Instruction] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:
            sz = rng.randint(1, 8)
            prog.append(
                Instruction(
                    InstOp.WR_INP,
                    ch_mask=1,
                    op_size=sz,
                    gpr=rng.randint(0, 64 - sz),
                    gb=rng.randint(0, b.gb_entries - sz),
                )
            )
        elif kind < 0.7:
            sz = rng.randint(1, 8)
            prog.append(
                Instruction(
                    InstOp.MAC,
                    ch_mask=1,
                    op_size=sz,
                    gb=rng.randint(0, b.gb_entries - sz),
                    row=rng.choice(rows),
                    col=rng.randint(0, g.columns_per_row - sz),
                    out=rng.randrange(b.obuf_entries),
                )
            )
        elif kind < 0.92:
            sz = rng.randint(1, b.obuf_entries)
            op = rng.choice([InstOp.RD_OUT, InstOp.RD_MAC, InstOp.WR_BIAS])
            base = 0 if op is InstOp.WR_BIAS else 64  # biases read inputs, read-outs write 64+
            prog.append(
                Instruction(
                    op,
                    ch_mask=1,
                    op_size=sz,
                    gpr=base + rng.randint(0, 64 - sz),
                    out=rng.randint(0, b.obuf_entries - sz),
                )
            )
        else:
            sz = rng.randint(1, 4)
            prog.append(
                Instruction(
                    InstOp.WR_BANK,
                    ch_mask=1,
                    op_size=sz,
                    gpr=rng.randint(0, 64 - sz),
                    bank=rng.randrange(g.banks),
                    row=rng.choice(rows),
                    col=rng.randint(0, g.columns_per_row - sz),
                )
            )
    prog.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=b.obuf_entries, gpr=200, out=0))
    return prog, _rand_rows(cfg, nrng, rows), gpr_in


def directed_programs(cfg: PimConfig) -> dict[str, list[Instruction]]:
    """Each dependency kind and the row / bus / mode-switch timing rules."""
    b = cfg.buffers
    n = min(8, b.gb_entries)

    def wr(gb: int, sz: int = n, gpr: int = 0) -> Instruction:
        return Instruction(InstOp.WR_INP, ch_mask=1, op_size=sz, gpr=gpr, gb=gb)

    def mac(gb: int, row: int, out: int, sz: int = n, col: int = 0) -> Instruction:
        return Instruction(InstOp.MAC, ch_mask=1, op_size=sz, gb=gb, row=row, col=col, out=out)

    def rd(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.RD_OUT, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def bias(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.WR_BIAS, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def rdm(out: int, gpr: int, sz: int = 1) -> Instruction:
        return Instruction(InstOp.RD_MAC, ch_mask=1, op_size=sz, gpr=gpr, out=out)

    def wrb(bank: int, row: int, col: int, sz: int = 2) -> Instruction:
        return Instruction(
            InstOp.WR_BANK, ch_mask=1, op_size=sz, gpr=0, bank=bank, row=row, col=col
        )

    o = min(1, b.obuf_entries - 1)
    t = cfg.timing
    # A read-out / bias train on the I/O queue long enough to outlast a WR_BANK's ACT -> WR
    # (nRCD_WR; its commands are at least min(nBL, nCCDL) apart): the WR then issues right
    # behind one of the train's commands (pymodel.golden.sched: the older instruction wins a
    # tie, else the WR waits for the train's end).
    nout = b.obuf_entries
    n_train = -(-(t.nRCD_WR // max(1, min(t.nBL, t.nCCDL)) + 2) // nout)
    return {
        # RAW on the GB: WRGB -> MAC of the same entries (gb:WRGB->MAC16), row already open
        "wrgb_to_mac": [
            mac(0, 1, 0, 1),
            wr(0),
            mac(0, 1, 0),
            wr(5, 1, gpr=3),
            mac(5, 1, 0, 1, col=9),
            rd(0, 100),
        ],
        # WAR on the GB: a younger WR_INP may not overwrite entries an older MAC still reads
        "mac_to_wrgb": [wr(0), mac(0, 1, 0), wr(0, gpr=16), mac(0, 1, o, col=8), rd(0, 100, 2)],
        # RAW on the OBuf: RDMAC after the MACs into that entry (out:MAC16->RDMAC)
        "mac_to_rdmac": [wr(0), mac(0, 2, o), rd(o, 100), mac(0, 2, 0, col=16), rd(0, 101)],
        # WAR on the OBuf: a younger MAC waits for RDMAC/CLRMAC (out:RDMAC->CLRMAC)
        "rdmac_to_mac": [wr(0), mac(0, 3, 0), rd(0, 100), mac(0, 3, 0, col=8), rd(0, 101)],
        # rows: ACT16/PREA/ACT16 (nRCD_MAC, nRAS, nRTP, nRP, nRC), single-bank WR (nMODCH,
        # nRCD_WR, nWR, nCCDL_WR via two banks of a group), FAW via ACT after ACT16
        "rows_and_modes": [
            wr(0),
            mac(0, 4, 0, 2),
            mac(0, 5, 0, 2),
            mac(0, 4, 0, 2),
            wrb(3, 6, 0),
            wrb(3, 6, 2),
            wrb(7, 5, 0),
            mac(0, 6, 0, 2),
            rd(0, 100),
            wrb(0, 6, 4),
            mac(0, 6, o, 4),
            rd(o, 101),
        ],
        # AiM I/O: WR_BIAS per output, RD_MAC; register-mode turnarounds WRGB <-> RDMAC,
        # WRBIAS <-> RDMAC, back-to-back WRBIAS; WRBIAS -> MAC of its entry; TMOD on each switch
        "aim_io": [
            bias(0, 1),
            wr(0),
            mac(0, 1, 0),
            rdm(0, 100),
            wr(8, 4, 8),
            rdm(0, 101),
            bias(0, 2, 2),
            rdm(1, 102),
            bias(1, 3),
            mac(0, 1, 1, 4),
            mac(0, 1, 0, 4, col=8),
            rdm(0, 103, 2),
        ],
        # the data bus: WRGB <-> RDMAC turnarounds, back-to-back RDMACs
        "bus_turnaround": [
            wr(0),
            mac(0, 1, 0),
            mac(0, 1, o, col=8),
            rd(0, 100),
            wr(8, 4, 8),
            rd(o, 101),
            wr(16, 4),
            mac(16, 1, 0, 4),
            rd(0, 102, 1),
        ],
        # a bias re-initializes an accumulator right after MACs into it: WRBIAS waits for the
        # accumulation (out:MAC16->CLRMAC, its WRBIAS half); the read-out returns the bias
        "mac_then_bias": [wr(0, 1), mac(0, 1, 0, 1), bias(0, 1), rdm(0, 100)],
        # a WR_BANK opens its row, then biases stream in; the next WR of the open row follows a
        # WRBIAS (nCCDL_BIAS_WR); the read-out returns the biases
        "bias_then_wrbank": [wrb(0, 6, 0)]
        + [bias(0, nout * k, nout) for k in range(n_train)]
        + [wrb(0, 6, 2), rd(0, 100, nout)],
        # an ACT16 opens the row in every bank: WR_BANKs to two banks of one bank group need no
        # ACT of their own and follow each other (nCCDL_WR)
        "wrbank_pair_in_group": [
            wr(0, 1),
            mac(0, 6, 0, 1),
            wrb(0, 6, 4, 1),
            wrb(min(1, cfg.geometry.banks_per_group - 1), 6, 4, 1),
            rd(0, 100),
        ],
        # the same with read-outs: the WR of the open row follows an RDMAC (bus:RDMAC->WR)
        "rdmac_then_wrbank": [wrb(0, 6, 0)]
        + [rdm(0, 100 + nout * k, nout) for k in range(n_train)]
        + [wrb(0, 6, 2)],
    }


#: The directed programs that close coverage holes, each checked for its own bins.
TARGETED = ("mac_then_bias", "bias_then_wrbank", "wrbank_pair_in_group", "rdmac_then_wrbank")


def _same_mode(cfg: PimConfig, a: Op, b: Op) -> bool:
    """No TMOD between ``a`` and ``b`` (either needs no particular mode, or both the same)."""
    pol, dual = cfg.timing.mode_switch, cfg.buffers.obuf_dual_port
    ma, mb = mode_of(a, pol, dual), mode_of(b, pol, dual)
    return ma is None or mb is None or ma == mb


def directed_targets(cfg: PimConfig) -> dict[str, set[str]]:
    """The rules each program of :data:`TARGETED` must bind (in at least one mode).

    A rule between commands of different register-access modes cannot bind here: a TMOD sits
    between them, and nMODCH exceeds these rules' latencies. ``bus:RDMAC->WR`` is
    ``nCLREG + nBL + nRTW_PAD - nCWL + nWPRE``, 0 on both presets: one command per cycle always
    dominates it, so it is a target only where a config gives it a latency (``rtw`` of
    tb/cmd_sched SIM_CONFIGS)."""
    t = cfg.timing
    out: dict[str, set[str]] = {p: set() for p in TARGETED}
    if _same_mode(cfg, Op.MAC16, Op.WRBIAS):
        out["mac_then_bias"].add("out:MAC16->CLRMAC")
    if _same_mode(cfg, Op.WRBIAS, Op.WR):
        out["bias_then_wrbank"].add("nCCDL_BIAS_WR")
    if cfg.geometry.banks_per_group > 1:
        out["wrbank_pair_in_group"].add("nCCDL_WR")
    if _same_mode(cfg, Op.RDMAC, Op.WR) and RULE_BY_NAME["bus:RDMAC->WR"].latency(t) >= 1:
        out["rdmac_then_wrbank"].add("bus:RDMAC->WR")
    return out


def directed_need(policy: str) -> set[str]:
    """Timing rules the directed programs must bind (ties count) under each mode policy.

    nRAS and nRC are always dominated on aim-gddr6 (nRCD_MAC + nRTP > nRAS, nRP after that >
    nRC); they are checked on every ACT/PREA by the bus channel but never bind. Under
    "aim-register" a TMOD (nMODCH) separates every register command from every MAC/row command,
    so the rules between those classes bind only under the other policies."""
    common = {
        "nRCD_MAC",
        "nRP",
        "nRTP",
        "nCCDL_MAC",
        "nRCD_WR",
        "out:RDMAC->CLRMAC",
        "bus:WRGB->RDMAC",
        "bus:RDMAC->WRGB",
        "bus:WRBIAS->RDMAC",
        "bus:RDMAC->WRBIAS",
        "nCCDS_WR",
        "nCCDL_BIAS",
    }
    if policy == "aim-register":
        return common | {"nMODCH", "nWR"}
    if policy == "pim-normal":  # WR -> PREA crosses modes: the TMOD hides nWR
        return common | {"nMODCH", "gb:WRGB->MAC16", "out:WRBIAS->MAC16"}
    return common | {"nWR", "gb:WRGB->MAC16", "out:WRBIAS->MAC16", "nCCDS_RD"}


def directed_data(cfg: PimConfig, seed: int) -> tuple[dict, dict]:
    nrng = np.random.default_rng(seed)
    g = cfg.geometry
    return (
        _rand_rows(cfg, nrng, list(range(8))),
        {a: random_bf16(nrng, (g.lanes,)) for a in range(64)},
    )
