"""Tests of the cocotb + pyuvm bench for ``rtl/sched/pim_sched.sv`` (lockstep,
pymodel.golden.sched).

The environment (BFM, agents, scoreboard, the base test :class:`sched_env.SchedTest`) is
``sched_env.py``, the programs ``sched_stimulus.py``. cocotb tests (``run_*``, pyuvm): kernels per
mode, the ``make bench`` kernels, directed programs (binding-rule coverage), random streams,
refresh and full queues, the nFAW window, planted bugs. pytest: ``test_cmd_sched_sim`` (one
entry per ``RUNS`` row) and ``test_cmd_sched_assertion_sim`` (planted bugs the RTL assertions
must catch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cocotb
import pytest
import pyuvm
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from sched_env import CLK_NS, Scenario, SchedTest
from sched_stimulus import (
    directed_data,
    directed_need,
    directed_programs,
    directed_targets,
    kernel_scenario,
    random_program,
)
from stream import StreamProtocolError

from pymodel.config import resolve
from pymodel.golden.kernels import GemvKernel, QkKernel, SvKernel
from pymodel.golden.sched import MODE_CODE, Mode, SchedError, Scheduler
from pymodel.isa import InstOp, Instruction, encode_inst
from scoreboards.cmd_sched import SchedMismatch

# ------------------------------------------------------------------------------------- tests

MODES = (Mode.DCS, Mode.STATIC, Mode.PINGPONG)


def _mode_env() -> list[Mode]:
    return [Mode(m) for m in os.environ.get("SCHED_MODES", "dcs,static,pingpong").split(",") if m]


@pyuvm.test()
class run_kernels(SchedTest):
    """GEMV, QK^T (GQA 1 and 4) and SV at several sizes, bit-exact, lockstep, per mode."""

    def scenarios(self) -> list[Scenario]:
        cfg, out = self.cfg, []
        big = os.environ.get("SCHED_BIG", "1") == "1"
        for mi, mode in enumerate(_mode_env()):
            kerns: list[tuple[str, Any]] = [
                ("gemv128", GemvKernel(128, 128, cfg)),
                ("gemv128_clear", GemvKernel(128, 128, cfg, acc_init="clear")),
                ("gemv32x2048", GemvKernel(32, 2048, cfg)),
                ("qk300_g1", QkKernel(300, cfg, group=1)),
                ("qk512_g4", QkKernel(512, cfg, group=4)),
                ("qk512_g4_clear", QkKernel(512, cfg, group=4, acc_init="clear")),
                ("sv300", SvKernel(300, cfg)),
                ("sv512_obuf4", SvKernel(512, cfg, obuf=4)),
            ]
            if mode is Mode.PINGPONG:  # the ping-pong kernels: alternating buffer halves
                kerns += [
                    ("gemv128_halves", GemvKernel(128, 1024, cfg, halves=True)),
                    ("qk512_g2_halves", QkKernel(512, cfg, group=2, halves=True)),
                    ("sv1024_halves", SvKernel(1024, cfg, halves=True)),
                ]
            if big:
                kerns += [
                    ("gemv1024", GemvKernel(1024, 1024, cfg)),
                    ("qk4096_g1", QkKernel(4096, cfg, group=1)),
                    ("sv4096", SvKernel(4096, cfg)),
                ]
            for j, (name, k) in enumerate(kerns):
                idle = 0.3 if (j + mi) % 2 else 0.0
                out.append(kernel_scenario(k, mode, self.seed + 17 * j + mi, idle, name))
        return out


@pyuvm.test()
class run_bench(SchedTest):
    """The `make bench` kernels the RTL runs (pymodel.studies.kernel_study shapes, STATIC with one
    accumulator), in lockstep; with SCHED_RESULTS the cycles are written for the bench table."""

    def scenarios(self) -> list[Scenario]:
        from pymodel.studies.kernel_study import RTL_BENCH, build_kernel

        out = []
        for op, shape in RTL_BENCH:
            for mode in Mode:
                name = f"{op}-{shape.get('dim', shape.get('tokens'))}"
                out.append(
                    kernel_scenario(
                        build_kernel(op, self.cfg, mode, **shape), mode, self.seed, 0.0, name
                    )
                )
        return out


@pyuvm.test()
class run_directed(SchedTest):
    """Each dependency kind, row/mode/bus timing rules; all modes; binding-rule coverage: the
    rules of the config's policy over all programs, and each TARGETED program its own."""

    def scenarios(self) -> list[Scenario]:
        out = []
        for mode in MODES:
            for j, (name, prog) in enumerate(directed_programs(self.cfg).items()):
                rows, gpr = directed_data(self.cfg, self.seed + j)
                out.append(Scenario(name, prog, rows, gpr, None, mode, 0.0, seed=self.seed + j))
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        covered: set[str] = set()
        for sc in self.results:
            covered |= set(sc.stats["binding"])
        need = directed_need(self.cfg.timing.mode_switch)
        self.dut._log.info("binding timing rules seen: %s", sorted(covered))
        missing = need - covered
        assert not missing, f"timing rules never binding in the directed tests: {sorted(missing)}"
        for name, rules in directed_targets(self.cfg).items():  # each program its own bins
            seen = {r for sc in self.results if sc.name == name for r in sc.stats["binding"]}
            assert rules <= seen, f"{name}: never binding {sorted(rules - seen)} (any mode)"
            self.dut._log.info("%s binds %s", name, sorted(rules) or "(nothing required here)")


