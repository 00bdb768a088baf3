"""The channel's fast path against its reference path (``Channel(cfg, checked=True)``).

Seeded random command streams, illegal commands included (operands out of range, unused fields
set, bad data, wrong bank state, wrong mode, too early, past the refresh deadline), probed and
issued at random cycles on both paths: every outcome (cycle, read data, or the error's type and
message) and the channel state must be identical. Then whole runs: the in-order issuer and the
three schedulers give the same traces, read data and statistics. A planted bug in the fast tables
shows the comparison fires.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pymodel.config import PimConfig, preset
from pymodel.golden.channel import Channel, ChannelError, OpTable
from pymodel.golden.inorder import InOrderIssuer, TraceRecorder
from pymodel.golden.kernels import GemvKernel, buffer_args
from pymodel.golden.sched import Mode, Scheduler
from pymodel.isa import CMD_FIELDS, DATA_OPS, OP_FIELDS, Command, Op, field_limits

AIM = preset("aim-gddr6")
SHORT_REFRESH = {"nREFI": 400, "max_postponed_refs": 2}
CONFIGS: dict[str, PimConfig] = {
    "aim-register": AIM.with_overrides({"timing": SHORT_REFRESH}),
    "pim-normal": AIM.with_overrides({"timing": {"mode_switch": "pim-normal", **SHORT_REFRESH}}),
    "none-dual-port": AIM.with_overrides(
        {"timing": {"mode_switch": "none", **SHORT_REFRESH}, "buffers": {"obuf_dual_port": True}}
    ),
    "no-refresh": AIM.with_overrides({"timing": {"refresh": False}}),
    "hbm3-pim": preset("hbm3-pim"),
}
# bf16 patterns that stress the arithmetic: NaN, +-inf, subnormals, signed zeros, large values.
SPECIAL = (0x7FC0, 0x7F80, 0xFF80, 0x0001, 0x8001, 0x0000, 0x8000, 0x7F7F, 0x3F80, 0xC2F7)
OPS = [op for op in Op if op is not Op.NOP] * 3 + [Op.NOP, Op.MAC16, Op.MAC16, Op.MAC16]


def _lanes(rng: random.Random, n: int) -> tuple[int, ...]:
    return tuple(
        rng.choice(SPECIAL) if rng.random() < 0.2 else rng.randrange(1 << 16) for _ in range(n)
    )


def random_command(rng: random.Random, cfg: PimConfig, open_row: list[int | None]) -> Command:
    """A command that is mostly well formed, often legal in the bank state ``open_row``."""
    op = rng.choice(OPS)
    same_row = open_row[0] is not None and open_row.count(open_row[0]) == len(open_row)
    if same_row and rng.random() < 0.4:
        op = Op.MAC16
    elif open_row.count(None) == len(open_row) and rng.random() < 0.15:
        op = Op.ACT16
    limits = field_limits(cfg)
    fields: dict[str, Any] = {}
    for name in CMD_FIELDS:
        if name in OP_FIELDS[op]:
            hi = 3 if name == "row" else limits[name]
            fields[name] = rng.randrange(hi) if rng.random() > 0.03 else rng.choice([-1, hi])
        elif rng.random() < 0.02:
            fields[name] = 1  # an unused field set
    if op in (Op.WR, Op.RD) and open_row[fields["bank"] % len(open_row)] is not None:
        if rng.random() < 0.8:
            fields["row"] = open_row[fields["bank"] % len(open_row)]
    lanes = cfg.geometry.lanes
    if op in DATA_OPS:
        fields["data"] = _lanes(rng, lanes)
        bad = rng.random()
        if bad < 0.02:
            fields["data"] = None
        elif bad < 0.04:
            fields["data"] = fields["data"][:-1]
        elif bad < 0.05:
            fields["data"] = (1 << 16,) + fields["data"][1:]
    elif rng.random() < 0.01:
        fields["data"] = (0,) * lanes
    return Command(op, **fields)


def _outcome(method: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        value = method(*args)
    except ChannelError as exc:
        return type(exc).__name__, str(exc)
    if isinstance(value, np.ndarray):
        return "read", value.tolist()
    return "ok", value


def _state(ch: Channel, with_data: bool) -> tuple[Any, ...]:
    timing = (
        ch.last_cycle,
        ch.refs_issued,
        ch.mode,
        tuple(ch.open_row),
        tuple(ch._last_any),
        tuple(map(tuple, ch._last_bank)),
        tuple(map(tuple, ch._last_gb)),
        tuple(map(tuple, ch._last_out)),
        tuple(ch._acts),
        ch.next_refresh_due,
        ch.refresh_deadline,
    )
    if not with_data:
        return timing
    rows = tuple(sorted((r, ch.row_data(r).tobytes()) for r in ch.data._rows))
    return timing + (ch.acc.tobytes(), ch.gb.tobytes(), rows)


def compare_paths(cfg: PimConfig, seed: int, steps: int, fast: Channel | None = None) -> list[str]:
    """Drive a fast and a reference channel with the same random calls; the differences."""
    rng = random.Random(seed)
    fast = fast or Channel(cfg)
    ref = Channel(cfg, checked=True)
    nrng = np.random.default_rng(seed)
    g = cfg.geometry
    with_data = fast.data is not None
    for row in range(3):
        data = nrng.integers(0, 1 << 16, (g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
        data[:, ::7, ::5] = SPECIAL[row]
        ref.load_row(row, data)
        if with_data:
            fast.load_row(row, data)
    diffs: list[str] = []
    for step in range(steps):
        cmd = random_command(rng, cfg, ref.open_row)
        base = max(0, ref.last_cycle + 1)
        cycle = base + (rng.randrange(60) if rng.random() < 0.97 else rng.randrange(20000))
        check_mode = rng.random() < 0.7
        calls: list[tuple[str, tuple[Any, ...]]] = []  # (Channel method, arguments)
        action = rng.random()
        if action < 0.6:  # probe, then issue where probed (or off by a little)
            calls.append(("probe", (cmd, cycle, check_mode)))
            probed = _outcome(ref.probe, cmd, cycle, check_mode)
            at = probed[1] if probed[0] == "ok" else cycle
            calls.append(("issue", (cmd, at + rng.choice([0, 0, 0, 0, -1, -3, 2]))))
        elif action < 0.7:
            calls.append(("tmod_cycle", (cmd, cycle)))
        else:  # issue with no probe first
            calls.append(("issue", (cmd, cycle)))
        for name, args in calls:
            got = _outcome(getattr(fast, name), *args)
            want = _outcome(getattr(ref, name), *args)
            if not with_data and want[0] == "read":
                want = ("ok", None)
            if got != want:
                diffs.append(f"step {step}: {name}{args}: fast {got}, reference {want}")
        if step % 97 == 0 or step == steps - 1:
            last = with_data and step == steps - 1
            if _state(fast, last) != _state(ref, last):
                diffs.append(f"step {step}: channel state differs")
        if len(diffs) > 5:
            break
    return diffs


pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value:RuntimeWarning", "ignore:overflow:RuntimeWarning"
)  # NaN/inf data


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_calls_same_outcomes(name: str, seed: int) -> None:
    assert compare_paths(CONFIGS[name], seed, 1500) == []


def test_random_calls_timing_only() -> None:
    """data=False: the same cycles and errors as the reference (reads return None)."""
    cfg = CONFIGS["aim-register"]
    assert compare_paths(cfg, 7, 1500, fast=Channel(cfg, data=False)) == []


def test_planted_bug_in_fast_tables_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAC16's channel-wide latencies one cycle short in the compiled tables (so nRCD_MAC):
    the comparison reports it."""
    compile_tables = Channel._compile

    def short_by_one(self: Channel) -> list[OpTable]:
        tables = compile_tables(self)
        mac = tables[Op.MAC16]
        tables[Op.MAC16] = dataclasses.replace(
            mac, any_latency=tuple(n - 1 for n in mac.any_latency)
        )
        return tables

    monkeypatch.setattr(Channel, "_compile", short_by_one)
    assert compare_paths(CONFIGS["aim-register"], 1, 1500)


