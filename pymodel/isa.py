"""Channel commands and HUB instructions: bit-exact encodings and a text trace format.

Channel command word (LSB first): ``opcode | bank | row | col | gb | out``; every field sits at a
fixed offset for every opcode (so the RTL decoder is a set of slices), fields an opcode does not use
must be zero. Field widths come from the config (``clog2`` of the range). Write data (WRGB, WR) and
read data (RDMAC, RD) travel on the 32 B data bus, not in the command word.

HUB instruction word (LSB first): ``opcode`` then the opcode's own fields, packed (see
``INST_FIELDS``). ``op_size`` is stored minus one; ``stride`` is two's complement.

Text trace: one command per line, ``<cycle> <MNEMONIC> key=value ...``; ``data=`` holds the 16 bf16
lanes as 64 hex digits, lane 0 first. ``#`` starts a comment. Instruction programs use the same
syntax without the cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from pymodel.config import PimConfig, clog2
from pymodel.errors import PimphonyError


class IsaError(PimphonyError, ValueError):
    """Malformed encoding, trace line or operand: the message names the field/line and range."""


class Op(IntEnum):
    NOP = 0
    ACT = 1  # single-bank activate (KV append path)
    ACT16 = 2  # all-bank activate
    PRE = 3
    PREA = 4
    MAC16 = 5
    WRGB = 6
    RDMAC = 7
    CLRMAC = 8
    WR = 9
    RD = 10
    REF = 11
    WRBIAS = 12  # AiM WRMAC16 (ISR WR_BIAS): 32 B over the data bus into one accumulator per bank
    TMOD = 13  # switch the channel's register-access mode (pymodel.timing mode classes)


OPCODE_BITS = 4
CMD_FIELDS = ("bank", "row", "col", "gb", "out")
OP_FIELDS: dict[Op, tuple[str, ...]] = {
    Op.NOP: (),
    Op.ACT: ("bank", "row"),
    Op.ACT16: ("row",),
    Op.PRE: ("bank",),
    Op.PREA: (),
    Op.MAC16: ("col", "gb", "out"),
    Op.WRGB: ("gb",),
    Op.RDMAC: ("out",),
    Op.CLRMAC: ("out",),
    Op.WR: ("bank", "row", "col"),
    Op.RD: ("bank", "row", "col"),
    Op.REF: (),
    Op.WRBIAS: ("out",),
    Op.TMOD: (),
}
DATA_OPS = frozenset({Op.WRGB, Op.WR, Op.WRBIAS})  # commands that carry write data


@dataclass(frozen=True)
class Command:
    """One channel command. ``data`` (16 bf16 bit patterns) only for WRGB, WR and WRBIAS."""

    op: Op
    bank: int = 0
    row: int = 0
    col: int = 0
    gb: int = 0
    out: int = 0
    data: tuple[int, ...] | None = field(default=None, compare=True)

    def __str__(self) -> str:
        parts = [self.op.name] + [f"{f}={getattr(self, f)}" for f in OP_FIELDS[self.op]]
        if self.data is not None:
            parts.append("data=" + "".join(f"{v:04x}" for v in self.data))
        return " ".join(parts)


def field_limits(cfg: PimConfig) -> dict[str, int]:
    """Number of legal values of each command field."""
    g, b = cfg.geometry, cfg.buffers
    return {
        "bank": g.banks,
        "row": g.rows_per_bank,
        "col": g.columns_per_row,
        "gb": b.gb_entries,
        "out": b.obuf_entries,
    }


@dataclass(frozen=True)
class CmdLayout:
    """Bit positions of the command word for one config."""

    widths: dict[str, int]
    offsets: dict[str, int]
    limits: dict[str, int]
    width: int

    @staticmethod
    def of(cfg: PimConfig) -> CmdLayout:
        limits = field_limits(cfg)
        widths = {"opcode": OPCODE_BITS} | {f: clog2(limits[f]) for f in CMD_FIELDS}
        offsets: dict[str, int] = {}
        pos = 0
        for name in ("opcode",) + CMD_FIELDS:
            offsets[name] = pos
            pos += widths[name]
        return CmdLayout(widths, offsets, limits, pos)


def operand_limits(cfg: PimConfig) -> dict[Op, tuple[int, ...]]:
    """Per opcode, the exclusive upper bound of each of ``CMD_FIELDS``: the field's range for an
    operand the opcode uses, 1 for one it ignores (which must be 0). A command whose fields are all
    in ``[0, bound)`` passes :func:`check_command`'s operand checks (its data aside): the channel's
    one-comparison-per-field fast test."""
    limits = field_limits(cfg)
    return {op: tuple(limits[f] if f in OP_FIELDS[op] else 1 for f in CMD_FIELDS) for op in Op}


def check_command(cmd: Command, cfg: PimConfig) -> None:
    """Raise IsaError if an operand is out of range or a field the opcode ignores is nonzero."""
    limits = field_limits(cfg)
    used = OP_FIELDS[cmd.op]
    for name in CMD_FIELDS:
        value = getattr(cmd, name)
        if name in used:
            if not 0 <= value < limits[name]:
                raise IsaError(
                    f"{cmd.op.name}: {name} = {value} out of range [0, {limits[name] - 1}]"
                )
        elif value != 0:
            raise IsaError(f"{cmd.op.name}: field {name} is unused and must be 0, got {value}")
    lanes = cfg.geometry.lanes
    if cmd.op in DATA_OPS:
        if cmd.data is None or len(cmd.data) != lanes:
            raise IsaError(f"{cmd.op.name}: data must hold {lanes} bf16 lanes")
        if any(not 0 <= v < 1 << 16 for v in cmd.data):
            raise IsaError(f"{cmd.op.name}: data lanes must be 16-bit values")
    elif cmd.data is not None:
        raise IsaError(f"{cmd.op.name}: carries no data")


def encode(cmd: Command, cfg: PimConfig) -> int:
    check_command(cmd, cfg)
    lay = CmdLayout.of(cfg)
    word = int(cmd.op) << lay.offsets["opcode"]
    for name in OP_FIELDS[cmd.op]:
        word |= getattr(cmd, name) << lay.offsets[name]
    return word


def decode(word: int, cfg: PimConfig, data: Sequence[int] | None = None) -> Command:
    """Decode a command word; ``data`` is attached for WRGB/WR. Raises IsaError when illegal."""
    lay = CmdLayout.of(cfg)
    if not 0 <= word < 1 << lay.width:
        raise IsaError(f"command word 0x{word:x} wider than {lay.width} bits")
    opcode = word & ((1 << OPCODE_BITS) - 1)
    try:
        op = Op(opcode)
    except ValueError:
        raise IsaError(f"opcode {opcode} is not a command (0..{len(Op) - 1})") from None
    values = {
        name: (word >> lay.offsets[name]) & ((1 << lay.widths[name]) - 1) for name in CMD_FIELDS
    }
    lanes: tuple[int, ...] | None = None
    if op in DATA_OPS:
        lanes = tuple(data) if data is not None else (0,) * cfg.geometry.lanes
    cmd = Command(op, data=lanes, **values)
    check_command(cmd, cfg)
    return cmd


class CmdErr(IntEnum):
    """Error class the RTL command decoder reports (``pim_pkg::cmd_err_e``).

    Mirrors the checks of :func:`decode` in its order: the opcode first, then each
    field of ``CMD_FIELDS`` in order (the first failing field is reported).
    """

    NONE = 0
    OPCODE = 1  # opcode is not an ``Op``
    UNUSED = 2  # a field the opcode does not use is nonzero
    RANGE = 3  # a used field is >= its limit (only possible when the limit is not a power of 2)


# ---------------------------------------------------------------------------- HUB instructions


class InstOp(IntEnum):
    WR_INP = 0
    MAC = 1
    RD_OUT = 2  # RD_MAC then a data-less clear (PIMphony's I/O-aware buffering; not in AiM)
    DYN_LOOP = 3
    DYN_MODI = 4
    WR_BANK = 5  # KV append: GPR[gpr+i] -> one bank's row, column col+i (single-bank WR)
    WR_BIAS = 6  # AiM WR_BIAS: GPR[gpr+i] -> accumulator out+i of every bank (lane b -> bank b)
    RD_MAC = 7  # AiM RD_MAC: accumulator out+i of every bank -> GPR[gpr+i]; keeps the value
    APPEND = 8  # KV append of one decode step: grow request req by a token, write its K and V


class ModiField(IntEnum):
    """Operand that DYN_MODI advances each DYN_LOOP iteration."""

    ROW = 0
    COL = 1
    GB = 2
    OUT = 3
    GPR = 4


INST_OPCODE_BITS = 4
#: Instructions a channel's command scheduler executes (the others are expanded by the DPA).
SCHEDULED_INSTS = frozenset(
    {InstOp.WR_INP, InstOp.MAC, InstOp.RD_OUT, InstOp.WR_BANK, InstOp.WR_BIAS, InstOp.RD_MAC}
)
STRIDE_BITS = 16
INST_FIELDS: dict[InstOp, tuple[str, ...]] = {
    InstOp.WR_INP: ("ch_mask", "op_size", "gpr", "gb"),
    InstOp.MAC: ("ch_mask", "op_size", "gb", "row", "col", "out"),
    InstOp.RD_OUT: ("ch_mask", "op_size", "gpr", "out"),
    InstOp.DYN_LOOP: ("req", "body_len", "first", "count"),
    InstOp.DYN_MODI: ("field", "stride"),
    InstOp.WR_BANK: ("ch_mask", "op_size", "gpr", "bank", "row", "col"),
    InstOp.WR_BIAS: ("ch_mask", "op_size", "gpr", "out"),
    InstOp.RD_MAC: ("ch_mask", "op_size", "gpr", "out"),
    InstOp.APPEND: ("req", "gpr"),
}
INST_FIELD_NAMES = (
    "ch_mask",
    "op_size",
    "gpr",
    "bank",
    "gb",
    "row",
    "col",
    "out",
    "req",
    "body_len",
    "first",
    "count",
    "field",
    "stride",
)


@dataclass(frozen=True)
class Instruction:
    op: InstOp
    ch_mask: int = 0
    op_size: int = 1
    gpr: int = 0
    bank: int = 0
    gb: int = 0
    row: int = 0
    col: int = 0
    out: int = 0
    req: int = 0
    body_len: int = 0
    first: int = 0  # DYN_LOOP window: first KV block ...
    count: int = 0  # ... and at most this many blocks (0: to the end of the request)
    field: int = 0
    stride: int = 0

    def __str__(self) -> str:
        parts = [self.op.name]
        for name in INST_FIELDS[self.op]:
            v = getattr(self, name)
            if name == "ch_mask":
                parts.append(f"ch_mask=0x{v:x}")
            elif name == "field":
                parts.append(f"field={ModiField(v).name}")
            else:
                parts.append(f"{name}={v}")
        return " ".join(parts)


def inst_ranges(cfg: PimConfig) -> dict[str, tuple[int, int]]:
    """Inclusive legal range of every instruction field."""
    g, b, m, d = cfg.geometry, cfg.buffers, cfg.module, cfg.dpa
    half = 1 << (STRIDE_BITS - 1)
    blocks = d.max_chunks_per_request * max(1, d.chunk_rows // 2)  # KV blocks of a full request
    return {
        "ch_mask": (1, (1 << m.channels) - 1),
        "op_size": (1, m.max_op_size),
        "gpr": (0, m.gpr_bytes // g.column_bytes - 1),
        "bank": (0, g.banks - 1),
        "gb": (0, b.gb_entries - 1),
        "row": (0, g.rows_per_bank - 1),
        "col": (0, g.columns_per_row - 1),
        "out": (0, b.obuf_entries - 1),
        "req": (0, d.max_requests - 1),
        "body_len": (1, d.max_body_len),
        "first": (0, blocks - 1),
        "count": (0, blocks - 1),
        "field": (0, len(ModiField) - 1),
        "stride": (-half, half - 1),
    }


def inst_widths(cfg: PimConfig) -> dict[str, int]:
    r = inst_ranges(cfg)
    w = {name: clog2(hi + 1) for name, (lo, hi) in r.items()}
    w["ch_mask"] = cfg.module.channels
    w["op_size"] = clog2(cfg.module.max_op_size)  # stored minus one
    w["body_len"] = clog2(cfg.dpa.max_body_len)  # stored minus one
    w["stride"] = STRIDE_BITS
    return w


def inst_width(cfg: PimConfig) -> int:
    w = inst_widths(cfg)
    return INST_OPCODE_BITS + max(sum(w[f] for f in fs) for fs in INST_FIELDS.values())


def check_instruction(inst: Instruction, cfg: PimConfig) -> None:
    ranges = inst_ranges(cfg)
    used = INST_FIELDS[inst.op]
    defaults = Instruction(inst.op)
    for name in INST_FIELD_NAMES:
        value = getattr(inst, name)
        if name in used:
            lo, hi = ranges[name]
            if not lo <= value <= hi:
                raise IsaError(f"{inst.op.name}: {name} = {value} out of range [{lo}, {hi}]")
        elif value != getattr(defaults, name):
            raise IsaError(f"{inst.op.name}: field {name} is not an operand of this instruction")
    if inst.op in SCHEDULED_INSTS:
        n = inst.op_size - 1
        ends = {"gb": inst.gb + n, "col": inst.col + n} if inst.op is InstOp.MAC else {}
        if inst.op is InstOp.WR_INP:
            ends = {"gb": inst.gb + n, "gpr": inst.gpr + n}
        if inst.op in (InstOp.RD_OUT, InstOp.WR_BIAS, InstOp.RD_MAC):
            ends = {"out": inst.out + n, "gpr": inst.gpr + n}
        if inst.op is InstOp.WR_BANK:
            ends = {"col": inst.col + n, "gpr": inst.gpr + n}
        for name, last in ends.items():
            if last > ranges[name][1]:
                raise IsaError(
                    f"{inst.op.name}: {name} + op_size - 1 = {last} exceeds {ranges[name][1]}"
                )


def encode_inst(inst: Instruction, cfg: PimConfig) -> int:
    check_instruction(inst, cfg)
    widths = inst_widths(cfg)
    word, pos = int(inst.op), INST_OPCODE_BITS
    for name in INST_FIELDS[inst.op]:
        value = getattr(inst, name)
        if name in ("op_size", "body_len"):
            value -= 1
        value &= (1 << widths[name]) - 1
        word |= value << pos
        pos += widths[name]
    return word


def decode_inst(word: int, cfg: PimConfig) -> Instruction:
    width = inst_width(cfg)
    if not 0 <= word < 1 << width:
        raise IsaError(f"instruction word 0x{word:x} wider than {width} bits")
    opcode = word & ((1 << INST_OPCODE_BITS) - 1)
    try:
        op = InstOp(opcode)
    except ValueError:
        raise IsaError(f"opcode {opcode} is not an instruction (0..{len(InstOp) - 1})") from None
    widths = inst_widths(cfg)
    values: dict[str, int] = {}
    pos = INST_OPCODE_BITS
    for name in INST_FIELDS[op]:
        v = (word >> pos) & ((1 << widths[name]) - 1)
        pos += widths[name]
        if name in ("op_size", "body_len"):
            v += 1
        if name == "stride" and v >= 1 << (STRIDE_BITS - 1):
            v -= 1 << STRIDE_BITS
        values[name] = v
    if word >> pos:
        raise IsaError(f"{op.name}: bits above {pos - 1} must be 0")
    inst = Instruction(op, **values)
    check_instruction(inst, cfg)
    return inst


# ---------------------------------------------------------------------------- text formats

_ALL_KEYS = set(CMD_FIELDS) | set(INST_FIELD_NAMES) | {"data"}


def _parse_kv(tokens: Sequence[str], where: str) -> dict[str, str]:
    kv: dict[str, str] = {}
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if not sep or not value:
            raise IsaError(f"{where}: expected key=value, got '{tok}'")
        if key not in _ALL_KEYS:
            raise IsaError(f"{where}: unknown field '{key}'")
        if key in kv:
            raise IsaError(f"{where}: field '{key}' given twice")
        kv[key] = value
    return kv


def _int(text: str, where: str, name: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise IsaError(f"{where}: {name} = '{text}' is not an integer") from None


def _parse_data(text: str, lanes: int, where: str) -> tuple[int, ...]:
    if len(text) != 4 * lanes or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise IsaError(f"{where}: data must be {4 * lanes} hex digits ({lanes} bf16 lanes)")
    return tuple(int(text[4 * i : 4 * i + 4], 16) for i in range(lanes))


def parse_command(text: str, cfg: PimConfig, where: str = "command") -> Command:
    tokens = text.split()
    if not tokens:
        raise IsaError(f"{where}: empty command")
    try:
        op = Op[tokens[0].upper()]
    except KeyError:
        raise IsaError(
            f"{where}: unknown command '{tokens[0]}' (one of {', '.join(o.name for o in Op)})"
        ) from None
    kv = _parse_kv(tokens[1:], where)
    data = _parse_data(kv.pop("data"), cfg.geometry.lanes, where) if "data" in kv else None
    for key in kv:
        if key not in OP_FIELDS[op]:
            raise IsaError(f"{where}: {op.name} has no field '{key}'")
    missing = [f for f in OP_FIELDS[op] if f not in kv]
    if missing:
        raise IsaError(f"{where}: {op.name} needs {', '.join(missing)}")
    if op in DATA_OPS and data is None:
        raise IsaError(f"{where}: {op.name} needs data=<{4 * cfg.geometry.lanes} hex digits>")
    cmd = Command(op, data=data, **{k: _int(v, where, k) for k, v in kv.items()})
    try:
        check_command(cmd, cfg)
    except IsaError as exc:
        raise IsaError(f"{where}: {exc}") from None
    return cmd


@dataclass(frozen=True)
class TraceEntry:
    cycle: int
    cmd: Command

    def __str__(self) -> str:
        return f"{self.cycle:>10} {self.cmd}"


def format_trace(entries: Iterable[TraceEntry]) -> str:
    return "".join(f"{e}\n" for e in entries)


def parse_trace(text: str, cfg: PimConfig, source: str = "<trace>") -> list[TraceEntry]:
    """Parse a command trace; cycles must not decrease. Errors name ``source:line``."""
    out: list[TraceEntry] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{source}:{lineno}"
        head, _, rest = body.partition(" ")
        cycle = _int(head, where, "cycle")
        if cycle < 0:
            raise IsaError(f"{where}: cycle = {cycle} must be >= 0")
        if out and cycle < out[-1].cycle:
            raise IsaError(f"{where}: cycle {cycle} is before the previous line's {out[-1].cycle}")
        out.append(TraceEntry(cycle, parse_command(rest, cfg, where)))
    return out


def read_trace(path: str | Path, cfg: PimConfig) -> list[TraceEntry]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise IsaError(f"cannot read trace {p}: {exc.strerror}") from None
    return parse_trace(text, cfg, str(p))


def write_trace(path: str | Path, entries: Iterable[TraceEntry]) -> None:
    Path(path).write_text(format_trace(entries))


def parse_instruction(text: str, cfg: PimConfig, where: str = "instruction") -> Instruction:
    tokens = text.split()
    if not tokens:
        raise IsaError(f"{where}: empty instruction")
    try:
        op = InstOp[tokens[0].upper()]
    except KeyError:
        raise IsaError(
            f"{where}: unknown instruction '{tokens[0]}' "
            f"(one of {', '.join(o.name for o in InstOp)})"
        ) from None
    kv = _parse_kv(tokens[1:], where)
    values: dict[str, int] = {}
    for key, text_value in kv.items():
        if key not in INST_FIELDS[op]:
            raise IsaError(f"{where}: {op.name} has no field '{key}'")
        if key == "field" and text_value.upper() in ModiField.__members__:
            values[key] = int(ModiField[text_value.upper()])
        else:
            values[key] = _int(text_value, where, key)
    inst = Instruction(op, **values)
    try:
        check_instruction(inst, cfg)
    except IsaError as exc:
        raise IsaError(f"{where}: {exc}") from None
    return inst


def parse_program(text: str, cfg: PimConfig, source: str = "<program>") -> list[Instruction]:
    prog = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if body:
            prog.append(parse_instruction(body, cfg, f"{source}:{lineno}"))
    return prog


def format_program(prog: Iterable[Instruction]) -> str:
    return "".join(f"{i}\n" for i in prog)


def iter_words(prog: Iterable[Instruction], cfg: PimConfig) -> Iterator[int]:
    for inst in prog:
        yield encode_inst(inst, cfg)
