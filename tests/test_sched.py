"""Reference schedulers: data equal to sequential semantics, dependencies, refresh, queues."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel.config import PimConfig, preset
from pymodel.golden.bf16 import from_bf16, random_bf16
from pymodel.golden.inorder import run_sequential
from pymodel.golden.kernels import GemvKernel, QkKernel, SvKernel
from pymodel.golden.sched import Mode, SchedError, Scheduler, gpr_equal, run_kernel
from pymodel.isa import InstOp, Instruction, Op

CFG = preset("aim-gddr6")
NOMODE = CFG.with_overrides({"timing": {"mode_switch": "none"}})  # dependency tests: no TMODs
MODES = list(Mode)


def _inst(op: InstOp, **kw: int) -> Instruction:
    return Instruction(op, ch_mask=1, **kw)


KERNELS = {
    "gemv-256": lambda cfg, obuf: GemvKernel(256, 256, cfg, obuf=obuf),
    "gemv-2048x1024": lambda cfg, obuf: GemvKernel(1024, 2048, cfg, obuf=obuf),
    "gemv-ragged-1360": lambda cfg, obuf: GemvKernel(64, 1360, cfg, obuf=obuf),
    "qk-300": lambda cfg, obuf: QkKernel(300, cfg, obuf=obuf),
    "qk-1k-gqa4": lambda cfg, obuf: QkKernel(1024, cfg, group=4, obuf=obuf),
    "sv-300": lambda cfg, obuf: SvKernel(300, cfg, obuf=obuf),
    "sv-2500": lambda cfg, obuf: SvKernel(2500, cfg, obuf=obuf),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("obuf", [1, 8])
def test_kernels_bit_exact_under_every_mode(mode: Mode, kernel: str, obuf: int) -> None:
    k = KERNELS[kernel](CFG, obuf)
    data = k.data(np.random.default_rng(7))
    res = run_kernel(CFG, mode, k.program(), data.rows, data.gpr)
    assert gpr_equal(data.expected, res.gpr) == []
    assert res.stats.commands["MAC16"] == sum(i.op_size for i in k.program() if i.op is InstOp.MAC)
    assert sum(res.stats.causes.values()) == res.stats.cycles
    assert 0 < res.stats.mac_utilization <= 1


def test_hbm3_preset_kernel() -> None:
    cfg = preset("hbm3-pim")
    k = QkKernel(700, cfg, group=2)
    data = k.data(np.random.default_rng(3))
    res = run_kernel(cfg, Mode.DCS, k.program(), data.rows, data.gpr)
    assert gpr_equal(data.expected, res.gpr) == []


def test_sv_partial_sums_within_bf16_bound_of_float64() -> None:
    """obuf < d_head/16 reads per-block partial sums; the host adds them. Both variants stay
    within two bf16 roundings (2^-9 each) plus float32 accumulation of sum|s*v|."""
    for obuf in (8, 4, 1):
        k = SvKernel(3000, CFG, obuf=obuf)
        d = k.data(np.random.default_rng(5))
        res = run_kernel(CFG, Mode.DCS, k.program(), d.rows, d.gpr)
        s = np.concatenate([from_bf16(d.gpr[i]) for i in sorted(d.gpr)]).astype(np.float64)
        v = np.zeros((len(s), k.d_head))
        for blk in range(k.blocks):
            for j in range(k.dim_slots):
                row = from_bf16(d.rows[k.row_of(blk, j)]).astype(np.float64)  # banks x cols x lanes
                lo = blk * k.block_cols * 16
                cols = min(k.block_cols, (len(s) - lo) // 16)
                v[lo : lo + cols * 16, j * 16 : (j + 1) * 16] = row[:, :cols, :].reshape(16, -1).T
        y64 = s @ v
        mag = np.abs(s) @ np.abs(v)
        bound = (2 * 2.0**-9 + (len(s) // 16 + 8) * 2.0**-24) * mag
        got = from_bf16(k.combine(res.gpr)).astype(np.float64)
        assert (np.abs(got - y64) <= bound).all(), obuf


# --------------------------------------------------------------------------- dependencies


def _trace_ops(res) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(e.cycle, str(e.cmd).split(" data=")[0]) for e in res.trace]


def _first(res, text: str) -> int:  # type: ignore[no-untyped-def]
    return next(c for c, s in _trace_ops(res) if s == text)


def _run(mode: Mode, program: list[Instruction], cfg: PimConfig = NOMODE):  # type: ignore[no-untyped-def]
    return Scheduler(cfg, mode).run(program)


def test_dcs_raw_gb_mac_waits_for_wrgb() -> None:
    prog = [
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=5),
        _inst(InstOp.MAC, op_size=1, gb=5, row=0, col=0, out=0),
    ]
    res = _run(Mode.DCS, prog)
    wr, mac = _first(res, "WRGB gb=5"), _first(res, "MAC16 col=0 gb=5 out=0")
    assert mac >= wr + CFG.timing.nCWLGB + CFG.timing.nBL


def test_dcs_war_wrgb_waits_for_older_mac() -> None:
    prog = [
        _inst(InstOp.MAC, op_size=2, gb=0, row=0, col=0, out=0),
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=1),
    ]  # WAR on gb 1: after MAC16 gb=1
    res = _run(Mode.DCS, prog)
    assert _first(res, "WRGB gb=1") > _first(res, "MAC16 col=1 gb=1 out=0")


def test_dcs_tracks_entries_pingpong_tracks_halves() -> None:
    prog = [
        _inst(InstOp.MAC, op_size=2, gb=0, row=0, col=0, out=0),
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=9),  # other entry, same half as gb 0..1
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=40),
    ]  # other half
    dcs, pp = _run(Mode.DCS, prog), _run(Mode.PINGPONG, prog)
    mac0 = _first(dcs, "MAC16 col=0 gb=0 out=0")
    assert _first(dcs, "WRGB gb=9") < mac0 and _first(dcs, "WRGB gb=40") < mac0
    assert _first(pp, "WRGB gb=9") > _first(pp, "MAC16 col=1 gb=1 out=0")


def test_dcs_rd_out_waits_for_macs_and_mac_waits_for_clear() -> None:
    prog = [
        _inst(InstOp.MAC, op_size=3, gb=0, row=0, col=0, out=2),
        _inst(InstOp.RD_OUT, op_size=1, gpr=100, out=2),
        _inst(InstOp.MAC, op_size=1, gb=0, row=0, col=5, out=2),
    ]
    res = _run(Mode.DCS, prog)
    last_mac = _first(res, "MAC16 col=2 gb=2 out=2")
    rd, clr = _first(res, "RDMAC out=2"), _first(res, "CLRMAC out=2")
    assert last_mac < rd < clr < _first(res, "MAC16 col=5 gb=0 out=2")


def test_dcs_io_overtakes_compute() -> None:
    """Out of order across queues: a younger WR_INP issues while an older MAC waits on tRCD."""
    prog = [
        _inst(InstOp.MAC, op_size=1, gb=0, row=3, col=0, out=0),
        _inst(InstOp.WR_INP, op_size=4, gpr=0, gb=8),
    ]
    dcs, static = _run(Mode.DCS, prog), _run(Mode.STATIC, prog)
    assert _first(dcs, "WRGB gb=8") < _first(dcs, "MAC16 col=0 gb=0 out=0")
    assert _first(static, "WRGB gb=8") > _first(static, "MAC16 col=0 gb=0 out=0")
    assert dcs.stats.cycles < static.stats.cycles


def test_static_waits_for_completion_between_instructions() -> None:
    t = CFG.timing
    prog = [
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=0),
        _inst(InstOp.MAC, op_size=1, gb=5, row=2, col=0, out=0),
    ]
    static, dcs = _run(Mode.STATIC, prog), _run(Mode.DCS, prog)
    assert _first(static, "ACT16 row=2") == _first(static, "WRGB gb=0") + t.nCWLGB + t.nBL
    assert _first(dcs, "ACT16 row=2") == _first(dcs, "WRGB gb=0") + 1  # no gap, no dependency


def test_dyn_instructions_are_rejected() -> None:
    with pytest.raises(SchedError, match="instruction 0: DYN_LOOP must be expanded"):
        _run(Mode.DCS, [Instruction(InstOp.DYN_LOOP, req=0, body_len=1)])


# --------------------------------------------------------------------------- refresh, queues


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_refresh_on_time_during_mac_bursts(mode: Mode) -> None:
    cfg = CFG.with_overrides({"timing": {"nREFI": 700, "nRFC": 120}})
    k = GemvKernel(512, 1024, cfg)
    data = k.data(np.random.default_rng(1))
    res = run_kernel(cfg, mode, k.program(), data.rows, data.gpr)
    assert gpr_equal(data.expected, res.gpr) == []
    refs = [e.cycle for e in res.trace if e.cmd.op is Op.REF]
    assert len(refs) == res.trace[-1].cycle // 700
    for n, cyc in enumerate(refs):
        due = (n + 1) * 700
        # never postponed: issued as soon as PREA + nRP (and the open MAC's nRTP) allow
        assert due <= cyc <= due + cfg.timing.nRTP + cfg.timing.nRAS + cfg.timing.nRP + 2
    assert res.stats.causes["ref"] > 0


@pytest.mark.parametrize("depth", [2, 3])
def test_small_queues_change_timing_not_results(depth: int) -> None:
    cfg = CFG.with_overrides({"buffers": {"queue_depth": depth}})
    k = QkKernel(1000, cfg, group=2)
    data = k.data(np.random.default_rng(2))
    small = run_kernel(cfg, Mode.DCS, k.program(), data.rows, data.gpr)
    big = run_kernel(CFG, Mode.DCS, k.program(), data.rows, data.gpr)
    assert gpr_equal(data.expected, small.gpr) == []
    assert small.stats.cycles >= big.stats.cycles
    assert all(b > a for a, b in zip(small.accepted, small.accepted[1:], strict=False))


def test_arrivals_delay_issue() -> None:
    prog = [
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=0),
        _inst(InstOp.WR_INP, op_size=1, gpr=0, gb=1),
    ]
    res = Scheduler(NOMODE, Mode.DCS).run(prog, arrivals=[10, 500])
    assert res.accepted == [10, 500]
    assert [e.cycle for e in res.trace] == [11, 501]


# --------------------------------------------------------------------------- random programs


@st.composite
def programs(draw: st.DrawFn) -> list[Instruction]:
    prog = []
    for _ in range(draw(st.integers(1, 25))):
        kinds = [InstOp.WR_INP, InstOp.MAC, InstOp.RD_OUT, InstOp.WR_BIAS, InstOp.RD_MAC]
        kind = draw(st.sampled_from(kinds))
        if kind is InstOp.WR_INP:
            gb = draw(st.integers(0, 63))
            n = draw(st.integers(1, min(8, 64 - gb)))
            prog.append(_inst(kind, op_size=n, gpr=draw(st.integers(0, 40)), gb=gb))
        elif kind is InstOp.MAC:
            gb, col = draw(st.integers(0, 63)), draw(st.integers(0, 63))
            n = draw(st.integers(1, min(8, 64 - gb, 64 - col)))
            prog.append(
                _inst(
                    kind,
                    op_size=n,
                    gb=gb,
                    row=draw(st.integers(0, 3)),
                    col=col,
                    out=draw(st.integers(0, 7)),
                )
            )
        else:
            out = draw(st.integers(0, 7))
            n = draw(st.integers(1, 8 - out))
            lo = 0 if kind is InstOp.WR_BIAS else 100  # biases read inputs, read-outs write 100+
            prog.append(_inst(kind, op_size=n, gpr=draw(st.integers(lo, lo + 40)), out=out))
    return prog


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(programs(), st.integers(0, 2**31))
def test_random_programs_keep_sequential_semantics(prog: list[Instruction], seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = CFG.geometry
    rows = {r: random_bf16(rng, (g.banks, g.columns_per_row, g.lanes)) for r in range(4)}
    gpr = {a: random_bf16(rng, (g.lanes,)) for a in range(41)}
    for cfg in (CFG, NOMODE, CFG.with_overrides({"timing": {"mode_switch": "pim-normal"}})):
        expect = run_sequential(cfg, prog, rows, gpr)
        for mode in MODES:
            res = run_kernel(cfg, mode, prog, rows, gpr)
            assert gpr_equal(expect, res.gpr) == [], (mode, cfg.timing.mode_switch)


# --------------------------------------------------------------------------- register-access mode


def _mode_changes(res) -> int:  # type: ignore[no-untyped-def]
    """Changes of register-access mode in the issued command sequence (aim-register classes)."""
    from pymodel.timing import mode_of

    modes = [mode_of(e.cmd.op, "aim-register") for e in res.trace]
    modes = [m for m in modes if m is not None]
    return sum(1 for a, b in zip([0] + modes, modes, strict=False) if a != b)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_one_tmod_per_mode_change(mode: Mode) -> None:
    k = GemvKernel(256, 256, CFG)
    res = run_kernel(CFG, mode, k.program())
    tmods = [e.cycle for e in res.trace if e.cmd.op is Op.TMOD]
    assert len(tmods) == _mode_changes(res) > 0
    for cyc in tmods:  # nothing in the nMODCH shadow
        assert not [e for e in res.trace if cyc < e.cycle < cyc + CFG.timing.nMODCH]


def test_static_gemv_command_sequence_is_aim_order() -> None:
    """CENT/AiM order per output group on one accumulator: WR_BIAS, MAC_ABK, RD_MAC, each mode
    change a TMOD (the first WRGB switches from the initial normal mode)."""
    k = GemvKernel(16, 16, CFG, obuf=1)
    res = run_kernel(CFG, Mode.STATIC, k.program())
    ops = [e.cmd.op.name for e in res.trace]
    assert ops == ["TMOD", "WRGB", "WRBIAS", "TMOD", "ACT16", "MAC16", "TMOD", "RDMAC"]
    t = CFG.timing
    cyc = [e.cycle for e in res.trace]
    assert cyc[2] - cyc[1] == t.nCWLGB + t.nBL  # STATIC gap: WRGB completion
    assert cyc[4] - cyc[3] == t.nMODCH and cyc[5] - cyc[4] == t.nRCD_MAC


@pytest.mark.parametrize("blocking, gap", [(True, 3), (False, 2)])
def test_blocking_rd_mac(blocking: bool, gap: int) -> None:
    """AiM's RD_MAC blocks until its data returns (nCLREG + nBL) plus one decode cycle."""
    cfg = CFG.with_overrides({"sched": {"blocking_rd_mac": blocking}})
    prog = [_inst(InstOp.RD_MAC, op_size=2, gpr=100, out=0)]
    res = Scheduler(cfg, Mode.STATIC).run(prog)
    rd = [e.cycle for e in res.trace if e.cmd.op is Op.RDMAC]
    assert rd[1] - rd[0] == gap == (cfg.timing.nCLREG + cfg.timing.nBL + (1 if blocking else 0))
    dcs = Scheduler(cfg, Mode.DCS).run(prog)  # the option is STATIC's (the AiM controller)
    rd = [e.cycle for e in dcs.trace if e.cmd.op is Op.RDMAC]
    assert rd[1] - rd[0] == cfg.timing.nBL


