"""Scoreboard for the command decoder (``rtl/isa/cmd_decoder.sv``) against ``pymodel.isa.decode``.

Plain Python, no simulator: the bench's input monitor calls :meth:`CmdDecodeScoreboard.expect`
with every word the DUT accepted, the output monitor calls :meth:`CmdDecodeScoreboard.observe`
with every decoded result the DUT delivered, in order. A mismatch raises
:class:`CmdDecodeMismatch` naming the cycle, the word and the field. :meth:`drain` checks that
every expected result was observed and that at least one was (a scoreboard that saw nothing fails).

Reference: a word is legal iff ``pymodel.isa.decode`` accepts it; then every field must equal the
decoded ``Command``. For an illegal word the DUT must set ``illegal`` and report the first failing
check (:func:`expected_error`, which follows ``pymodel.isa.check_command``'s order and is
cross-checked against ``decode`` on every word).

Planted bugs (to prove the checker can fail): ``corrupt="<field>"`` flips bit 0 of that field
(``op``, ``bank``, ``row``, ``col``, ``gb``, ``out``, ``illegal``, ``err``, ``err_field``) in
every *expected* result; pymodel itself is never modified.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, fields, replace

from pymodel.config import PimConfig
from pymodel.isa import (
    CMD_FIELDS,
    DATA_OPS,
    OP_FIELDS,
    CmdErr,
    CmdLayout,
    Command,
    IsaError,
    Op,
    decode,
    encode,
)

RESULT_FIELDS = ("op", *CMD_FIELDS, "illegal", "err", "err_field")
_OPCODES = frozenset(int(op) for op in Op)


class CmdDecodeMismatch(AssertionError):
    """The DUT's decoded command differs from the reference."""


@dataclass(frozen=True)
class DecodeResult:
    """One decoder output: the command fields plus the error report (``cmd_o`` etc.).

    ``err`` is a :class:`pymodel.isa.CmdErr` value; ``err_field`` the index of the failing
    field in ``CMD_FIELDS`` (0 when not applicable).
    """

    op: int
    bank: int
    row: int
    col: int
    gb: int
    out: int
    illegal: bool
    err: int
    err_field: int

    @staticmethod
    def from_bits(cmd: int, illegal: int, err: int, err_field: int, cfg: PimConfig) -> DecodeResult:
        """Split the DUT's ``cmd_o`` vector (``pim_pkg::cmd_t`` = command-word layout)."""
        lay = CmdLayout.of(cfg)

        def get(name: str) -> int:
            return (cmd >> lay.offsets[name]) & ((1 << lay.widths[name]) - 1)

        return DecodeResult(
            op=get("opcode"),
            bank=get("bank"),
            row=get("row"),
            col=get("col"),
            gb=get("gb"),
            out=get("out"),
            illegal=bool(illegal),
            err=err,
            err_field=err_field,
        )

    def __str__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)]
        return "(" + " ".join(parts) + ")"


def expected_error(word: int, cfg: PimConfig) -> tuple[CmdErr, int]:
    """(error class, field index) the decoder must report for ``word``; (NONE, 0) when legal."""
    lay = CmdLayout.of(cfg)
    opcode = (word >> lay.offsets["opcode"]) & ((1 << lay.widths["opcode"]) - 1)
    if opcode not in _OPCODES:
        return CmdErr.OPCODE, 0
    used = OP_FIELDS[Op(opcode)]
    for i, name in enumerate(CMD_FIELDS):
        value = (word >> lay.offsets[name]) & ((1 << lay.widths[name]) - 1)
        if name in used and value >= lay.limits[name]:
            return CmdErr.RANGE, i
        if name not in used and value:
            return CmdErr.UNUSED, i
    return CmdErr.NONE, 0


def reference(word: int, cfg: PimConfig) -> DecodeResult:
    """What the decoder must output for ``word``, from ``pymodel.isa.decode``."""
    lay = CmdLayout.of(cfg)
    if not 0 <= word < 1 << lay.width:
        raise ValueError(f"word 0x{word:x} is not a {lay.width}-bit command word")
    err, err_field = expected_error(word, cfg)
    try:
        cmd = decode(word, cfg)
    except IsaError as exc:
        if err is CmdErr.NONE:
            raise AssertionError(
                f"scoreboard error model disagrees with pymodel.isa.decode on 0x{word:x}: {exc}"
            ) from None
        return DecodeResult.from_bits(word, 1, int(err), err_field, cfg)
    if err is not CmdErr.NONE:
        raise AssertionError(
            f"scoreboard error model says {err.name} but pymodel.isa.decode accepts 0x{word:x}"
        )
    return DecodeResult(
        int(cmd.op), cmd.bank, cmd.row, cmd.col, cmd.gb, cmd.out, False, int(CmdErr.NONE), 0
    )


