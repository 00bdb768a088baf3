"""Unit tests of scoreboards.cmd_sched (no simulator): lockstep pass, planted bugs caught."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.config import preset
from pymodel.golden.channel import Channel, TimingViolation
from pymodel.golden.kernels import GemvKernel, QkKernel
from pymodel.golden.sched import Mode, Scheduler
from pymodel.isa import Command, Op, encode
from scoreboards.cmd_sched import (
    BusChannel,
    GprMismatch,
    GprScoreboard,
    SchedCycleScoreboard,
    SchedMismatch,
    int_to_lanes,
    lanes_to_int,
)

AIM = preset("aim-gddr6")


def _golden(kern, mode: Mode, seed: int = 1):
    d = kern.data(np.random.default_rng(seed))
    ch = Channel(AIM)
    for r, v in d.rows.items():
        ch.load_row(r, v)
    prog = kern.program()
    res = Scheduler(AIM, mode, ch).run(prog, dict(d.gpr))
    return d, prog, res


def _feed(sb: SchedCycleScoreboard, prog, res) -> None:
    for inst, acc in zip(prog, res.accepted, strict=True):
        sb.accept(acc, inst)
    for e in res.trace:
        sb.observe(e.cycle, e.cmd)


@pytest.mark.parametrize("mode", list(Mode))
def test_lockstep_replay_passes(mode: Mode) -> None:
    kern = QkKernel(64, AIM, group=2)
    d, prog, res = _golden(kern, mode)
    sb = SchedCycleScoreboard(AIM, mode, d.rows, d.gpr)
    _feed(sb, prog, res)
    out = sb.check()
    assert [e.cycle for e in out.trace] == [e.cycle for e in res.trace]
    gsb = GprScoreboard(d.expected)
    for a, v in res.gpr.items():
        gsb.write(a, v)
    gsb.check()


def test_planted_bug_one_cycle_late_is_named() -> None:
    """A DUT that issues one command a cycle late: the first mismatch names that cycle."""
    d, prog, res = _golden(GemvKernel(32, 128, AIM), Mode.DCS)
    sb = SchedCycleScoreboard(AIM, Mode.DCS, d.rows, d.gpr)
    for inst, acc in zip(prog, res.accepted, strict=True):
        sb.accept(acc, inst)
    bad = 5
    for i, e in enumerate(res.trace):
        sb.observe(e.cycle + (1 if i >= bad else 0), e.cmd)
    with pytest.raises(SchedMismatch, match=f"cycle {res.trace[bad].cycle}: command #{bad}"):
        sb.check()


def test_planted_bug_wrong_data_and_extra_command() -> None:
    d, prog, res = _golden(GemvKernel(16, 64, AIM), Mode.STATIC)
    sb = SchedCycleScoreboard(AIM, Mode.STATIC, d.rows, d.gpr)
    for inst, acc in zip(prog, res.accepted, strict=True):
        sb.accept(acc, inst)
    for e in res.trace:
        cmd = e.cmd
        if cmd.op is Op.WRGB and cmd.gb == 2:
            cmd = Command(Op.WRGB, gb=2, data=(0,) * 16)
        sb.observe(e.cycle, cmd)
    with pytest.raises(SchedMismatch, match="WRGB gb=2"):
        sb.check()
    sb2 = SchedCycleScoreboard(AIM, Mode.STATIC, d.rows, d.gpr)
    _feed(sb2, prog, res)
    sb2.observe(res.trace[-1].cycle + 5, Command(Op.CLRMAC, out=0))
    with pytest.raises(SchedMismatch, match="after the reference finished"):
        sb2.check()
    sb3 = SchedCycleScoreboard(AIM, Mode.STATIC, d.rows, d.gpr)
    _feed(sb3, prog, res)
    sb3.observe(res.trace[-1].cycle + 5, Command(Op.REF))  # trailing refresh is allowed
    sb3.check()
    assert sb3.trailing_refresh == 1


def test_empty_scoreboards_fail() -> None:
    with pytest.raises(SchedMismatch, match="no accepted instruction"):
        SchedCycleScoreboard(AIM, Mode.DCS).check()
    with pytest.raises(GprMismatch, match="no write"):
        GprScoreboard({1: np.zeros(16, dtype=np.uint16)}).check()


def test_gpr_planted_bug() -> None:
    exp = {3: np.arange(16, dtype=np.uint16)}
    gsb = GprScoreboard(exp)
    got = exp[3].copy()
    got[7] ^= 1
    gsb.write(3, got)
    with pytest.raises(GprMismatch, match=r"GPR\[3\] lane 7"):
        gsb.check()


def test_bus_channel_raises_on_violation_and_counts_binding() -> None:
    bus = BusChannel(AIM)
    bus.command(0, encode(Command(Op.ACT16, row=1), AIM), 0)
    with pytest.raises(TimingViolation, match="nRCD_MAC"):
        bus.command(10, encode(Command(Op.MAC16, col=0, gb=0, out=0), AIM), 0)
    bus.command(AIM.timing.nRCD_MAC, encode(Command(Op.MAC16), AIM), 0)
    assert bus.binding["nRCD_MAC"] == 1
    lanes = tuple(range(16))
    assert int_to_lanes(lanes_to_int(lanes), 16) == lanes


def test_session_lockstep_idle_refresh_reported_after_next_acceptance() -> None:
    """A refresh the DUT decides while idle, in the very cycle it accepts the next program's
    first instruction, may reach the scoreboard after that acceptance: it is still an idle
    refresh (found by CI with SEED=78313846). A command of the program itself at that cycle is
    impossible (first issue is one cycle after acceptance), so nothing is hidden by this."""
    from scoreboards.cmd_sched import SchedLockstep

    cfg = AIM.with_overrides({"timing": {"nREFI": 400, "nRFC": 100, "mode_switch": "none"}})
    mode = Mode.DCS
    prog1 = QkKernel(32, cfg).program()
    prog2 = GemvKernel(16, 128, cfg).program()
    # The "DUT": the reference on its own channel, program 1, then an idle refresh at the due
    # cycle, then program 2 accepted from that same cycle on.
    dut_ch = Channel(cfg)
    dut = Scheduler(cfg, mode, dut_ch)
    r1 = dut.run(prog1, {})
    due = (dut_ch.refs_issued + 1) * cfg.timing.nREFI
    assert r1.trace[-1].cycle < due
    pre = dut_ch.probe(Command(Op.PREA), due)
    dut_ch.issue(Command(Op.PREA), pre)
    arrivals = list(range(pre, pre + len(prog2)))
    r2 = dut.run(prog2, {}, arrivals=arrivals, start_cycle=pre)

    sb = SchedLockstep(cfg, mode, "ch0")
    sb.begin({})
    for inst, acc in zip(prog1, r1.accepted, strict=True):
        sb.accept(acc, inst)
    for e in r1.trace:
        sb.observe(e.cycle, e.cmd)
    sb.check()
    sb.begin({})
    sb.accept(arrivals[0], prog2[0])  # the monitor reports the acceptance first ...
    sb.observe(pre, Command(Op.PREA))  # ... then the idle refresh decided in the same cycle
    for inst, acc in zip(prog2[1:], arrivals[1:], strict=True):
        sb.accept(acc, inst)
    for e in r2.trace:
        sb.observe(e.cycle, e.cmd)
    res = sb.check()
    assert res is not None and sb.idle_refresh == 1
    assert any(e.cmd.op is Op.REF for e in res.trace)