def test_dcs_mode_affinity_groups_io() -> None:
    """DCS drains the current mode before switching: fewer TMODs than STATIC, same results."""
    k = QkKernel(1024, CFG, group=8)
    d = k.data(np.random.default_rng(4))
    static = run_kernel(CFG, Mode.STATIC, k.program(), d.rows, d.gpr)
    dcs = run_kernel(CFG, Mode.DCS, k.program(), d.rows, d.gpr)
    assert gpr_equal(d.expected, dcs.gpr) == [] and gpr_equal(d.expected, static.gpr) == []
    assert dcs.stats.commands["TMOD"] * 4 < static.stats.commands["TMOD"]
    assert dcs.stats.cycles < static.stats.cycles


def test_refresh_from_register_mode_switches_first() -> None:
    """A refresh due while in register mode with a row open: TMOD, PREA, REF."""
    cfg = CFG.with_overrides({"timing": {"nREFI": 340}})
    prog = [
        _inst(InstOp.MAC, op_size=1, gb=0, row=0, col=0, out=0),
        _inst(InstOp.RD_MAC, op_size=8, gpr=100, out=0),
        _inst(InstOp.WR_INP, op_size=64, gpr=0, gb=0),
        _inst(InstOp.WR_INP, op_size=64, gpr=0, gb=0),
    ]
    res = Scheduler(cfg, Mode.STATIC).run(prog)
    ops = [e.cmd.op for e in res.trace]
    i = ops.index(Op.REF)
    assert ops[i - 3 : i] == [Op.WRGB, Op.TMOD, Op.PREA]
    assert ops[i + 1] is Op.TMOD  # back to register mode for the remaining WRGBs
