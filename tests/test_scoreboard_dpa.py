"""scoreboards.dpa without a simulator: a faithful 'DUT' (the reference) passes, planted bugs and
corrupted observations are caught."""

from __future__ import annotations

import random

import pytest

from pymodel.config import preset
from pymodel.golden.dpa import Dispatcher, DpaModel, DpaStatus, HostOp, Response, qk_template
from pymodel.isa import encode_inst
from scoreboards.dpa import DpaMismatch, DpaScoreboard

CFG = preset("aim-gddr6").with_overrides(
    {
        "geometry": {"rows_per_bank": 32},
        "module": {"channels": 3},
        "dpa": {"max_requests": 6, "max_chunks_per_request": 8, "chunk_rows": 4},
    }
)


def run(sb: DpaScoreboard, seed: int = 1, n: int = 400) -> None:
    """Drive the scoreboard with a second reference acting as the DUT."""
    rng = random.Random(seed)
    dut = DpaModel(CFG)
    disp = Dispatcher(dut)
    for cyc in range(n):
        op = rng.choices(list(HostOp), weights=[3, 5, 1, 3])[0]
        req, arg = rng.randrange(7), rng.randrange(0, 600 if op is not HostOp.TRANSLATE else 20)
        sb.host_cmd(op, req, arg, cyc)
        r = dut.host(op, req, arg)
        sb.host_resp(r.status, r.channel, r.row, cyc)
        sb.free_chunks(dut.free_chunks, cyc)
        if cyc % 10 == 0 and dut.reqs:
            for inst in qk_template(CFG, rng.choice(sorted(dut.reqs))):
                w = encode_inst(inst, CFG)
                sb.inst_in(w, cyc)
                res = disp.push(w)
                for o in res.out:
                    sb.out_word(o, cyc)
                if res.error is not None:
                    sb.error(res.error, cyc)
    sb.drain()


def test_faithful_dut_passes() -> None:
    sb = DpaScoreboard(CFG)
    run(sb)
    assert sb.n.translate_ok > 5 and sb.n.out > 50
    assert sb.n.by_status and sb.n.by_status["NO_MEMORY"] > 0


@pytest.mark.parametrize("plant", ["row", "out", "status"])
def test_planted_bug_is_caught(plant: str) -> None:
    with pytest.raises(DpaMismatch):
        run(DpaScoreboard(CFG, plant=plant))


def test_double_ownership_is_caught_without_the_reference() -> None:
    sb = DpaScoreboard(CFG)
    sb.host_cmd(HostOp.OPEN, 0, 300)
    sb.host_resp(0, 0, 0)
    sb.host_cmd(HostOp.OPEN, 1, 300)
    sb.host_resp(0, 0, 0)
    sb.host_cmd(HostOp.TRANSLATE, 0, 0)
    exp = sb.model.translate(0, 0)
    sb.host_resp(0, *exp)
    sb.host_cmd(HostOp.TRANSLATE, 1, 0)
    sb.exp_resp[-1] = (HostOp.TRANSLATE, 1, 0, Response(DpaStatus.OK, *exp))
    with pytest.raises(DpaMismatch, match="also virtual"):
        sb.host_resp(0, *exp)


def test_nothing_checked_fails_and_leftovers_fail() -> None:
    sb = DpaScoreboard(CFG)
    with pytest.raises(DpaMismatch, match="checked nothing"):
        sb.drain()
    sb.host_cmd(HostOp.OPEN, 0, 10)
    with pytest.raises(DpaMismatch, match="not drained"):
        sb.drain()
    with pytest.raises(DpaMismatch, match="free chunks"):
        sb.free_chunks(0)
    with pytest.raises(DpaMismatch, match="unexpected output"):
        sb.out_word(5)