def test_planted_bug_in_fast_state_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Channel, "_legal", lambda self, cmd, t, check_mode: True)
    assert compare_paths(CONFIGS["aim-register"], 1, 1500)


def _mac_stream(rows: int) -> list[Command]:
    cmds = [Command(Op.WRGB, gb=c, data=(0x3F80 + c,) * 16) for c in range(64)]
    for r in range(rows):
        cmds += [Command(Op.ACT16, row=r)]
        cmds += [Command(Op.MAC16, col=c, gb=c, out=r % 8) for c in range(64)]
        cmds += [Command(Op.RDMAC, out=r % 8), Command(Op.PREA)]
    return cmds


@pytest.mark.parametrize("name", ["aim-register", "pim-normal", "none-dual-port"])
def test_in_order_issuer_same_trace(name: str) -> None:
    cfg = CONFIGS[name]
    runs = []
    for checked in (False, True):
        ch = Channel(cfg, checked=checked)
        rng = np.random.default_rng(5)
        for r in range(12):
            ch.load_row(r, rng.integers(0, 1 << 16, (16, 64, 16), dtype=np.uint16))
        trace = TraceRecorder()
        ch.observe(trace)
        reads = InOrderIssuer(ch).run(_mac_stream(12))
        runs.append((trace.entries, [r.tolist() for r in reads], ch.acc.tobytes()))
    assert runs[0] == runs[1]
    assert any(e.cmd.op is Op.REF for e in runs[0][0]) == cfg.timing.refresh


@pytest.mark.parametrize("mode", list(Mode))
def test_schedulers_same_result(mode: Mode) -> None:
    cfg = CONFIGS["aim-register"]
    kernel = GemvKernel(128, 256, cfg, **buffer_args(mode, cfg))
    data = kernel.data(np.random.default_rng(3))
    results = []
    for checked in (False, True):
        ch = Channel(cfg, checked=checked)
        for row, values in data.rows.items():
            ch.load_row(row, values)
        res = Scheduler(cfg, mode, ch).run(kernel.program(), dict(data.gpr))
        gpr = {k: v.tolist() for k, v in res.gpr.items()}
        results.append((res.trace, res.accepted, res.stats.as_dict(), gpr))
    assert results[0] == results[1]
    assert results[0][2]["commands"]["REF"] > 0  # the run crossed refreshes
