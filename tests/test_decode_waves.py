"""Waves: several KV heads' QK^T/SV loops in one program (pymodel.golden.decode_waves) -- the
channels overlap, the outputs stay bit-identical to one program per loop."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.config import preset
from pymodel.golden.decode import AttnShape, DecodeModule, gpr_map, with_channels
from pymodel.golden.decode_waves import GprMap, Member, Slot, plan

SHAPE = AttnShape(q_heads=4, kv_heads=2)


def _small(channels: int = 3, gpr_bytes: int = 6144):
    cfg = preset("aim-gddr6").with_overrides(
        {"dpa": {"chunk_rows": 4}, "module": {"gpr_bytes": gpr_bytes}}
    )
    return with_channels(cfg, channels)


def _gmap(cfg) -> GprMap:
    _, out = gpr_map(cfg)
    return GprMap(head_cols=8, dim_slots=8, slots=8, out=out)


def test_plan_separates_colliding_cells_and_keeps_regions_apart() -> None:
    gmap = _gmap(_small())
    a = Member("a", frozenset({(0, 0), (0, 1), (1, 2)}), 3)
    b = Member("b", frozenset({(1, 0), (1, 1), (2, 2)}), 3)  # shares channel 1, not a cell
    c = Member("c", frozenset({(1, 2)}), 3)  # a's block 2 on channel 1: must wait
    waves = plan([a, b, c], gmap)
    assert [[s.member.key for s in w] for w in waves] == [["a", "b"], ["c"]]
    first = waves[0]
    assert first[0].query_gpr == 0 and first[0].out_gpr == gmap.out  # member 0: single map
    regions = [(s.query_gpr, 8) for s in first] + [(s.out_gpr, 8) for s in first]
    regions.append((8, 3 * 8))  # the scores of 3 window blocks
    spans = sorted((lo, lo + n) for lo, n in regions)
    assert all(e <= s for (_, e), (s, _) in zip(spans, spans[1:], strict=False)), spans
    assert all(hi <= gmap.out + 8 for _, hi in spans)
    assert [len(w) for w in plan([a, b, c], gmap, max_width=1)] == [1, 1, 1]


def test_plan_stops_a_wave_when_the_scores_reach_the_extra_regions() -> None:
    gmap = _gmap(_small())
    full = (gmap.out - 8) // 8  # window blocks whose scores fill the GPR up to the sums
    a = Member("a", frozenset({(0, 0)}), full)
    b = Member("b", frozenset({(1, 0)}), 1)
    assert len(plan([a, b], gmap)) == 2  # no room for b's query and sums
    assert len(plan([Member("a", a.cells, full - 2), b], gmap)) == 1


def _run(overlap: bool, lengths: list[int], steps: int = 1, cfg=None, seed: int = 5):
    m = DecodeModule(cfg or _small(), SHAPE, seed=seed, overlap=overlap)
    for r, n in enumerate(lengths):
        m.admit(r, n)
    outs, stats = [], []
    for _ in range(steps):
        o, st = m.step()
        outs.append(o)
        stats.append(st)
    return m, outs, stats


@pytest.mark.parametrize("lengths, steps", [([300], 1), ([200, 3000], 1)])
def test_waves_are_bit_exact_and_faster(lengths: list[int], steps: int) -> None:
    _, seq_out, seq = _run(False, lengths, steps)
    m, ov_out, ov = _run(True, lengths, steps)
    for a, b in zip(seq_out, ov_out, strict=True):
        assert a.keys() == b.keys()
        for r in a:
            assert np.array_equal(a[r], b[r]), r
    assert sum(s.instructions for s in ov) == sum(s.instructions for s in seq)
    assert sum(s.cycles for s in ov) < sum(s.cycles for s in seq)
    if len(lengths) > 1:
        assert max(s.segments for s in ov) >= 2  # the long request spans softmax segments


def test_planted_shared_regions_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: every member in one wave at the single-program query and sums (no separate
    regions, no cell check): the outputs differ from one program per loop."""
    _, (seq,), _ = _run(False, [300])

    def one_wave(members, gmap, max_width=0):
        return [[Slot(m, 0, gmap.out) for m in members]]

    monkeypatch.setattr("pymodel.golden.decode.plan", one_wave)
    _, (bad,), _ = _run(True, [300])
    assert any(not np.array_equal(seq[r], bad[r]) for r in seq)


def test_barrier_makes_idle_channels_wait() -> None:
    """A program starts on every channel when the previous one ended on all of them: the
    step takes at least the busiest channel's work, and sequential loops leave idle time."""
    m, _, (st,) = _run(False, [300])
    assert st.cycles >= max(m.ref.busy)
    assert st.cycles > max(m.ref.busy)  # some channel waited for another's loop