@pyuvm.test()
class run_random(SchedTest):
    """Constrained-random instruction streams, many seeds, all modes, idle on/off."""

    def scenarios(self) -> list[Scenario]:
        out = []
        n_seeds = int(os.environ.get("SCHED_SEEDS", "8"))
        for s in range(n_seeds):
            seed = self.seed * 1000 + s
            prog, rows, gpr = random_program(self.cfg, seed)
            mode = MODES[s % 3]
            out.append(
                Scenario(
                    f"random{s}", prog, rows, gpr, None, mode, 0.3 if s % 2 else 0.0, (0, 4), seed
                )
            )
        return out


@pyuvm.test()
class run_refresh_and_full(SchedTest):
    """(small-nREFI config) refresh colliding with MAC bursts; full queues (input stalls)."""

    def scenarios(self) -> list[Scenario]:
        cfg, out = self.cfg, []
        for mi, mode in enumerate(MODES):
            out.append(
                kernel_scenario(
                    GemvKernel(256, 256, cfg), mode, self.seed + mi, 0.0, "gemv256_refresh"
                )
            )
            out.append(
                kernel_scenario(
                    QkKernel(512, cfg, group=4), mode, self.seed + mi, 0.2, "qk512_g4_refresh"
                )
            )
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        refs = sum(sc.stats["refs"] for sc in self.results)
        stalls = sum(sc.stats["stalls"] for sc in self.results)
        assert refs > 0, "no REF issued"
        assert stalls > 0, "queues never filled (no input stall)"
        assert any("nRFC" in sc.stats["binding"] for sc in self.results), "nRFC never binding"


@pyuvm.test()
class run_faw(SchedTest):
    """(config with nFAW > nRAS + nRP) kernels that switch rows often: the nFAW window binds."""

    def scenarios(self) -> list[Scenario]:
        out = []
        # one MAC per row, rows alternating: an ACT16 every row cycle (nRC = 89 < nFAW)
        prog = [Instruction(InstOp.WR_INP, ch_mask=1, op_size=2, gpr=0, gb=0)]
        for i, row in enumerate((0, 1, 2, 0, 3, 1)):
            prog.append(
                Instruction(InstOp.MAC, ch_mask=1, op_size=2, gb=0, row=row, col=2 * i, out=i % 2)
            )
        prog.append(Instruction(InstOp.RD_OUT, ch_mask=1, op_size=2, gpr=100, out=0))
        for mi, mode in enumerate(MODES):
            rows, gpr = directed_data(self.cfg, self.seed + mi)
            out.append(Scenario("faw_rows", prog, rows, gpr, None, mode, 0.0, seed=self.seed))
        return out

    async def run_phase(self) -> None:
        await super().run_phase()
        assert any("nFAW" in sc.stats["binding"] for sc in self.results), "nFAW never binding"


