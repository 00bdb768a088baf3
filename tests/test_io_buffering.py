"""PIMphony's I/O-aware buffering as hardware: the dual-ported OBuf (buffers.obuf_dual_port) and
the ping-pong kernels in alternating buffer halves (pymodel.golden.kernels halves=True)."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.config import ConfigError, preset
from pymodel.gen.sv_pkg import sched_latency_tables
from pymodel.golden.channel import Channel, IllegalCommand
from pymodel.golden.kernels import GemvKernel, QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import Mode, gpr_equal, run_kernel
from pymodel.isa import Command, InstOp, Op
from pymodel.timing import RULES, applies, mode_of

CFG = preset("aim-gddr6")
DUAL = CFG.with_overrides({"buffers": {"obuf_dual_port": True}})


def _mac_then(cfg, op: Op) -> tuple[Channel, int]:  # type: ignore[no-untyped-def]
    """A channel with one MAC16 issued (into OBuf entry 0) and the earliest cycle ``op`` of
    entry 1 may follow it (mode ignored)."""
    ch = Channel(cfg)
    ch.issue(Command(Op.ACT16, row=0), 0)
    at = ch.probe(Command(Op.MAC16, col=0, gb=0, out=0), 1)
    ch.issue(Command(Op.MAC16, col=0, gb=0, out=0), at)
    return ch, at


def test_dual_port_read_out_needs_no_mode_switch() -> None:
    for op in (Op.RDMAC, Op.CLRMAC):
        assert mode_of(op, "aim-register") is not None
        assert mode_of(op, "aim-register", obuf_dual_port=True) is None
    assert mode_of(Op.WRGB, "aim-register", obuf_dual_port=True) is not None  # GB: one port
    single, at = _mac_then(CFG, Op.RDMAC)
    assert single.needs_switch(Op.RDMAC)
    with pytest.raises(IllegalCommand):  # AiM: RD_MAC needs register mode after a MAC
        single.probe(Command(Op.RDMAC, out=1), at + 1)
    dual, at = _mac_then(DUAL, Op.RDMAC)
    assert not dual.needs_switch(Op.RDMAC)
    dual.issue(Command(Op.RDMAC, out=1), dual.probe(Command(Op.RDMAC, out=1), at + 1))


def test_dual_port_lifts_only_the_column_path_between_reads_and_read_out() -> None:
    """RDMAC of another entry may follow a MAC16 in the next cycle (no nCCD on the column path);
    the same entry still waits for the accumulation (out: rules)."""
    nomode = {"timing": {"mode_switch": "none"}}
    single, at = _mac_then(CFG.with_overrides(nomode), Op.RDMAC)
    dual, at_d = _mac_then(DUAL.with_overrides(nomode), Op.RDMAC)
    assert single.probe(Command(Op.RDMAC, out=1), at + 1) == at + CFG.timing.nCCDL
    assert dual.probe(Command(Op.RDMAC, out=1), at_d + 1) == at_d + 1
    same = dual.probe(Command(Op.CLRMAC, out=0), at_d + 1)
    assert same == at_d + CFG.timing.nCCDL  # out:MAC16->CLRMAC holds on the same entry
    lifted = {
        (r.name, p, n) for r in RULES for p in r.prev for n in r.next if not applies(r, p, n, True)
    }
    assert lifted and all(Op.RDMAC in (p, n) and r.startswith("nCCD") for r, p, n in lifted)
    assert all(applies(r, p, n, False) for r in RULES for p in r.prev for n in r.next)


def test_dual_port_reaches_the_generated_rtl_tables() -> None:
    """The RTL gets the dual port only through the generated package: the latency table and
    the mode masks differ exactly where the model says."""
    n = len(Op)
    chan_a, chan_b = sched_latency_tables(CFG)["chan"], sched_latency_tables(DUAL)["chan"]
    diff = {(p, q) for p in Op for q in Op if chan_a[int(p) * n + q] != chan_b[int(p) * n + q]}
    assert (Op.MAC16, Op.RDMAC) in diff and (Op.RDMAC, Op.MAC16) in diff
    assert all(Op.RDMAC in pq for pq in diff)


def test_dual_port_is_a_boolean() -> None:
    with pytest.raises(ConfigError, match="obuf_dual_port"):
        CFG.with_overrides({"buffers": {"obuf_dual_port": 1}})


KERNELS = {
    "gemv": lambda cfg: GemvKernel(160, 2048, cfg, halves=True),
    "qk": lambda cfg: QkKernel(700, cfg, group=2, halves=True),
    "sv": lambda cfg: SvKernel(3000, cfg, halves=True),
    "sv_partial": lambda cfg: SvKernel(3000, cfg, obuf=4, halves=True),
}


@pytest.mark.parametrize("cfg", [CFG, DUAL], ids=["single-port", "dual-port"])
@pytest.mark.parametrize("acc_init", ["bias", "clear"])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_pingpong_kernels_bit_exact(cfg, acc_init: str, kernel: str) -> None:  # type: ignore[no-untyped-def]
    k = KERNELS[kernel](cfg)
    k = type(k)(**{**k.__dict__, "acc_init": acc_init})
    d = k.data(np.random.default_rng(11))
    for mode in (Mode.PINGPONG, Mode.DCS):
        res = run_kernel(cfg, mode, k.program(), d.rows, d.gpr)
        assert gpr_equal(d.expected, res.gpr) == []


def test_pingpong_kernels_alternate_halves() -> None:
    half_gb, half_out = CFG.buffers.gb_entries // 2, CFG.buffers.obuf_entries // 2
    prog = GemvKernel(256, 2048, CFG, halves=True).program()
    gbs = [i.gb for i in prog if i.op is InstOp.WR_INP]
    assert set(gbs) == {0, half_gb} and gbs[:4] == [0, half_gb, 0, half_gb]
    assert max(i.op_size for i in prog if i.op is InstOp.WR_INP) == half_gb
    outs = sorted({i.out for i in prog if i.op is InstOp.MAC})
    assert outs == list(range(2 * half_out))
    reads = [i.out for i in prog if i.op is InstOp.RD_MAC]
    assert reads[:2] == [0, half_out]
    assert buffer_args(Mode.PINGPONG, CFG) == {"obuf": CFG.buffers.obuf_entries, "halves": True}
    assert buffer_args(Mode.STATIC, CFG)["obuf"] == 1


def test_rule_parts_cover_exactly_the_constrained_pairs() -> None:
    """The RTL's rule-by-rule checker (RulePrev/RuleNext rectangles) sees the same pairs as the
    channel model, with a single- and a dual-ported OBuf."""
    from pymodel.timing import rule_parts

    for dual in (False, True):
        for r in RULES:
            got = {(p, n) for a, b in rule_parts(r, dual) for p in a for n in b}
            want = {(p, n) for p in r.prev for n in r.next if applies(r, p, n, dual)}
            assert got == want, r.name
            if not dual:
                assert rule_parts(r, dual) == [(r.prev, r.next)]
