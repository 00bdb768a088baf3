"""Tests of the cocotb + pyuvm bench for ``rtl/dpa/dpa_ctrl.sv`` (``scoreboards.dpa``).

The environment (BFM, agents, scoreboard, the base test :class:`dpa_env.DpaTest`) is
``dpa_env.py``, the random stimulus ``dpa_stimulus.py``.

cocotb tests (pyuvm tests, ``run_*``):
- ``run_directed_errors``: every host error code and every instruction-path error, each asserted
  by count as well as by the scoreboard; templates (QK^T, SV, KV write) over a grown request.
- ``run_churn``: >= 10,000 random OPEN/GROW/CLOSE commands (env ``DPA_CHURN``; TRANSLATEs come on
  top) mixed with random DYN_LOOP programs and bursts of plain words.
- ``run_reset_mid_traffic``: reset while commands and loops are in flight (three times), then
  traffic against a fresh reference.
- ``run_passthrough_rate``: a back-to-back stream of N plain words takes N cycles from the first
  acceptance to the last output (one per cycle); then with backpressure, a host command in the
  middle of a stream, and a loop / stray word right after one.
- ``run_planted_bug`` (only on the ``PlantBug=1`` build): the churn of ``run_churn`` must fail
  with a :class:`DpaMismatch` (``expect_error``), so the pass means "the bug was caught".
- ``run_planted_stream_bug`` (only on the ``PlantBug=4`` build, without RTL assertions): the churn
  must fail with the output stream monitor's ``hold`` rule (a stalled word dropped).
- ``run_protocol_violation`` (env ``DPA_VIOLATE``): a driver breaking the input stream rule; the
  RTL assertions must stop it (``test_dpa_ctrl_input_assertion_fires``).

Functional coverage (:mod:`dpa_coverage`, cocotb-coverage) is sampled for every accepted host
command; ``make coverage`` exports it (env ``PIMPHONY_COVERAGE``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cocotb
import pytest
import pyuvm
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from dpa_env import CLK_NS, TIMEOUT_MS, DpaTest
from dpa_stimulus import HostCmd
from stream import StreamProtocolError

from pymodel.config import resolve
from pymodel.golden.dpa import (
    DpaLayout,
    HostOp,
    append_template,
    kv_write_template,
    qk_template,
    sv_template,
)
from pymodel.isa import (
    INST_OPCODE_BITS,
    InstOp,
    Instruction,
    ModiField,
    encode_inst,
)
from scoreboards.dpa import DpaMismatch


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_directed_errors(DpaTest):
    """Every error code, by count; templates over a grown request."""

    async def body(self) -> None:
        lay, cfg, dut = self.lay, self.cfg, self.dut
        nr = cfg.dpa.max_requests
        O, G, C, T = (int(op) for op in HostOp)  # noqa: E741
        too_many = nr < 1 << len(dut.host_req_i)  # an id beyond the table fits the port
        cmds = [(O, nr, 0)] if too_many else []  # TOO_MANY_REQUESTS
        cmds += [
            (O, 0, 300),
            (O, 0, 5),  # ALREADY_OPEN
            (G, 1, 3),
            (C, 1, 0),
            (T, 1, 0),  # UNKNOWN_REQUEST (never opened)
            (O, 1, lay.max_tokens + 1),  # TOO_LONG
            (G, 0, lay.max_tokens),  # TOO_LONG
            (T, 0, 5),
            (T, 0, 6),  # rows 0..5 exist (300 tokens = 3 blocks); 6 is OUT_OF_RANGE
            (O, 2, 0),
            (C, 2, 0),
            (C, 2, 0),  # closed request: UNKNOWN_REQUEST
        ]
        await self.send(cmds, [])
        for name, n in (
            ("TOO_MANY_REQUESTS", int(too_many)),
            ("ALREADY_OPEN", 1),
            ("UNKNOWN_REQUEST", 4),
            ("TOO_LONG", 2),
            ("OUT_OF_RANGE", 1),
        ):
            assert self.status(name) == n, (name, self.sb.summary())
        # fill the pool: NO_MEMORY, and the failing request is unchanged
        if lay.num_chunks <= 1024:  # (at the default 16384 chunks filling takes too long)
            # request 1 at the maximum length: its last row is in the last allowed chunk
            last_row = lay.max_chunks * lay.chunk_rows - 1
            await self.send(
                [(O, r, lay.max_tokens) for r in range(1, nr)] + [(T, 0, 5), (T, 1, last_row)], []
            )
            assert self.status("NO_MEMORY") >= 1, self.sb.summary()
        await self.send([(C, nr - 1 if nr > 3 else 2, 0)], [])
        # instruction-path errors
        mac = Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=1)
        modi = Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=2)
        progs = [
            [modi],  # stray DYN_MODI (BAD_PROGRAM)
            [
                Instruction(InstOp.DYN_LOOP, req=0, body_len=2),
                mac,
                Instruction(InstOp.DYN_LOOP, req=0, body_len=1),
            ],  # nested -> BAD_PROGRAM
            [
                Instruction(InstOp.DYN_LOOP, req=nr - 1 if nr > 3 else 2, body_len=1),
                mac,
            ],  # closed request -> UNKNOWN_REQUEST
            [Instruction(InstOp.DYN_LOOP, req=0, body_len=2), modi, mac],  # row 1,3,5: fine
            [
                Instruction(InstOp.DYN_LOOP, req=0, body_len=2),
                modi,
                Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=2),
            ],  # row 6 -> OUT_OF_RANGE
            [mac, modi],  # stray DYN_MODI right behind a pass-through word
            append_template(nr - 1 if nr > 3 else 2, 0),  # closed request -> UNKNOWN_REQUEST
            append_template(0, 40),  # 300 -> 301 tokens: K + V column writes
            qk_template(cfg, 0, first=2, count=5),  # window: block 2 only
            qk_template(cfg, 0, first=3),  # window past the end: nothing, no error
        ]
        words = [w for p in progs for w in self.stim.words(p)] + [7]  # unknown opcode
        # a loop body with a DYN_MODI naming no field (field 7 of 5): BAD_PROGRAM
        bad_modi = int(InstOp.DYN_MODI) | (7 << INST_OPCODE_BITS)  # field sits after the opcode
        words += [
            self.stim.words([Instruction(InstOp.DYN_LOOP, req=0, body_len=2)])[0],
            bad_modi,
            self.stim.words([mac])[0],
        ]
        for tmpl in (
            qk_template(cfg, 0),
            sv_template(cfg, 0),
            kv_write_template(cfg, 0, True, range(cfg.dpa.max_body_len - 2)),
        ):
            words += self.stim.words(tmpl)
        await self.send([], words)
        assert self.sb.n.err == 8 and self.sb.n.out > 20, self.sb.summary()
        # close whatever is open, down to the last open request (the pool is full again)
        await self.send([(C, r, 0) for r in range(nr)], [])
        assert dut.free_chunks_o.value.to_unsigned() == lay.num_chunks, self.sb.summary()


class ChurnTest(DpaTest):
    """Random commands and programs in batches; idle cycles and backpressure on/off per batch."""

    async def body(self) -> None:
        n = int(os.environ.get("DPA_CHURN", "10000"))
        t0 = self.bfm.cycle
        churn = 0  # OPEN/GROW/CLOSE commands sent
        batch_no = 0
        while churn < n:
            cmds = [self.stim.host() for _ in range(500)]
            churn += sum(1 for op, _, _ in cmds if op != HostOp.TRANSLATE)
            words = [w for _ in range(20) for w in self.stim.program()]
            # idle / backpressure: all four combinations, then random
            on_idle, on_bp = (
                (batch_no % 2, batch_no // 2 % 2)
                if batch_no < 4
                else (self.rng.random() < 0.5, self.rng.random() < 0.5)
            )
            self.idle_prob = 0.3 if on_idle else 0.0
            self.bfm.out_ready_prob = 0.5 if on_bp else 1.0
            self.bfm.resp_ready_prob = 0.7 if on_bp else 1.0
            await self.send(cmds, words)
            batch_no += 1
        s = self.sb.n.by_status or {}
        assert churn >= n and s["NO_MEMORY"] > 0 and self.sb.n.translate_ok > n // 20, (
            self.sb.summary()
        )
        assert self.bfm.out_stalls > 0 and self.bfm.resp_stalls > 0, "no backpressure happened"
        self.log.info(
            "churn: %d OPEN/GROW/CLOSE in %d batches, %d cycles; stalls out %d resp %d",
            churn,
            batch_no,
            self.bfm.cycle - t0,
            self.bfm.out_stalls,
            self.bfm.resp_stalls,
        )


@pyuvm.test(
    timeout_time=TIMEOUT_MS, timeout_unit="ms", skip=os.environ.get("DPA_PLANT_BUG", "0") == "1"
)
class run_churn(ChurnTest):
    """>= 10,000 OPEN/GROW/CLOSE (+ TRANSLATEs) with DYN_LOOP programs, invariants throughout."""


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_reset_mid_traffic(DpaTest):
    """Reset while commands and loops are in flight; traffic continues against a fresh model."""

    async def body(self) -> None:
        dut = self.dut
        self.bfm.out_ready_prob, self.bfm.resp_ready_prob = 0.7, 0.8
        for round_ in range(3):
            running = self.start(
                [self.stim.host() for _ in range(300)],
                [w for _ in range(20) for w in self.stim.program()],
            )
            await ClockCycles(dut.clk_i, self.rng.randrange(200, 800))
            self.raise_if_error()
            assert not running[0][1].done(), "traffic finished before the reset"
            await self.reset_mid_traffic(running)
            await FallingEdge(dut.clk_i)
            assert dut.resp_valid_o.value == 0 and dut.out_valid_o.value == 0
            assert dut.free_chunks_o.value.to_unsigned() == self.lay.num_chunks, round_
        await self.send(
            [self.stim.host() for _ in range(500)],
            [w for _ in range(20) for w in self.stim.program()],
        )


@pyuvm.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
class run_passthrough_rate(DpaTest):
    """Plain words stream at one per cycle (N words: N cycles first acceptance -> last output)."""

    async def body(self) -> None:
        sbc, n = self.env.sb, 256
        self.idle_prob = 0.0
        self.bfm.out_ready_prob = 1.0
        await self.send([], self.stim.words([self.stim.plain() for _ in range(n)]))
        acc, out = sbc.inst_cycles[-n:], sbc.out_cycles[-n:]
        span = out[-1] - acc[0]
        self.log.info(
            "pass-through: %d words, first accepted cycle %d, last out cycle %d: "
            "%d cycles (%.3f words/cycle)",
            n,
            acc[0],
            out[-1],
            span,
            n / span,
        )
        assert acc == list(range(acc[0], acc[0] + n)), "intake not back to back"
        assert out == [c + 1 for c in acc], "each word not out the cycle after its acceptance"
        assert span == n, f"{n} plain words took {span} cycles"
        # with backpressure: still correct, and no bubble beyond the stalls
        self.bfm.out_ready_prob = 0.5
        stalls0 = self.bfm.out_stalls
        await self.send([], self.stim.words([self.stim.plain() for _ in range(n)]))
        acc, out = sbc.inst_cycles[-n:], sbc.out_cycles[-n:]
        stalls = self.bfm.out_stalls - stalls0
        assert out[-1] - acc[0] == n + stalls, (out[-1] - acc[0], n, stalls)
        # a host command arriving in the middle of a stream goes first; then a loop and a stray
        # DYN_MODI straight behind plain words
        self.bfm.out_ready_prob = 1.0
        late = [(int(HostOp.OPEN), 0, 300), (int(HostOp.TRANSLATE), 0, 1)]
        plain = [self.stim.plain() for _ in range(40)]
        h_task = cocotb.start_soon(self._late_host(late, 10))
        await self.send([], self.stim.words(plain))
        await h_task
        await self.wait_drained()
        acc = sbc.inst_cycles[-len(plain) :]
        assert acc[0] < sbc.host_cycles[-2] < acc[-1], "the host command did not meet the stream"
        loop = qk_template(self.cfg, 0)[1:]  # DYN_LOOP + body
        words = self.stim.words([*plain[:3], *loop, *plain[:2], self.stim.modi(), plain[0]])
        await self.send([], words)
        assert self.sb.n.err == 1, self.sb.summary()

    async def _late_host(self, cmds: list[HostCmd], delay: int) -> None:
        await ClockCycles(self.dut.clk_i, delay)
        await self.send(cmds, [], drain=False)


@pyuvm.test(
    timeout_time=TIMEOUT_MS,
    timeout_unit="ms",
    skip=os.environ.get("DPA_PLANT_BUG", "0") != "1",
    expect_error=DpaMismatch,
)
class run_planted_bug(ChurnTest):
    """PlantBug=1 (a popped chunk stays on its free stack): run_churn must raise DpaMismatch."""


@pyuvm.test(
    timeout_time=TIMEOUT_MS,
    timeout_unit="ms",
    skip=os.environ.get("DPA_PLANT_BUG", "0") != "4",
    expect_error=StreamProtocolError,
)
class run_planted_stream_bug(ChurnTest):
    """PlantBug=4 (a stalled output word dropped) built without the RTL assertions: the output
    stream monitor must report the broken hold rule on ``out``."""

    async def body(self) -> None:
        try:
            await super().body()
        except StreamProtocolError as exc:
            assert (exc.port, exc.rule) == ("out", "hold"), f"not the planted bug: {exc}"
            raise


@cocotb.test(timeout_time=1, timeout_unit="ms", skip=not os.environ.get("DPA_VIOLATE"))
async def run_protocol_violation(dut: Any) -> None:
    """A driver that breaks the input stream rule (env DPA_VIOLATE = ``host``: host_valid_i
    dropped before host_ready_o; ``inst``: inst_i changed while stalled). The RTL's input
    assertions must stop the simulation; reaching the end of this test is a failure."""
    cfg = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
    Clock(dut.clk_i, CLK_NS, unit="ns").start()
    for sig in (
        dut.host_valid_i,
        dut.inst_valid_i,
        dut.host_op_i,
        dut.host_req_i,
        dut.host_arg_i,
        dut.inst_i,
    ):
        sig.value = 0
    dut.out_ready_i.value = dut.resp_ready_i.value = 1
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    # an OPEN keeps the controller busy (host_ready_o and inst_ready_o low) for a few cycles
    dut.host_op_i.value, dut.host_req_i.value = int(HostOp.OPEN), 0
    dut.host_arg_i.value = 2 * DpaLayout.of(cfg).chunk_tokens
    dut.host_valid_i.value = 1
    await RisingEdge(dut.clk_i)
    mac = encode_inst(Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=1), cfg)
    if os.environ["DPA_VIOLATE"] == "host":  # a second command offered, then withdrawn
        dut.host_req_i.value = 1
        await RisingEdge(dut.clk_i)
        assert not dut.host_ready_o.value, "the DUT was not busy: no violation made"
        dut.host_valid_i.value = 0
    else:  # an instruction offered, then replaced by another while stalled
        dut.host_valid_i.value = 0
        dut.inst_i.value, dut.inst_valid_i.value = mac, 1
        await RisingEdge(dut.clk_i)
        assert not dut.inst_ready_o.value, "the DUT was not busy: no violation made"
        dut.inst_i.value = mac ^ (1 << (len(dut.inst_i) - 1))
    await ClockCycles(dut.clk_i, 20)
    raise AssertionError("protocol violation went unnoticed by the RTL assertions")


# ---------------------------------------------------------------------------------- pytest side

SMALL_TOML = (
    'preset = "aim-gddr6"\nname = "dpa-small"\n\n'
    "[geometry]\nrows_per_bank = 32\n\n[module]\nchannels = 3\n\n"
    "[dpa]\nmax_requests = 6\nmax_chunks_per_request = 8\nchunk_rows = 4\n"
)
TESTS = ["run_directed_errors", "run_churn", "run_reset_mid_traffic", "run_passthrough_rate"]


@pytest.mark.sim
@pytest.mark.parametrize("plant", [0, 1, 4])
def test_dpa_ctrl_sim(plant: int, tmp_path: Path) -> None:
    """Small sizes (6 requests x 8 chunks, 3 channels x 8 chunks): all tests; PlantBug=1: the
    churn must fail with a DpaMismatch (run_planted_bug expects it); PlantBug=4: with a
    StreamProtocolError from the output monitor (run_planted_stream_bug)."""
    import simlib

    sources, cfg = _small_sources()
    simlib.run(
        toplevel="dpa_ctrl",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase={0: TESTS, 1: "run_planted_bug", 4: "run_planted_stream_bug"}[plant],
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_PLANT_BUG": str(plant)},
        assertions=not plant,  # the planted bug is for the scoreboard to catch, not an assertion
    )


def _small_sources() -> tuple[list[Path], str]:
    import simlib

    pkg, cfg = simlib.config_package("dpa-small", SMALL_TOML)
    return pkg + [simlib.RTL / "common" / "dpa_ram.sv", simlib.RTL / "dpa" / "dpa_ctrl.sv"], cfg


#: Ownership checker of dpa_ctrl (the shadow map of chunks handed out).
OWNERSHIP = {
    "a_alloc_unowned",
    "a_free_owned",
    "a_free_plus_owned",
    "a_owned_used",
    "a_free_count",
    "a_owned_held",
    "a_top_range",
}
#: PlantBug value -> the assertions allowed to catch it first (rtl/dpa/dpa_ctrl.sv header).
PLANTED = {
    1: OWNERSHIP,  # a popped chunk stays free: handed out twice
    2: {"a_translate_owner"},  # TRANSLATE reads virtual chunk 0
    3: {"a_free_count"},  # rollback frees without counting
    4: {"a_out_hold"},  # a stalled output word dropped
    5: {"a_exp_onehot"},  # an expanded word names two channels
}


@pytest.mark.sim
@pytest.mark.parametrize("plant", sorted(PLANTED))
def test_dpa_ctrl_assertion_fires(plant: int, tmp_path: Path, capfd: Any) -> None:
    """Each planted RTL bug stops the churn on the assertion of its family."""
    import simlib

    sources, cfg = _small_sources()
    simlib.expect_assertion(
        capfd,
        PLANTED[plant],
        toplevel="dpa_ctrl",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase="run_churn",
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_PLANT_BUG": "0"},
    )


@pytest.mark.sim
@pytest.mark.parametrize("side", ["host", "inst"])
def test_dpa_ctrl_input_assertion_fires(side: str, tmp_path: Path, capfd: Any) -> None:
    """A driver breaking the stream rule on an input port stops the simulation."""
    import simlib

    sources, cfg = _small_sources()
    simlib.expect_assertion(
        capfd,
        {f"a_{side}_hold"},
        toplevel="dpa_ctrl",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        testcase="run_protocol_violation",
        extra_env={"PIMPHONY_CONFIG": cfg, "DPA_VIOLATE": side},
    )


@pytest.mark.sim
def test_dpa_ctrl_default_sizes_sim(tmp_path: Path) -> None:
    """The committed package (64 requests x 1024 chunks, 32 channels): directed tests and the
    pass-through rate."""
    import simlib

    simlib.run(
        toplevel="dpa_ctrl",
        sources=simlib.rtl_sources("common/dpa_ram.sv", "dpa/dpa_ctrl.sv"),
        test_file=__file__,
        test_dir=tmp_path,
        testcase=["run_directed_errors", "run_passthrough_rate"],
        extra_env={"PIMPHONY_CONFIG": "aim-gddr6"},
    )