@pyuvm.test()
class run_planted_bug(SchedTest):
    """DUT built with PlantBug=1 (dependency check ignores GB entries) or 2 (TMOD does not flip
    the mode register), or (PLANT=3) from the single-ported OBuf package while the reference
    has a dual-ported OBuf: must be caught by the cycle scoreboard; PlantBug=4 (the GPR read
    without an issue) by the bus monitor's quiet-bus check."""

    def scenarios(self) -> list[Scenario]:
        # PlantBug=1 needs the dependency check (DCS); 2 shows in any mode: STATIC's in-order
        # TMOD sequence; 3: RD_OUT between MACs, which a single-ported OBuf brackets by TMODs.
        plant = os.environ.get("PLANT", "1")
        if plant == "3":
            kern = QkKernel(512, self.cfg, group=4, acc_init="clear")
            return [kernel_scenario(kern, Mode.DCS, self.seed, 0.0, "bug")]
        mode = Mode.DCS if plant == "1" else Mode.STATIC  # 4: any mode with write data
        return [kernel_scenario(GemvKernel(32, 2048, self.cfg), mode, self.seed, 0.0, "bug")]

    async def run_phase(self) -> None:
        self.raise_objection()
        Clock(self.dut.clk_i, CLK_NS, unit="ns").start()
        sc = self.scenarios()[0]
        caught: BaseException | None = None
        try:
            await self.run_scenario(sc)
        except (SchedMismatch, AssertionError) as exc:
            caught = exc
        except Exception as exc:  # the golden channel's TimingViolation, IllegalCommand, ...
            caught = exc
        # The bench samples the bus at the falling edge, the RTL assertions at the next rising
        # edge: keep clocking so that a planted bug's assertion (if any) gets to fire.
        for _ in range(8):
            await RisingEdge(self.dut.clk_i)
        self.bfm.stop()
        if os.environ.get("PLANT") == "4":  # the GPR read without an issue: data on a quiet bus
            assert isinstance(caught, StreamProtocolError) and caught.rule == "quiet", (
                f"planted bug not caught by the bus monitor's quiet check: {caught!r}"
            )
        else:
            assert isinstance(caught, SchedMismatch), (
                f"planted bug not caught by the cycle SB: {caught!r}"
            )
        self.dut._log.info("planted bug caught as expected: %s", caught)
        self.drop_objection()


@cocotb.test(timeout_time=200, timeout_unit="us")
async def run_error_flags(dut: Any) -> None:
    """err_o is 0 out of reset and sticky-1 after each cause the pim_sched header names: read data
    nobody asked for, a DYN_* instruction offered, and more RDMACs outstanding than the return
    FIFO holds (the channel never answers; env SCHED_ERRORS picks the causes: the overflow also
    fires the return FIFO's a_no_overflow, so it runs in a build without assertions)."""
    cfg = resolve(os.environ.get("PIMPHONY_CONFIG") or None)
    causes = os.environ.get("SCHED_ERRORS", "unasked,dyn,overflow").split(",")
    Clock(dut.clk_i, CLK_NS, unit="ns").start()

    async def reset() -> None:
        for sig in (dut.inst_valid_i, dut.inst_i, dut.rd_valid_i, dut.rd_data_i, dut.gpr_rd_data_i):
            sig.value = 0
        dut.mode_i.value = MODE_CODE[Mode.DCS]
        dut.rst_ni.value = 0
        for _ in range(3):
            await RisingEdge(dut.clk_i)
        dut.rst_ni.value = 1
        for _ in range(4):
            await RisingEdge(dut.clk_i)
        assert not int(dut.err_o.value), "err_o set out of reset"

    async def expect_err(cause: str, within: int) -> None:
        for _ in range(within):
            await RisingEdge(dut.clk_i)
            if int(dut.err_o.value):
                break
        else:
            raise AssertionError(f"{cause}: err_o never set")
        for _ in range(8):
            await RisingEdge(dut.clk_i)
        assert int(dut.err_o.value), f"{cause}: err_o not sticky"

    async def offer(word: int) -> None:
        dut.inst_valid_i.value, dut.inst_i.value = 1, word
        await RisingEdge(dut.clk_i)
        dut.inst_valid_i.value = 0

    if "unasked" in causes:  # read data with no RDMAC outstanding
        await reset()
        dut.rd_valid_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.rd_valid_i.value = 0
        await expect_err("unasked read data", 4)
    if "dyn" in causes:  # a DYN_* instruction reaches the scheduler (the reference rejects it)
        dyn = Instruction(InstOp.DYN_LOOP, body_len=1)
        with pytest.raises(SchedError, match="expanded by the DPA"):
            Scheduler(cfg, Mode.DCS).run([dyn])
        await reset()
        await offer(encode_inst(dyn, cfg))
        await expect_err("DYN_LOOP offered", 4)
    if "overflow" in causes:  # eight RDMACs and no read data ever returns
        await reset()
        n = cfg.buffers.obuf_entries
        assert n > 4, "needs more OBuf entries than the return FIFO (RetDepth = 4) holds"
        inst = Instruction(InstOp.RD_OUT, ch_mask=1, op_size=n, gpr=0, out=0)
        await offer(encode_inst(inst, cfg))
        await expect_err("return FIFO overflow", 400 * n)


