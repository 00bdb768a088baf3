"""GEMV on one channel at command level: weight layout, command stream and bit-exact reference.

Layout: output ``o`` lives in bank ``o % banks``; a group of ``banks`` consecutive outputs shares
an all-bank row per input tile of ``gb_entries * lanes`` inputs; column ``c`` of that row holds the
16 inputs ``tile*T + c*lanes ...``. The stream keeps ``obuf_entries`` output groups in the per-bank
accumulators, so each GB load of an input tile is reused by that many groups.

This is the command-level stream used by the foundation demo and the analytic timing tests; the
HUB-instruction kernels and reference schedulers (``pymodel.kernels``/``pymodel.sched``) sit above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from pymodel.bf16 import U16, from_bf16, to_bf16
from pymodel.channel import Channel, adder_tree
from pymodel.config import PimConfig
from pymodel.isa import Command, Op


@dataclass(frozen=True)
class GemvShape:
    d_out: int
    d_in: int
    cfg: PimConfig

    def __post_init__(self) -> None:
        g, b = self.cfg.geometry, self.cfg.buffers
        if self.d_out <= 0 or self.d_out % g.banks:
            raise ValueError(f"d_out = {self.d_out} must be a positive multiple of {g.banks}")
        if self.d_in <= 0 or self.d_in % self.tile:
            raise ValueError(f"d_in = {self.d_in} must be a positive multiple of {self.tile}")
        if b.gb_entries > g.columns_per_row:
            raise ValueError("gemv layout needs gb_entries <= columns_per_row")
        if self.rows > g.rows_per_bank:
            raise ValueError(f"weights need {self.rows} rows, the bank has {g.rows_per_bank}")

    @property
    def tile(self) -> int:
        """Inputs per GB load."""
        return self.cfg.buffers.gb_entries * self.cfg.geometry.lanes

    @property
    def groups(self) -> int:
        return self.d_out // self.cfg.geometry.banks

    @property
    def tiles(self) -> int:
        return self.d_in // self.tile

    @property
    def rows(self) -> int:
        return self.groups * self.tiles

    @property
    def macs(self) -> int:
        return self.rows * self.cfg.buffers.gb_entries

    def row_of(self, group: int, tile: int) -> int:
        return group * self.tiles + tile


def load_weights(ch: Channel, shape: GemvShape, w: U16) -> None:
    """Backdoor-load ``w`` (d_out x d_in bf16) into the channel's rows."""
    g = shape.cfg.geometry
    cols = shape.cfg.buffers.gb_entries
    # (group, bank, tile, col, lane) -> row-major per (group, tile)
    blocks = w.reshape(shape.groups, g.banks, shape.tiles, cols, g.lanes)
    for grp in range(shape.groups):
        for tile in range(shape.tiles):
            data = np.zeros((g.banks, g.columns_per_row, g.lanes), dtype=np.uint16)
            data[:, :cols, :] = blocks[grp, :, tile]
            ch.load_row(shape.row_of(grp, tile), data)


def gemv_commands(shape: GemvShape, x: U16) -> Iterator[Command]:
    """The command stream of y = W x, accumulators blocked over ``obuf_entries`` groups."""
    cfg = shape.cfg
    lanes, entries = cfg.geometry.lanes, cfg.buffers.gb_entries
    block = cfg.buffers.obuf_entries
    for first in range(0, shape.groups, block):
        groups = range(first, min(first + block, shape.groups))
        for out in range(len(groups)):
            yield Command(Op.CLRMAC, out=out)
        for tile in range(shape.tiles):
            base = tile * shape.tile
            for e in range(entries):
                lanes_x = x[base + e * lanes : base + (e + 1) * lanes]
                yield Command(Op.WRGB, gb=e, data=tuple(int(v) for v in lanes_x))
            for out, grp in enumerate(groups):
                yield Command(Op.ACT16, row=shape.row_of(grp, tile))
                for col in range(entries):
                    yield Command(Op.MAC16, col=col, gb=col, out=out)
                yield Command(Op.PREA)
        for out in range(len(groups)):
            yield Command(Op.RDMAC, out=out)


def assemble_output(shape: GemvShape, reads: list[U16]) -> U16:
    """Reorder RDMAC results (one per group, banks lanes each) into y[d_out]."""
    return np.concatenate(reads).astype(np.uint16)


def gemv_reference(w: U16, x: U16, lanes: int) -> U16:
    """Naive bf16 GEMV with the channel's arithmetic: per 16-wide chunk an adder tree, float32
    accumulation in input order, bf16 (round to nearest even) at the end."""
    wf, xf = from_bf16(w), from_bf16(x)
    acc = np.zeros(w.shape[0], dtype=np.float32)
    for start in range(0, w.shape[1], lanes):
        acc += adder_tree(wf[:, start : start + lanes] * xf[start : start + lanes])
    return to_bf16(acc)
