"""Unit tests of scoreboards.cmd_decode (no simulator)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel.config import PimConfig, preset
from pymodel.isa import CMD_FIELDS, CmdErr, CmdLayout, Command, IsaError, Op, decode, encode
from scoreboards.cmd_decode import (
    RESULT_FIELDS,
    CmdDecodeMismatch,
    CmdDecodeScoreboard,
    DecodeResult,
    expected_error,
    random_word,
    reference,
)

AIM = preset("aim-gddr6")
# Non-power-of-two buffer sizes so that the RANGE error class exists.
ODD = AIM.with_overrides({"name": "odd-buffers", "buffers": {"gb_entries": 48, "obuf_entries": 6}})
CONFIGS = [AIM, ODD, preset("hbm3-pim")]


def _ok(word: int, cfg: PimConfig) -> DecodeResult:
    """The correct DUT observation for ``word``, built independently of ``reference``."""
    err, field = expected_error(word, cfg)
    return DecodeResult.from_bits(word, int(err is not CmdErr.NONE), int(err), field, cfg)


def test_legal_command_passes_and_drains() -> None:
    sb = CmdDecodeScoreboard(AIM)
    cmd = Command(Op.MAC16, col=5, gb=7, out=3)
    word = encode(cmd, AIM)
    sb.expect(word)
    sb.observe(_ok(word, AIM), cycle=10)
    sb.drain()
    assert sb.n_observed == 1 and sb.n_illegal == 0
    got = reference(word, AIM)
    assert (got.op, got.col, got.gb, got.out, got.illegal) == (int(Op.MAC16), 5, 7, 3, False)


@pytest.mark.parametrize("name", RESULT_FIELDS)
def test_planted_bug_wrong_observation_raises(name: str) -> None:
    word = encode(Command(Op.WR, bank=3, row=100, col=9, data=(0,) * 16), AIM)
    sb = CmdDecodeScoreboard(AIM)
    sb.expect(word)
    good = _ok(word, AIM)
    value = getattr(good, name)
    bad = replace(good, **{name: (not value) if isinstance(value, bool) else value ^ 1})
    with pytest.raises(CmdDecodeMismatch, match=rf"cycle 42: word 0x{word:x}.*{name}: got"):
        sb.observe(bad, cycle=42)


@pytest.mark.parametrize("name", RESULT_FIELDS)
def test_corrupted_reference_is_caught(name: str) -> None:
    """The bench's planted-bug knob: a correct DUT must then mismatch."""
    word = encode(Command(Op.ACT, bank=1, row=2), AIM)
    sb = CmdDecodeScoreboard(AIM, corrupt=name)
    sb.expect(word)
    with pytest.raises(CmdDecodeMismatch, match=name):
        sb.observe(_ok(word, AIM))


def test_illegal_word_fields_are_dont_care_but_error_is_checked() -> None:
    lay = CmdLayout.of(AIM)
    word = int(Op.PREA) | 5 << lay.offsets["row"]  # PREA uses no field: row must be 0
    err, field = expected_error(word, AIM)
    assert (err, CMD_FIELDS[field]) == (CmdErr.UNUSED, "row")
    sb = CmdDecodeScoreboard(AIM)
    sb.expect(word)
    sb.expect(word)
    sb.observe(replace(_ok(word, AIM), row=0, bank=9))  # fields of an illegal word: don't care
    with pytest.raises(CmdDecodeMismatch, match="err: got 1 expected 2"):
        sb.observe(replace(_ok(word, AIM), err=int(CmdErr.OPCODE)))


def test_unknown_opcode_and_range_classes() -> None:
    assert expected_error(15, AIM) == (CmdErr.OPCODE, 0)
    lay = CmdLayout.of(ODD)
    word = encode(Command(Op.MAC16, col=1, gb=47, out=5), ODD)
    assert expected_error(word, ODD) == (CmdErr.NONE, 0)
    word = (word & ~(0x3F << lay.offsets["gb"])) | 48 << lay.offsets["gb"]
    assert expected_error(word, ODD) == (CmdErr.RANGE, CMD_FIELDS.index("gb"))
    with pytest.raises(IsaError):
        decode(word, ODD)


def test_drain_fails_when_nothing_seen_or_outstanding_or_extra() -> None:
    with pytest.raises(CmdDecodeMismatch, match="compared nothing"):
        CmdDecodeScoreboard(AIM).drain()
    sb = CmdDecodeScoreboard(AIM)
    sb.expect(0)
    with pytest.raises(CmdDecodeMismatch, match="never came out"):
        sb.drain()
    with pytest.raises(CmdDecodeMismatch, match="no word was accepted"):
        CmdDecodeScoreboard(AIM).observe(_ok(0, AIM))


def test_bad_corrupt_name_and_wide_word_rejected() -> None:
    with pytest.raises(ValueError):
        CmdDecodeScoreboard(AIM, corrupt="data")
    with pytest.raises(ValueError):
        reference(1 << CmdLayout.of(AIM).width, AIM)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_random_mix_matches_decode(cfg: PimConfig) -> None:
    """The bench's stimulus: every class occurs and the error model agrees with decode."""
    rng = random.Random(2024)
    sb = CmdDecodeScoreboard(cfg)
    seen: set[CmdErr] = set()
    for i in range(3000):
        word = random_word(rng, cfg)
        sb.expect(word)  # reference() cross-checks expected_error against decode
        seen.add(expected_error(word, cfg)[0])
        sb.observe(_ok(word, cfg), cycle=i)
    sb.drain()
    want = {CmdErr.NONE, CmdErr.OPCODE, CmdErr.UNUSED}
    if cfg is ODD:
        want.add(CmdErr.RANGE)
    assert want <= seen


@settings(max_examples=400, deadline=None)
@given(data=st.data(), idx=st.sampled_from(range(len(CONFIGS))))
def test_any_word_error_model_agrees_with_decode(data: st.DataObject, idx: int) -> None:
    cfg = CONFIGS[idx]
    word = data.draw(st.integers(0, (1 << CmdLayout.of(cfg).width) - 1))
    res = reference(word, cfg)  # raises if expected_error and decode disagree
    try:
        cmd = decode(word, cfg)
    except IsaError:
        assert res.illegal
    else:
        assert not res.illegal and encode(cmd, cfg) == word
