"""pymodel.golden.dpa: allocator / page-table invariants (hypothesis), typed errors, DYN_LOOP
expansion."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel.config import preset
from pymodel.golden.dpa import (
    AlreadyOpen,
    BadProgram,
    Dispatcher,
    DpaConfigError,
    DpaModel,
    DpaStatus,
    HostOp,
    LoopResult,
    OutOfMemory,
    OutOfRange,
    TooLong,
    TooManyRequests,
    UnknownRequest,
    append_template,
    expand,
    kv_write_template,
    qk_template,
    sv_template,
)
from pymodel.golden.kernels import QkKernel
from pymodel.isa import InstOp, Instruction, ModiField, encode_inst

AIM = preset("aim-gddr6")
# Small tables: 3 channels x 8 chunks of 4 rows (256 tokens), 6 requests of up to 8 chunks.
SMALL = AIM.with_overrides(
    {
        "geometry": {"rows_per_bank": 32},
        "module": {"channels": 3},
        "dpa": {"max_requests": 6, "max_chunks_per_request": 8, "chunk_rows": 4},
    }
)
ONE_CH = AIM.with_overrides({"module": {"channels": 1}})


def snapshot(d: DpaModel) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    return {r: (d.length(r), d.chunks(r)) for r in sorted(d.reqs)}


def test_layout_defaults() -> None:
    d = DpaModel(AIM)
    assert d.lay.chunk_bytes == 1 << 20 and d.lay.chunks_per_channel == 512
    assert d.lay.block_tokens == 128 and d.lay.chunk_tokens == 2048
    assert d.lay.token_bytes * d.lay.chunk_tokens == d.lay.chunk_bytes
    assert d.lay.num_chunks == 32 * 512


ops = st.lists(
    st.tuples(
        st.sampled_from(list(HostOp)),
        st.integers(0, 6),  # one past max_requests
        st.integers(0, 700),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.booleans())
def test_random_host_ops_keep_invariants(seq: list[tuple[HostOp, int, int]], static: bool) -> None:
    d = DpaModel(SMALL, static_tokens=512 if static else None)
    for op, req, arg in seq:
        before = snapshot(d)
        free_before = d.free_chunks
        resp = d.host(op, req, arg)
        d.check_invariants()
        if resp.status is not DpaStatus.OK:
            assert snapshot(d) == before, f"{op.name} {req} {arg} failed but changed state"
            assert d.free_chunks == free_before
        elif op is HostOp.TRANSLATE:
            assert (resp.channel, resp.row) == d.translate(req, arg)
        st_ = d.stats()
        assert st_.token_bytes == sum(d.length(r) for r in d.reqs) * d.lay.token_bytes
        assert st_.allocated_bytes + st_.free_chunks * d.lay.chunk_bytes == st_.capacity_bytes
    # translation is one-to-one over every live row of every request
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    for r in d.reqs:
        for vr in range(d.rows_used(r)):
            pa = d.translate(r, vr)
            assert pa not in seen, f"{pa} mapped by {seen[pa]} and {(r, vr)}"
            seen[pa] = (r, vr)
    # closing everything returns every chunk, and all are reusable
    for r in list(d.reqs):
        d.close(r)
    assert d.free_chunks == d.lay.num_chunks
    if not static:
        for r in range(3):
            d.open(r, d.lay.chunk_tokens * 8)  # 8 chunks each = the whole pool
        assert d.free_chunks == 0
    d.check_invariants()


@given(st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_grow_is_lazy(steps: list[int]) -> None:
    d = DpaModel(SMALL)
    d.open(1)
    total = 0
    for n in steps:
        if total + n > d.lay.max_tokens:
            break
        d.grow(1, n)
        total += n
        assert len(d.chunks(1)) == -(-total // d.lay.chunk_tokens)
        chans = [ch for ch, _ in d.chunks(1)]
        assert chans == [(1 + v) % 3 for v in range(len(chans))]  # TCP: spread round-robin


def test_errors_are_typed_and_harmless() -> None:
    d = DpaModel(SMALL)
    d.open(0, 100)
    d.open(2, 5 * 256)
    before = snapshot(d)
    with pytest.raises(TooManyRequests):
        d.open(6)
    with pytest.raises(AlreadyOpen):
        d.open(0, 3)
    with pytest.raises(UnknownRequest):
        d.grow(1, 3)
    with pytest.raises(UnknownRequest):
        d.close(5)
    with pytest.raises(UnknownRequest):
        d.translate(6, 0)
    with pytest.raises(TooLong):
        d.grow(0, d.lay.max_tokens)
    with pytest.raises(TooLong):
        d.open(1, d.lay.max_tokens + 1)
    with pytest.raises(OutOfRange):
        d.translate(0, 2)  # 100 tokens = 1 block = rows 0, 1
    assert snapshot(d) == before
    # fill: pool 24 chunks, 8 per channel
    d.open(3, 8 * 256)
    d.open(4, 8 * 256)
    before = snapshot(d)
    free = d.free_chunks
    with pytest.raises(OutOfMemory):
        d.grow(0, 7 * 256)  # needs chunks on all three channels, some are full
    assert snapshot(d) == before and d.free_chunks == free
    d.check_invariants()
    d.close(3)
    d.grow(0, 7 * 256)  # freed chunks are reusable
    d.check_invariants()
    assert d.host(HostOp.CLOSE, 3).status is DpaStatus.UNKNOWN_REQUEST  # closed


def test_static_mode_reserves_tmax() -> None:
    d = DpaModel(SMALL, static_tokens=3 * 256)
    d.open(0, 10)
    assert len(d.chunks(0)) == 3
    assert d.stats().fragmentation > 0.98
    d.grow(0, 3 * 256 - 10)
    with pytest.raises(TooLong):
        d.grow(0, 1)
    with pytest.raises(DpaConfigError):
        DpaModel(SMALL, static_tokens=10**9)


@pytest.mark.parametrize("tokens", [128, 384, 2048, 2048 * 3 + 1024])
def test_qk_template_matches_kernel(tokens: int) -> None:
    d = DpaModel(ONE_CH)
    d.open(7, tokens)
    got = expand(d, qk_template(ONE_CH, 7))
    # with one channel and a fresh pool, virtual row 2b -> physical row 2b; QkKernel uses row b
    got = [dataclasses.replace(i, row=i.row // 2) if i.op is InstOp.MAC else i for i in got]
    assert got == QkKernel(tokens, ONE_CH, obuf=8, acc_init="clear").program()


def test_templates_follow_the_page_table() -> None:
    cfg = AIM.with_overrides({"module": {"channels": 4}})
    d = DpaModel(cfg)
    d.open(0, 40 * 128)  # 40 blocks = 3 chunks
    d.open(1, 2048)  # pushes request 2's chunks to other indices
    d.open(2, 5000)
    blocks = d.iterations(2)
    prog = expand(d, sv_template(cfg, 2))
    macs = [i for i in prog if i.op is InstOp.MAC]
    assert len(macs) == blocks * 8
    for k in range(blocks):
        ch, row = d.translate(2, 2 * k + 1)
        assert {(m.ch_mask, m.row) for m in macs[8 * k : 8 * k + 8]} == {(1 << ch, row)}
    wr = [i for i in prog if i.op is InstOp.WR_INP]
    assert [i.gpr for i in wr] == [8 * k for k in range(blocks)]
    assert [i.ch_mask for i in wr] == [1 << d.translate(2, 2 * k)[0] for k in range(blocks)]
    kv = expand(d, kv_write_template(cfg, 2, v_rows=False, banks=range(8)))
    assert len(kv) == blocks * 8 and kv[8].row == d.translate(2, 2)[1]


def test_dispatcher_errors() -> None:
    d = DpaModel(SMALL)
    d.open(1, 300)  # 3 blocks
    disp = Dispatcher(d)
    enc = lambda i: encode_inst(i, SMALL)  # noqa: E731
    mac = Instruction(InstOp.MAC, ch_mask=1, op_size=1, row=5)
    assert disp.push(enc(mac)).out == (enc(mac),)  # plain: pass-through
    stray = Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=1)
    assert disp.push(enc(stray)).error is DpaStatus.BAD_PROGRAM
    # unknown request: body consumed, nothing emitted
    assert disp.push(enc(Instruction(InstOp.DYN_LOOP, req=2, body_len=1))).out == ()
    assert disp.push(enc(mac)).error is DpaStatus.UNKNOWN_REQUEST
    # nested loop
    disp.push(enc(Instruction(InstOp.DYN_LOOP, req=1, body_len=2)))
    disp.push(enc(mac))
    assert disp.push(enc(Instruction(InstOp.DYN_LOOP, req=1, body_len=1))).error is (
        DpaStatus.BAD_PROGRAM
    )
    # beyond the length: rows 0..5 exist; stride 2 from row 1 reaches row 5 at k = 2 -> fine;
    # from row 2 it reaches 6 at k = 2 -> two iterations emitted, then OUT_OF_RANGE
    for base, n_out, err in ((1, 3, None), (2, 2, DpaStatus.OUT_OF_RANGE)):
        disp.push(enc(Instruction(InstOp.DYN_LOOP, req=1, body_len=2)))
        disp.push(enc(Instruction(InstOp.DYN_MODI, field=ModiField.ROW, stride=2)))
        res = disp.push(enc(dataclasses.replace(mac, row=base)))
        assert (len(res.out), res.error) == (n_out, err)
    with pytest.raises(BadProgram):
        expand(d, [Instruction(InstOp.DYN_LOOP, req=1, body_len=3)])
    d.open(0)  # zero length: zero iterations, no error
    assert expand(d, qk_template(SMALL, 0))[1:] == []


@pytest.mark.parametrize("length", [1, 17, 128, 129, 2048, 2049, 5000])
def test_append_writes_the_newest_token(length: int) -> None:
    """APPEND grows the request by one token and writes it: K at its bank and slot columns,
    V as every bank's column holding the token (rows/channels from the page table)."""
    cfg = AIM.with_overrides({"module": {"channels": 4}})
    d = DpaModel(cfg)
    d.open(0, 3000)  # occupy chunks so request 3's indices differ from its virtual ones
    d.open(3, length - 1)
    got = expand(d, append_template(3, 40))
    assert d.length(3) == length
    d.check_invariants()
    t = length - 1
    b, i = divmod(t, 128)
    kch, krow = d.translate(3, 2 * b)
    vch, vrow = d.translate(3, 2 * b + 1)
    assert vch == kch
    want = [
        Instruction(
            InstOp.WR_BANK,
            ch_mask=1 << kch,
            op_size=8,
            gpr=40,
            bank=t % 16,
            row=krow,
            col=(i // 16) * 8,
        )
    ]
    want += [
        Instruction(
            InstOp.WR_BANK,
            ch_mask=1 << vch,
            op_size=1,
            gpr=48 + k * 8 + j,
            bank=k,
            row=vrow,
            col=j * 8 + i // 16,
        )
        for k in range(16)
        for j in range(8)
    ]
    assert got == want


def test_append_errors_change_nothing() -> None:
    d = DpaModel(SMALL)
    disp = Dispatcher(d)
    enc = lambda i: encode_inst(i, SMALL)  # noqa: E731
    app = encode_inst(append_template(1, 0)[0], SMALL)
    assert disp.push(app) == LoopResult((), DpaStatus.UNKNOWN_REQUEST)
    d.open(1, d.lay.max_tokens)
    assert disp.push(app) == LoopResult((), DpaStatus.TOO_LONG)
    d.close(1)
    d.open(5, d.lay.chunk_tokens)  # its next token needs a chunk on channel (5 + 1) % 3
    for _ in range(d.lay.num_chunks):  # fill the module with the other requests
        for r in range(5):
            try:
                d.open(r) if not d.is_open(r) else d.grow(r, d.lay.chunk_tokens)
            except (OutOfMemory, TooLong):
                pass
    assert d.free_on(0) == 0
    before = snapshot(d)
    assert disp.push(encode_inst(append_template(5, 0)[0], SMALL)).error is DpaStatus.NO_MEMORY
    assert snapshot(d) == before
    d.check_invariants()
    with pytest.raises(OutOfMemory):
        expand(d, append_template(5, 0))
    # APPEND inside a loop body is not a plain word
    disp.push(enc(Instruction(InstOp.DYN_LOOP, req=5, body_len=1)))
    assert disp.push(app).error is DpaStatus.BAD_PROGRAM


@pytest.mark.parametrize("first,count", [(0, 0), (0, 2), (1, 1), (2, 0), (3, 9), (7, 1)])
def test_loop_window_is_a_slice_of_the_whole_loop(first: int, count: int) -> None:
    """A windowed DYN_LOOP emits exactly the iterations first .. first+count-1 of the whole
    loop (clipped to the request's blocks), with the window's relative GPR offsets."""
    d = DpaModel(SMALL)
    d.open(2, 5 * 128 + 3)  # 6 blocks over several chunks and channels
    whole = expand(d, qk_template(SMALL, 2))
    per = (len(whole) - 1) // 6  # words per iteration (after the WR_INP)
    got = expand(d, qk_template(SMALL, 2, first=first, count=count))
    end = 6 if count == 0 else min(6, first + count)
    want = whole[1 + first * per : 1 + max(first, end) * per]
    slots = 8
    shift = lambda i: dataclasses.replace(i, gpr=i.gpr - first * slots)  # noqa: E731
    assert got[1:] == [shift(i) if i.op is InstOp.RD_OUT else i for i in want]