# ------------------------------------------------------------------------------------- pytest

#: Extra configs generated on the fly (like tb/cmd_decoder): small nREFI and shallow queues.
SIM_CONFIGS: dict[str, str | None] = {
    "aim-gddr6": None,
    "stress": (
        'preset = "aim-gddr6"\nname = "stress"\n\n'
        "[timing]\nnREFI = 600\n\n[buffers]\nqueue_depth = 3\n"
    ),
    "pim-normal": (
        'preset = "aim-gddr6"\nname = "pim-normal"\n\n[timing]\nmode_switch = "pim-normal"\n'
    ),
    "no-mode": 'preset = "aim-gddr6"\nname = "no-mode"\n\n[timing]\nmode_switch = "none"\n',
    "dual-port": 'preset = "aim-gddr6"\nname = "dual-port"\n\n[buffers]\nobuf_dual_port = true\n',
    # nFAW above nRAS + nRP (86): with one open row at a time the window binds between ACT16s
    "faw": 'preset = "aim-gddr6"\nname = "faw"\n\n[timing]\nnFAW = 200\n',
    # no TMOD and a read -> write rule longer than a cycle: RDMAC -> WR (0 cycles on both
    # presets, nCLREG + nBL + nRTW_PAD - nCWL + nWPRE) binds; nRTW_PAD 5 instead of 3 makes it 2
    "rtw": 'preset = "aim-gddr6"\nname = "rtw"\n\n[timing]\nmode_switch = "none"\nnRTW_PAD = 5\n',
}

RUNS = [
    # (id, config, cocotb test, PlantBug, extra env)
    ("kernels-dcs", "aim-gddr6", "run_kernels", 0, {"SCHED_MODES": "dcs"}),
    ("kernels-static", "aim-gddr6", "run_kernels", 0, {"SCHED_MODES": "static", "SCHED_BIG": "0"}),
    (
        "kernels-pingpong",
        "aim-gddr6",
        "run_kernels",
        0,
        {"SCHED_MODES": "pingpong", "SCHED_BIG": "0"},
    ),
    ("directed", "aim-gddr6", "run_directed", 0, {}),
    ("directed-pim-normal", "pim-normal", "run_directed", 0, {}),
    ("directed-no-mode", "no-mode", "run_directed", 0, {}),
    ("directed-rtw", "rtw", "run_directed", 0, {}),
    ("random", "aim-gddr6", "run_random", 0, {"SCHED_SEEDS": "30"}),
    ("refresh-full", "stress", "run_refresh_and_full", 0, {}),
    ("faw", "faw", "run_faw", 0, {}),
    ("planted-bug", "aim-gddr6", "run_planted_bug", 1, {"PLANT": "1"}),
    ("planted-mode-bug", "aim-gddr6", "run_planted_bug", 2, {"PLANT": "2"}),
    # the GPR read without an issue (the scheduler header: cmd_data_o is 0 on an idle bus)
    ("planted-quiet-bug", "aim-gddr6", "run_planted_bug", 4, {"PLANT": "4"}),
    # err_o for each cause (the overflow without assertions: a_no_overflow would stop it first)
    ("error-flags", "aim-gddr6", "run_error_flags", 0, {"SCHED_ERRORS": "unasked,dyn"}),
    ("error-overflow", "aim-gddr6", "run_error_flags", 0, {"SCHED_ERRORS": "overflow"}),
    # dual-ported OBuf (buffers.obuf_dual_port): read-outs need no TMOD, no column spacing
    ("kernels-dual-port", "dual-port", "run_kernels", 0, {"SCHED_MODES": "dcs", "SCHED_BIG": "0"}),
    ("random-dual-port", "dual-port", "run_random", 0, {"SCHED_SEEDS": "10"}),
    # the DUT from the single-ported package, the reference dual-ported: must mismatch
    ("planted-dual-port-bug", "dual-port", "run_planted_bug", 0, {"PLANT": "3"}),
]
#: Runs whose stimulus breaks an RTL assertion on purpose (the bench checks the DUT's answer).
NO_ASSERTIONS = {"error-overflow"}
#: Runs whose DUT is built from another config's package than the reference runs (planted).
DUT_CONFIG = {"planted-dual-port-bug": "aim-gddr6"}


