"""Functional bf16 semantics of the channel, against naive references written independently."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel.config import preset
from pymodel.golden.bf16 import from_bf16, random_bf16, to_bf16
from pymodel.golden.channel import Channel
from pymodel.golden.inorder import CommandStats, InOrderIssuer, run_sequential
from pymodel.golden.kernels import GemvKernel, KernelError
from pymodel.isa import Command, Op

CFG = preset("aim-gddr6")


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _bf16_scalar(bits: int) -> float:
    return float(struct.unpack("<f", struct.pack("<I", int(bits) << 16))[0])


def _round_bf16_scalar(x: float) -> int:
    """Round-to-nearest-even of a float32 value to bf16, with integer arithmetic."""
    u = struct.unpack("<I", struct.pack("<f", _f32(x)))[0]
    upper, lower = u >> 16, u & 0xFFFF
    if lower > 0x8000 or (lower == 0x8000 and upper & 1):
        upper += 1
    return upper & 0xFFFF


def _tree_scalar(values: list[float]) -> float:
    while len(values) > 1:
        values = [_f32(values[i] + values[i + 1]) for i in range(0, len(values), 2)]
    return values[0]


def _mac_scalar(w_cols: list[list[int]], x_cols: list[list[int]]) -> int:
    """Pure-Python model of one bank: sum over MACs of (adder tree of products), then bf16."""
    acc = 0.0
    for w, x in zip(w_cols, x_cols, strict=True):
        prods = [_f32(_bf16_scalar(a) * _bf16_scalar(b)) for a, b in zip(w, x, strict=True)]
        acc = _f32(acc + _tree_scalar(prods))
    return _round_bf16_scalar(acc)


finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(st.lists(finite_f32, min_size=1, max_size=64))
def test_to_bf16_matches_scalar_rounding(values: list[float]) -> None:
    got = to_bf16(np.array(values, dtype=np.float32))
    assert [int(v) for v in got] == [_round_bf16_scalar(v) for v in values]


def test_bf16_special_values() -> None:
    x = np.array([np.inf, -np.inf, np.nan, -0.0, 1.0, 1.0 + 2.0**-8], dtype=np.float32)
    bits = to_bf16(x)
    assert bits[0] == 0x7F80 and bits[1] == 0xFF80
    assert bits[2] & 0x7FC0 == 0x7FC0  # quiet NaN
    assert bits[3] == 0x8000 and bits[4] == 0x3F80
    assert bits[5] == 0x3F80  # halfway: ties to even
    assert np.array_equal(
        from_bf16(to_bf16(from_bf16(bits[[0, 1, 3, 4]]))), from_bf16(bits[[0, 1, 3, 4]])
    )


def _issue_all(ch: Channel, cmds: list[Command]) -> list[np.ndarray]:
    return InOrderIssuer(ch).run(cmds)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_mac_stream_equals_scalar_reference(seed: int, n_macs: int) -> None:
    rng = np.random.default_rng(seed)
    g = CFG.geometry
    row = rng.integers(0, g.rows_per_bank)
    data = random_bf16(rng, (g.banks, g.columns_per_row, g.lanes), scale=4.0)
    gb = random_bf16(rng, (n_macs, g.lanes), scale=4.0)
    cols = [int(c) for c in rng.integers(0, g.columns_per_row, n_macs)]
    ch = Channel(CFG)
    ch.load_row(int(row), data)
    cmds = [Command(Op.WRGB, gb=i, data=tuple(int(v) for v in gb[i])) for i in range(n_macs)]
    cmds += [Command(Op.CLRMAC, out=5), Command(Op.ACT16, row=int(row))]
    cmds += [Command(Op.MAC16, col=c, gb=i, out=5) for i, c in enumerate(cols)]
    cmds += [Command(Op.RDMAC, out=5), Command(Op.PREA)]
    (result,) = _issue_all(ch, cmds)
    for bank in range(g.banks):
        expect = _mac_scalar(
            [list(data[bank, c]) for c in cols], [list(gb[i]) for i in range(n_macs)]
        )
        assert int(result[bank]) == expect, f"bank {bank}"


def test_rdmac_does_not_clear_and_clrmac_does() -> None:
    ch = Channel(CFG)
    ch.load_row(0, np.full((16, 64, 16), 0x3F80, dtype=np.uint16))  # all 1.0
    cmds = [
        Command(Op.WRGB, gb=0, data=(0x4000,) * 16),
        Command(Op.ACT16, row=0),
        Command(Op.MAC16, col=0, gb=0, out=1),
        Command(Op.RDMAC, out=1),
        Command(Op.RDMAC, out=1),
        Command(Op.CLRMAC, out=1),
        Command(Op.RDMAC, out=1),
        Command(Op.RDMAC, out=0),
    ]
    first, second, cleared, other = _issue_all(ch, cmds)
    assert (from_bf16(first) == 32.0).all() and (second == first).all()
    assert (cleared == 0).all() and (other == 0).all()


def test_wr_rd_round_trip_and_unwritten_rows_read_zero() -> None:
    ch = Channel(CFG)
    payload = tuple(range(0x100, 0x110))
    cmds = [
        Command(Op.ACT, bank=7, row=9),
        Command(Op.WR, bank=7, row=9, col=33, data=payload),
        Command(Op.RD, bank=7, row=9, col=33),
        Command(Op.RD, bank=7, row=9, col=32),
        Command(Op.PRE, bank=7),
    ]
    back, zero = _issue_all(ch, cmds)
    assert tuple(int(v) for v in back) == payload and not zero.any()
    assert ch.row_data(9)[7, 33].tolist() == list(payload)


@pytest.mark.parametrize("preset_name", ["aim-gddr6", "hbm3-pim"])
@pytest.mark.parametrize("d_out, tiles", [(16, 1), (48, 2), (160, 1)])
def test_gemv_in_order_equals_scalar_reference(preset_name: str, d_out: int, tiles: int) -> None:
    """The GEMV kernel's commands issued in order on the channel, against the kernel's numpy
    reference and a pure-Python scalar model of the bank arithmetic."""
    cfg = preset(preset_name)
    k = GemvKernel(d_out, tiles * cfg.buffers.gb_entries * cfg.geometry.lanes, cfg)
    data = k.data(np.random.default_rng(d_out * 7 + tiles))
    ch = Channel(cfg)
    stats = CommandStats()
    ch.observe(stats)
    gpr = run_sequential(cfg, k.program(), data.rows, data.gpr, ch)
    y = np.concatenate([gpr[k.out_gpr + i] for i in range(k.groups)])
    assert np.concatenate([data.expected[k.out_gpr + i] for i in range(k.groups)]).tolist() == (
        y.tolist()
    )
    assert stats.counts[Op.MAC16] == k.groups * k.tiles * k.seg_cols
    w, x, lanes = data.operands["w"], data.operands["x"], cfg.geometry.lanes
    for o in (0, d_out - 1):
        w_cols = [list(w[o, i : i + lanes]) for i in range(0, k.d_in, lanes)]
        x_cols = [list(x[i : i + lanes]) for i in range(0, k.d_in, lanes)]
        assert int(y[o]) == _mac_scalar(w_cols, x_cols)


def test_gemv_shape_errors_name_the_limit() -> None:
    with pytest.raises(KernelError, match="multiple of 16"):
        GemvKernel(17, 1024, CFG)
    with pytest.raises(KernelError, match="weights need 16385 rows from row 0"):
        GemvKernel(16 * 16385, 1024, CFG)
