"""The data of one PIM channel: the banks' rows, the GB and the float32 accumulators.

:class:`pymodel.golden.channel.Channel` owns one and hands it every issued data command; the
arithmetic is specified in that module's docstring. MAC16s may be *deferred*: queued as they issue
and applied together, as one numpy computation per run of MACs on the same row, when anything
reads or changes the data they depend on (RDMAC, CLRMAC, WRBIAS, WRGB, WR, a backdoor access).
Every product, every adder-tree sum and every accumulation is the same float32 operation in the
same order as applied one by one (the accumulation uses ``np.add.accumulate``, sequential by
definition, never a pairwise ``sum``), so the results are bit-identical; ``deferred=False``
applies each MAC16 as it issues (the reference the deferred path is tested against).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pymodel.config import PimConfig
from pymodel.golden.bf16 import U16, from_bf16, to_bf16
from pymodel.isa import Command, IsaError, Op

F32 = npt.NDArray[np.float32]
MAX_DEFERRED = 16384  # deferred MAC16s applied at the latest after this many (bounds the memory)


def adder_tree(products: F32) -> F32:
    """Pairwise float32 sum over the last axis (length a power of two), lanes 0+1 first."""
    p = products.astype(np.float32, copy=False)
    while p.shape[-1] > 1:
        p = p[..., 0::2] + p[..., 1::2]
    return p[..., 0]


class ChannelData:
    """Rows (allocated on first write), GB entries and accumulators of one channel."""

    def __init__(self, cfg: PimConfig, deferred: bool = True) -> None:
        g, b = cfg.geometry, cfg.buffers
        self._shape = (g.banks, g.columns_per_row, g.lanes)
        self._rows_per_bank = g.rows_per_bank
        self._rows: dict[int, U16] = {}
        self._zero_row: U16 = np.zeros(self._shape, dtype=np.uint16)  # rows never written
        self._zero_row.flags.writeable = False
        self.gb = np.zeros((b.gb_entries, g.lanes), dtype=np.uint16)
        self._acc = np.zeros((g.banks, b.obuf_entries), dtype=np.float32)
        self.deferred = deferred
        self._macs: list[tuple[int, int, int, int]] = []  # deferred MAC16s: (row, col, gb, out)

    # ------------------------------------------------------------------ backdoor

    @property
    def acc(self) -> F32:
        """The accumulators (banks x OBuf entries), every issued MAC16 applied."""
        self.flush()
        return self._acc

    def row_data(self, row: int) -> U16:
        """All banks' data of ``row`` (banks x columns x lanes), allocated on first touch."""
        self.flush()  # the caller may write into the row
        data = self._rows.get(row)
        if data is None:
            if not 0 <= row < self._rows_per_bank:
                raise IsaError(f"row = {row} out of range [0, {self._rows_per_bank - 1}]")
            data = np.zeros(self._shape, dtype=np.uint16)
            self._rows[row] = data
        return data

    def load_row(self, row: int, data: npt.ArrayLike) -> None:
        arr = np.asarray(data, dtype=np.uint16)
        if arr.shape != self._shape:
            raise ValueError(f"row data must have shape {self._shape}, got {arr.shape}")
        self.row_data(row)[...] = arr

    # ------------------------------------------------------------------ commands

    def execute(self, cmd: Command, open_row: int | None) -> U16 | None:
        """Apply data command ``cmd`` (``open_row``: the all-bank row a MAC16 reads); returns
        the 32 B read data of RDMAC/RD, else None."""
        op = cmd.op
        if op is Op.MAC16:
            assert open_row is not None
            if not self.deferred:
                self._mac_now(open_row, cmd.col, cmd.gb, cmd.out)
                return None
            self._macs.append((open_row, cmd.col, cmd.gb, cmd.out))
            if len(self._macs) >= MAX_DEFERRED:
                self.flush()
            return None
        if op is Op.RD:  # MAC16s change no row: nothing to apply first
            read: U16 = self._rows.get(cmd.row, self._zero_row)[cmd.bank, cmd.col].copy()
            return read
        self.flush()
        if op is Op.WRGB:
            assert cmd.data is not None
            self.gb[cmd.gb] = cmd.data
        elif op is Op.RDMAC:
            return to_bf16(self._acc[:, cmd.out])
        elif op is Op.CLRMAC:
            self._acc[:, cmd.out] = 0.0
        elif op is Op.WRBIAS:
            assert cmd.data is not None
            self._acc[:, cmd.out] = from_bf16(np.asarray(cmd.data, dtype=np.uint16))
        elif op is Op.WR:
            assert cmd.data is not None
            self.row_data(cmd.row)[cmd.bank, cmd.col] = cmd.data
        return None

    def _mac_now(self, row: int, col: int, gb: int, out: int) -> None:
        weights = from_bf16(self._rows.get(row, self._zero_row)[:, col, :])  # banks x lanes
        self._acc[:, out] += adder_tree(weights * from_bf16(self.gb[gb]))

    def flush(self) -> None:
        """Apply the deferred MAC16s (see the module docstring)."""
        if not self._macs:
            return
        macs = np.array(self._macs, dtype=np.int64)
        self._macs = []
        rows, cols, gbs, outs = macs.T
        sums = np.empty((self._shape[0], len(macs)), dtype=np.float32)  # banks x MACs
        starts = [0, *(np.flatnonzero(rows[1:] != rows[:-1]) + 1).tolist(), len(macs)]
        for lo, hi in zip(starts[:-1], starts[1:], strict=True):
            data = self._rows.get(int(rows[lo]), self._zero_row)
            weights = from_bf16(data[:, cols[lo:hi], :])  # banks x MACs x lanes
            sums[:, lo:hi] = adder_tree(weights * from_bf16(self.gb[gbs[lo:hi]]))
        for out in np.unique(outs).tolist():
            terms = sums[:, outs == out]
            chain = np.concatenate([self._acc[:, out : out + 1], terms], axis=1)
            self._acc[:, out] = np.add.accumulate(chain, axis=1)[:, -1]