def _config_sources(config: str) -> tuple[list[Path], str]:
    import simlib

    top = [
        "common/since_counter.sv",
        "common/peek_fifo.sv",
        "sched/sched_intake.sv",
        "sched/sched_cmd_gen.sv",
        "sched/sched_dep_check.sv",
        "sched/sched_entry_rules.sv",
        "sched/sched_timing.sv",
        "sched/sched_timing_check.sv",
        "sched/sched_refresh.sv",
        "sched/sched_issue.sv",
        "sched/pim_sched.sv",
    ]
    pkg, spec = simlib.config_package(config, SIM_CONFIGS[config])
    return pkg + [simlib.RTL / t for t in top], spec


#: Planted bugs each assertion family of rtl/sched must catch: (PlantBug, config, labels).
# (a_timing_safe's planted bug, PlantBug=3, is the formal proof's: formal/proofs.toml)
ASSERTION_BUGS = [
    (2, "aim-gddr6", {"a_tmod_needed"}),  # the mode register never flips
    (4, "aim-gddr6", {"a_gpr_read_for_data", "a_quiet_bus"}),  # GPR read without an issue
    (5, "aim-gddr6", {"a_quiet_bus"}),  # data on an idle bus
]


@pytest.mark.sim
@pytest.mark.parametrize(
    "plant, config, labels", ASSERTION_BUGS, ids=[f"bug{b[0]}" for b in ASSERTION_BUGS]
)
def test_cmd_sched_assertion_sim(
    plant: int, config: str, labels: set[str], tmp_path: Path, capfd: Any
) -> None:
    import simlib

    sources, cfg_spec = _config_sources(config)
    simlib.expect_assertion(
        capfd,
        labels,
        toplevel="pim_sched",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant},
        testcase="run_planted_bug",
        extra_env={"PIMPHONY_CONFIG": cfg_spec, "PLANT": "1" if plant == 3 else "2"},
    )


@pytest.mark.sim
@pytest.mark.parametrize("run_id, config, testcase, plant, env", RUNS, ids=[r[0] for r in RUNS])
def test_cmd_sched_sim(
    run_id: str, config: str, testcase: str, plant: int, env: dict[str, str], tmp_path: Path
) -> None:
    import simlib

    if simlib.SIM != "verilator":  # README "Simulators": int unsigned params, package structs
        pytest.skip("pim_sched needs Verilator (Icarus 11 rejects its package structs)")
    sources, cfg_spec = _config_sources(config)
    if run_id in DUT_CONFIG:
        sources = _config_sources(DUT_CONFIG[run_id])[0]
    simlib.run(
        toplevel="pim_sched",
        sources=sources,
        test_file=__file__,
        test_dir=tmp_path,
        params={"PlantBug": plant} if plant else {},
        testcase=testcase,
        extra_env={"PIMPHONY_CONFIG": cfg_spec, **env},
        # a planted bug here is the scoreboard's to catch, not an assertion
        assertions=not plant and run_id not in NO_ASSERTIONS,
    )