def _flip(res: DecodeResult, name: str) -> DecodeResult:
    value = getattr(res, name)
    return replace(res, **{name: (not value) if isinstance(value, bool) else value ^ 1})


class CmdDecodeScoreboard:
    """In-order comparison of decoder outputs with :func:`reference`."""

    def __init__(self, cfg: PimConfig, corrupt: str | None = None) -> None:
        if corrupt is not None and corrupt not in RESULT_FIELDS:
            raise ValueError(f"corrupt={corrupt!r}: expected one of {', '.join(RESULT_FIELDS)}")
        self.cfg = cfg
        self.corrupt = corrupt
        self.pending: deque[tuple[int, DecodeResult]] = deque()
        self.n_expected = 0
        self.n_observed = 0
        self.n_illegal = 0

    def expect(self, word: int) -> None:
        """The DUT accepted ``word`` (from the input monitor)."""
        ref = reference(word, self.cfg)
        if self.corrupt is not None:
            ref = _flip(ref, self.corrupt)
        self.pending.append((word, ref))
        self.n_expected += 1

    def observe(self, got: DecodeResult, cycle: int | None = None) -> None:
        """The DUT delivered ``got`` (from the output monitor); raise on any difference."""
        where = f"cycle {cycle}" if cycle is not None else f"output #{self.n_observed}"
        if not self.pending:
            raise CmdDecodeMismatch(f"{where}: DUT produced {got} but no word was accepted")
        word, exp = self.pending.popleft()
        self.n_observed += 1
        if exp.illegal:
            self.n_illegal += 1
            names: tuple[str, ...] = ("illegal", "err", "err_field")  # fields are don't-care
        else:
            names = RESULT_FIELDS
        bad = [n for n in names if getattr(got, n) != getattr(exp, n)]
        if bad:
            diffs = ", ".join(f"{n}: got {getattr(got, n)} expected {getattr(exp, n)}" for n in bad)
            raise CmdDecodeMismatch(
                f"{where}: word 0x{word:x} (#{self.n_observed - 1}) decoded wrongly: {diffs}; "
                f"got {got}, expected {exp}"
            )

    def drain(self) -> None:
        """End-of-test check: nothing outstanding and something was compared."""
        if self.pending:
            word, _ = self.pending[0]
            raise CmdDecodeMismatch(
                f"{len(self.pending)} accepted word(s) never came out (first: 0x{word:x}); "
                f"expected {self.n_expected}, observed {self.n_observed}"
            )
        if self.n_observed == 0:
            raise CmdDecodeMismatch("scoreboard compared nothing (no word accepted / delivered)")
        assert self.n_expected == self.n_observed

    def summary(self) -> str:
        return (
            f"{self.n_observed} compared ({self.n_observed - self.n_illegal} legal, "
            f"{self.n_illegal} illegal), {len(self.pending)} pending"
        )


def random_word(rng: random.Random, cfg: PimConfig) -> int:
    """One stimulus word, shared by the bench and the unit tests. The mix:

    40 % legal (a random ``Command`` through ``pymodel.isa.encode``), 20 % legal but with one field
    broken (an unused field nonzero, or a used field at/above a non-power-of-two limit), 10 %
    unknown opcode, 30 % fully random bits.
    """
    lay = CmdLayout.of(cfg)
    kind = rng.random()
    if kind < 0.30:
        return rng.getrandbits(lay.width)
    op = rng.choice(list(Op))
    values = {n: rng.randrange(lay.limits[n]) for n in OP_FIELDS[op]}
    data = (0,) * cfg.geometry.lanes if op in DATA_OPS else None
    word = encode(Command(op, data=data, **values), cfg)
    if kind < 0.70:
        return word
    if kind < 0.80:
        bad_op = rng.randrange(len(Op), 1 << lay.widths["opcode"])
        return (word & ~((1 << lay.widths["opcode"]) - 1)) | bad_op << lay.offsets["opcode"]
    name = rng.choice(CMD_FIELDS)
    width, limit = lay.widths[name], lay.limits[name]
    if name in OP_FIELDS[op]:
        if limit == 1 << width:  # cannot be out of range: break an unused field instead
            unused = [n for n in CMD_FIELDS if n not in OP_FIELDS[op]]
            if not unused:
                return word
            name = rng.choice(unused)
            width = lay.widths[name]
            value = rng.randrange(1, 1 << width)
        else:
            value = rng.randrange(limit, 1 << width)
    else:
        value = rng.randrange(1, 1 << width)
    mask = ((1 << width) - 1) << lay.offsets[name]
    return (word & ~mask) | value << lay.offsets[name]
