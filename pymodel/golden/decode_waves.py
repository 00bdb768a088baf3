"""Waves: the attention loops of several KV heads in one program, so their channels overlap.

A decode step runs, per softmax segment and query of the KV group, a QK^T loop and an SV loop for
every (request, KV head) -- a DPA id whose blocks lie on the channels the dispatcher spread them
over. One program per loop makes every channel wait for the slowest one of each loop (the host
reads a program's results only when all channels are done). A *wave* puts the loops of several
ids in one QK^T program and one SV program; each channel then runs its parts of all of them back
to back. What must not collide is each channel's GPR:

* scores (then the bf16 weights, in place) of window block ``b`` sit at ``scores + b * slots`` of
  the block's channel for every id, so two members may not both have block ``b`` on one channel
  (their ``(channel, block)`` cells must be disjoint);
* every member needs its own query (the broadcast ``WR_INP`` reads it on every channel) and its
  own SV partial sums (the broadcast ``RD_OUT``): member 0 keeps the single-program places (query
  at 0, sums at the GPR top); member ``w >= 1`` gets the sums ``w * dim_slots`` entries lower and
  a query just below all sums -- room the scores of every member must stay under.

Softmax dependencies stay as they were: a wave holds at most one loop per query head and one
segment per wave round, and the rounds go segment by segment, so the EPU's running max and sum of
a head see its segments in order. Outputs are bit-identical to one program per loop (each
member's commands and GPR values are the same; only the placement of its query and sums moves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_K = TypeVar("_K")


@dataclass(frozen=True)
class Member(Generic[_K]):
    """One loop candidate: the caller's ``key``, the ``(channel, window block)`` score cells it
    writes and the window blocks that hold its tokens."""

    key: _K
    cells: frozenset[tuple[int, int]]
    blocks: int


@dataclass(frozen=True)
class Slot(Generic[_K]):
    """A member placed in a wave: GPR entries of its query and of its SV partial sums."""

    member: Member[_K]
    query_gpr: int
    out_gpr: int


@dataclass(frozen=True)
class GprMap:
    """Entries of one channel's GPR the waves use (``golden.decode.gpr_map``'s single map)."""

    head_cols: int  # query entries (d_head / lanes)
    dim_slots: int  # partial-sum entries (d_head / banks)
    slots: int  # score entries per KV block
    out: int  # member 0's partial sums (the GPR top)

    def low(self, width: int) -> int:
        """First entry of the extra queries and sums of a wave of ``width`` members."""
        return self.out - (width - 1) * (self.dim_slots + self.head_cols)

    def score_end(self, blocks: int) -> int:
        return self.head_cols + blocks * self.slots


def plan(members: Sequence[Member[_K]], gpr: GprMap, max_width: int = 0) -> list[list[Slot[_K]]]:
    """First-fit packing of ``members`` (in order) into waves whose GPR regions do not collide;
    ``max_width`` > 0 caps the members per wave (1 = one program per loop)."""
    waves: list[list[Member[_K]]] = []
    cells: list[set[tuple[int, int]]] = []
    ends: list[int] = []
    for m in members:
        end = gpr.score_end(m.blocks)
        for w, wave in enumerate(waves):
            width = len(wave) + 1
            if max_width and width > max_width:
                continue
            if cells[w] & m.cells or max(ends[w], end) > gpr.low(width):
                continue
            wave.append(m)
            cells[w] |= m.cells
            ends[w] = max(ends[w], end)
            break
        else:
            waves.append([m])
            cells.append(set(m.cells))
            ends.append(end)
    out: list[list[Slot[_K]]] = []
    for wave in waves:
        low = gpr.low(len(wave))
        out.append(
            [
                Slot(m, 0 if w == 0 else low + (w - 1) * gpr.head_cols, gpr.out - w * gpr.dim_slots)
                for w, m in enumerate(wave)
            ]
        )
    return out
