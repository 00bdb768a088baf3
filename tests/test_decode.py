"""Pure-pymodel attention decode on a module: DPA paging, KV append, QK^T/SV on the channels."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.config import PimConfig, preset
from pymodel.golden.bf16 import from_bf16, random_bf16, to_bf16
from pymodel.golden.decode import (
    AttnShape,
    DecodeEngine,
    DecodeModule,
    EpuSoftmax,
    ReferenceBackend,
    StepStats,
    gpr_map,
    k_row,
    reference_attention,
    run_sync,
    segment_blocks,
    v_row,
    with_channels,
)
from pymodel.golden.dpa import OutOfMemory, TooLong, UnknownRequest, append_template
from pymodel.golden.kernels import QkKernel

SHAPE = AttnShape(q_heads=4, kv_heads=2)


def _check(m: DecodeModule, qs: dict, out: dict) -> float:
    """Every output within the stated bound of float32 numpy; returns the worst error/bound."""
    worst = 0.0
    for req, o in out.items():
        state = m.requests[req]
        for head in range(SHAPE.q_heads):
            h = head // SHAPE.group
            ref = reference_attention(qs[req][head], state.k[h], state.v[h])
            bound = m.error_bound(qs[req][head], state.k[h], state.v[h])
            err = np.abs(from_bf16(o[head]).astype(np.float64) - ref)
            assert (err <= bound).all(), (req, head, float((err / bound).max()))
            worst = max(worst, float((err / bound).max()))
    return worst


def _queries(m: DecodeModule) -> dict:
    return {r: random_bf16(m.rng, (SHAPE.q_heads, SHAPE.d_head)) for r in m.requests}


def test_layouts_match_kernels() -> None:
    """K rows equal QkKernel's token-major layout (the DPA QK^T template relies on it)."""
    cfg = preset("aim-gddr6")
    k = QkKernel(128, cfg)
    data = k.data(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    block = random_bf16(rng, (128, 128))
    assert np.array_equal(k_row(block, 16, 16)[:, 0:8].reshape(16, 128), block[:16])
    # V: dim j*16+k of token t sits in bank k, column j*8 + t//16, lane t%16
    row = v_row(block, 16, 16)
    t, d = 37, 5 * 16 + 3
    assert row[3, 5 * 8 + t // 16, t % 16] == block[t, d]
    assert data.rows  # the kernel's own data path exists for comparison in test_dpa


@pytest.mark.slow
def test_decode_steps_within_bound_and_chunks_grow() -> None:
    cfg = with_channels(preset("aim-gddr6").with_overrides({"dpa": {"chunk_rows": 4}}), 3)
    m = DecodeModule(cfg, SHAPE, seed=1)
    m.admit(0, 250)  # 2 chunks of 256 tokens... one token short of a chunk boundary at 256
    m.admit(1, 700)
    m.admit(2, 30)
    chunks_before = {r: len(m.dpa.chunks(m.requests[r].ids[0])) for r in m.requests}
    worst = 0.0
    for _ in range(7):
        qs = _queries(m)
        out, stats = m.step(qs)
        worst = max(worst, _check(m, qs, out))
        assert stats.cycles > 0 and stats.commands > 0 and not stats.out_of_memory
    assert m.dpa.length(m.requests[0].ids[0]) == 257
    assert len(m.dpa.chunks(m.requests[0].ids[0])) == chunks_before[0] + 1  # crossed 256
    channels = {ch for ch, _ in m.dpa.chunks(m.requests[1].ids[1])}
    assert len(channels) == 3  # TCP: a request's chunks spread over every channel
    m.dpa.check_invariants()
    assert worst < 1


@pytest.mark.slow
def test_close_admit_reuses_chunks_and_oom_loses_nothing() -> None:
    # 2 channels x 8 chunks of 256 tokens (chunk_rows 4, rows_per_bank 32)
    cfg = preset("aim-gddr6").with_overrides(
        {"dpa": {"chunk_rows": 4}, "geometry": {"rows_per_bank": 32}}
    )
    cfg = with_channels(cfg, 2)
    m = DecodeModule(cfg, SHAPE, seed=2)
    m.admit(0, 1024)  # 2 heads x 4 chunks
    m.admit(1, 768)  # 2 heads x 3 chunks -> 14 of 16 chunks used
    assert m.dpa.free_chunks == 2
    with pytest.raises(OutOfMemory):
        m.admit(2, 600)  # needs 2 x 3 chunks
    assert 2 not in m.requests and m.dpa.free_chunks == 2  # the failed admission took nothing
    # Request 0 sits at a chunk boundary on both heads: it needs 2 new chunks on channels where
    # they may not be free; whatever happens, state stays consistent and nothing is lost.
    before = {r: [m.dpa.length(i) for i in s.ids] for r, s in m.requests.items()}
    qs = _queries(m)
    out, stats = m.step(qs)
    for r in m.requests:
        grew = r not in stats.out_of_memory
        assert [m.dpa.length(i) for i in m.requests[r].ids] == [n + grew for n in before[r]]
        assert len(m.requests[r].k[0]) == before[r][0] + grew
    _check(m, qs, out)
    m.dpa.check_invariants()
    # Fill up, then one request must run out of memory and be reported, not corrupted.
    for _ in range(300):
        out, stats = m.step(_queries(m))
        if stats.out_of_memory:
            break
    assert stats.out_of_memory, "expected an out-of-memory step"
    starved = stats.out_of_memory[0]
    assert starved not in out
    m.dpa.check_invariants()
    # Close request 1 and admit a new one in its chunks.
    freed = len(m.requests[1].ids) * len(m.dpa.chunks(m.requests[1].ids[0]))
    free_before = m.dpa.free_chunks
    m.close(1)
    assert m.dpa.free_chunks == free_before + freed
    m.admit(3, 500)
    qs = _queries(m)
    out, stats = m.step(qs)
    _check(m, qs, out)
    m.dpa.check_invariants()


def test_bad_input_is_refused_with_typed_errors_and_changes_nothing() -> None:
    """Too long for the VA2PA table (at admission and at a step), a step on a closed request,
    an APPEND into a full channel and on a closed request: each raises its typed error, the
    host log shows the device's error status, and the open request's next step is unchanged
    (bit-exact against a twin module that never saw the bad input)."""
    cfg = with_channels(
        preset("aim-gddr6").with_overrides(
            {
                "dpa": {"chunk_rows": 4, "max_chunks_per_request": 2},
                "geometry": {"rows_per_bank": 32},
            }
        ),
        2,
    )
    limit = 512  # 2 chunks x 256 tokens
    m, twin = (DecodeModule(cfg, SHAPE, seed=5, segment=2) for _ in range(2))
    for mod in (m, twin):
        mod.admit(0, 300)
    with pytest.raises(TooLong):
        m.admit(1, limit + 1)
    assert m.host_log[-1][3].status.name == "TOO_LONG" and 1 not in m.requests
    m.admit(2, 100)
    closed = m.requests[2].ids[0]
    m.close(2)
    q = random_bf16(m.rng, (SHAPE.q_heads, SHAPE.d_head))
    with pytest.raises(UnknownRequest):
        m.step({0: q, 2: q})
    assert m.host_log[-1][3].status.name == "UNKNOWN_REQUEST"
    with pytest.raises(UnknownRequest):
        run_sync(m.backend.run(append_template(closed, gpr_map(cfg)[0]), StepStats()))
    m.admit(3, limit)
    with pytest.raises(TooLong):
        m.step()
    assert m.host_log[-1][3].status.name == "TOO_LONG"
    m.close(3)
    m.dpa.check_invariants()
    # the same random draws as the twin from here on: the twin never saw the bad input
    m.rng = np.random.default_rng(9)
    twin.rng = np.random.default_rng(9)
    out, _ = m.step()
    ref, _ = twin.step()
    assert out.keys() == ref.keys() == {0}
    assert np.array_equal(out[0], ref[0])


def test_hbm3_preset_decodes() -> None:
    cfg: PimConfig = with_channels(preset("hbm3-pim"), 2)
    m = DecodeModule(cfg, SHAPE, seed=3)
    m.admit(0, 100)
    qs = _queries(m)
    out, _ = m.step(qs)
    _check(m, qs, out)


def test_bound_check_catches_a_wrong_output() -> None:
    m = DecodeModule(with_channels(preset("aim-gddr6"), 2), SHAPE, seed=4)
    m.admit(0, 200)
    qs = _queries(m)
    out, _ = m.step(qs)
    _check(m, qs, out)
    out[0] = out[0].copy()
    out[0][1, 7] = to_bf16(from_bf16(out[0][1, 7]) + np.float32(0.05))  # one output off by 0.05
    with pytest.raises(AssertionError):
        _check(m, qs, out)


@pytest.mark.slow
@pytest.mark.parametrize("segment", [1, 2, 5])
def test_segmented_softmax_within_bound(segment: int) -> None:
    """Requests of several segments (a small segment size): outputs within the segmented bound;
    the segment count is what the step reports."""
    cfg = with_channels(preset("aim-gddr6").with_overrides({"dpa": {"chunk_rows": 4}}), 3)
    m = DecodeModule(cfg, SHAPE, seed=5)
    m.segment = segment
    m.admit(0, 700)  # 6 blocks
    m.admit(1, 129)
    qs = _queries(m)
    out, stats = m.step(qs)
    assert stats.segments == -(-6 // segment)
    assert _check(m, qs, out) < 1


def test_segment_size_follows_the_gpr() -> None:
    cfg = preset("aim-gddr6")
    assert segment_blocks(cfg) == (16384 - 8 - 8) // 8
    small = cfg.with_overrides({"module": {"gpr_bytes": 6144}})
    assert segment_blocks(small) == (192 - 16) // 8
    with pytest.raises(ValueError, match="segment"):
        DecodeEngine(small, SHAPE, ReferenceBackend(small), segment=23)


def test_online_softmax_matches_one_pass() -> None:
    """EpuSoftmax over 8 segments vs one segment: equal up to rounding; an EPU that forgets to
    rescale its accumulator (a planted bug) is far off."""
    rng = np.random.default_rng(7)
    scores = to_bf16(rng.standard_normal(512).astype(np.float32) * 20)
    vals = rng.standard_normal((512, 128)).astype(np.float32)

    class NoRescale(EpuSoftmax):
        def weights(self, scores, padded):  # type: ignore[no-untyped-def]
            acc = self.acc.copy()
            w = super().weights(scores, padded)
            self.acc = acc
            return w

    def run(seg: int, epu: EpuSoftmax) -> np.ndarray:
        for lo in range(0, 512, seg):
            w = from_bf16(epu.weights(scores[lo : lo + seg], seg))
            epu.add([to_bf16(w @ vals[lo : lo + seg])])
        return from_bf16(epu.output())

    one = run(512, EpuSoftmax(128))
    assert np.allclose(run(64, EpuSoftmax(128)), one, rtol=0.02, atol=0.01)
    assert not np.allclose(run(64, NoRescale(128)), one, rtol=0.02, atol=0.01)


@pytest.mark.slow
def test_gqa_reuse_is_bit_exact_and_saves_row_opens() -> None:
    """Grouped QK^T (K row opened once for the group's queries; needs a body of 38 words) gives
    the same outputs bit for bit and fewer instructions and commands than one loop per query."""
    cfg = with_channels(
        preset("aim-gddr6").with_overrides({"dpa": {"chunk_rows": 4, "max_body_len": 40}}), 3
    )
    shape = AttnShape(q_heads=4, kv_heads=1)
    runs = []
    for reuse in (False, True):
        m = DecodeModule(cfg, shape, seed=9, gqa_reuse=reuse)
        assert m.reuse == (4 if reuse else 1)
        m.admit(0, 600)
        m.segment = 2  # several segments, the same on both paths
        qs = {0: random_bf16(np.random.default_rng(1), (4, 128))}
        out, stats = m.step(qs)
        runs.append((out[0], stats))
    (a, sa), (b, sb) = runs
    assert np.array_equal(a, b)
    assert sb.instructions < sa.instructions and sb.commands < sa.commands
    assert sb.segments == 3


def test_gqa_reuse_needs_room_in_the_loop_body() -> None:
    from pymodel.golden.dpa import group_queries

    cfg = preset("aim-gddr6")
    assert group_queries(cfg, 4) == 1  # 16-word body: one query per loop
    assert group_queries(cfg.with_overrides({"dpa": {"max_body_len": 40}}), 4) == 4
    assert group_queries(cfg.with_overrides({"dpa": {"max_body_len": 40}}), 8) == 4  # GB: 32


@pytest.mark.slow
def test_appended_tokens_land_in_the_kv_rows() -> None:
    """After APPEND steps every K and V row of every head holds the host's copy (so a wrong
    APPEND address, bank, column or staging entry is caught directly)."""
    from pymodel.golden.dpa import ROWS_PER_BLOCK

    cfg = with_channels(preset("aim-gddr6").with_overrides({"dpa": {"chunk_rows": 4}}), 3)
    m = DecodeModule(cfg, SHAPE, seed=11)
    m.admit(0, 250)  # crosses the 256-token chunk boundary during the steps
    m.admit(1, 15)  # a V column filling up
    for _ in range(8):
        m.step()
    for state in m.requests.values():
        for h, i in enumerate(state.ids):
            n = m.dpa.length(i)
            for b in range(-(-n // 128)):
                blk_k = np.zeros((128, 128), dtype=np.uint16)
                blk_v = np.zeros((128, 128), dtype=np.uint16)
                blk_k[: min(128, n - 128 * b)] = state.k[h][128 * b : 128 * (b + 1)]
                blk_v[: min(128, n - 128 * b)] = state.v[h][128 * b : 128 * (b + 1)]
                ch, row = m.dpa.translate(i, ROWS_PER_BLOCK * b)
                assert np.array_equal(m.channels[ch].row_data(row), k_row(blk_k, 16, 16))
                ch, row = m.dpa.translate(i, ROWS_PER_BLOCK * b + 1)
                assert np.array_equal(m.channels[ch].row_data(row), v_row(blk_v, 16, 16))
