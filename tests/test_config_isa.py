"""Config validation/loading and bit-exact ISA encodings with text round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymodel.config import PRESETS, ConfigError, load_config, preset, resolve
from pymodel.isa import (
    CMD_FIELDS,
    DATA_OPS,
    INST_FIELDS,
    OP_FIELDS,
    SCHEDULED_INSTS,
    CmdLayout,
    Command,
    InstOp,
    Instruction,
    IsaError,
    Op,
    TraceEntry,
    decode,
    decode_inst,
    encode,
    encode_inst,
    field_limits,
    format_program,
    format_trace,
    inst_ranges,
    inst_width,
    parse_program,
    parse_trace,
)

CFG = preset("aim-gddr6")


# ---------------------------------------------------------------- config


def test_presets_hold_design_values() -> None:
    t = CFG.timing
    assert (t.nRCD_MAC, t.nRP, t.nRAS, t.nRC, t.nFAW, t.nRFC, t.nREFI) == (
        56,
        32,
        54,
        89,
        28,
        210,
        3906,
    )
    assert CFG.geometry.banks == 16 and CFG.geometry.row_bytes == 2048
    assert CFG.geometry.channel_bytes == 512 * 2**20
    assert CFG.chunk_bytes == 2**20  # 32 all-bank rows = 1 MB
    assert PRESETS["hbm3-pim"].timing.nRCD_MAC != t.nRCD_MAC


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"timing": {"nRCD_MAC": 0}}, "timing.nRCD_MAC = 0 is out of range [1, 65536]"),
        ({"timing": {"nRC": 10}}, "timing.nRC = 10 must be >= nRAS + nRP = 86"),
        ({"timing": {"nRCD_MAX": 3}}, "unknown key 'timing.nRCD_MAX'"),
        (
            {"geometry": {"rows_per_bank": 1000}},
            "geometry.rows_per_bank = 1000 must be a power of two",
        ),
        ({"buffers": {"obuf_entries": "8"}}, "buffers.obuf_entries: expected an integer"),
        ({"cache": {}}, "unknown config section 'cache'"),
        ({"dpa": {"chunk_rows": 20000}}, "dpa.chunk_rows = 20000 is out of range"),
    ],
)
def test_invalid_values_name_field_and_range(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CFG.with_overrides(overrides)
    assert message in str(info.value)


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'ddr9' .available: aim-gddr6, hbm3-pim"):
        preset("ddr9")


def test_load_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "hbm3-pim"\n[buffers]\nobuf_entries = 4\n[timing]\nnRFC = 300\n')
    cfg = load_config(toml)
    assert cfg.name == "hbm3-pim" and cfg.buffers.obuf_entries == 4 and cfg.timing.nRFC == 300
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"buffers": {"gb_entries": 32}}))
    assert resolve(str(js)).buffers.gb_entries == 32
    bad = tmp_path / "bad.toml"
    bad.write_text("[timing]\nnRP = -1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: timing.nRP = -1 is out of range"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[timing\n")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_config(broken)


# ---------------------------------------------------------------- command encoding


@st.composite
def commands(draw: st.DrawFn, cfg=CFG) -> Command:  # type: ignore[no-untyped-def]
    op = draw(st.sampled_from(list(Op)))
    limits = field_limits(cfg)
    values = {f: draw(st.integers(0, limits[f] - 1)) for f in OP_FIELDS[op]}
    data = None
    if op in DATA_OPS:
        data = tuple(draw(st.lists(st.integers(0, 0xFFFF), min_size=16, max_size=16)))
    return Command(op, data=data, **values)


@given(commands())
def test_command_round_trip(cmd: Command) -> None:
    word = encode(cmd, CFG)
    assert 0 <= word < 1 << CmdLayout.of(CFG).width
    assert decode(word, CFG, cmd.data) == cmd
    (entry,) = parse_trace(format_trace([TraceEntry(123, cmd)]), CFG)
    assert entry == TraceEntry(123, cmd)


def test_command_layout_is_fixed_position() -> None:
    lay = CmdLayout.of(CFG)
    assert lay.widths == {"opcode": 4, "bank": 4, "row": 14, "col": 6, "gb": 6, "out": 3}
    assert lay.width == 37
    assert encode(Command(Op.MAC16, col=1, gb=2, out=3), CFG) == (
        5 | 1 << lay.offsets["col"] | 2 << lay.offsets["gb"] | 3 << lay.offsets["out"]
    )


@given(st.integers(0, (1 << 37) - 1))
def test_decode_any_word_is_consistent(word: int) -> None:
    """Every word either decodes to a command that re-encodes to it, or is rejected."""
    try:
        cmd = decode(word, CFG)
    except IsaError:
        lay = CmdLayout.of(CFG)
        opcode = word & 0xF
        if opcode < len(Op):
            unused = [f for f in CMD_FIELDS if f not in OP_FIELDS[Op(opcode)]]
            assert any((word >> lay.offsets[f]) & ((1 << lay.widths[f]) - 1) for f in unused)
        return
    assert encode(cmd, CFG) == word


def test_decode_rejects_with_named_field() -> None:
    with pytest.raises(IsaError, match="opcode 15 is not a command"):
        decode(15, CFG)
    with pytest.raises(IsaError, match="RDMAC: field bank is unused"):
        decode(int(Op.RDMAC) | 1 << 4, CFG)
    odd = CFG.with_overrides({"buffers": {"obuf_entries": 6}})
    with pytest.raises(IsaError, match=r"out = 7 out of range \[0, 5\]"):
        decode(int(Op.RDMAC) | 7 << CmdLayout.of(odd).offsets["out"], odd)


@pytest.mark.parametrize(
    "line, message",
    [
        ("10 MAC16 col=1 gb=2", "t.trace:3: MAC16 needs out"),
        ("10 MAC17 col=1", "t.trace:3: unknown command 'MAC17'"),
        ("x MAC16 col=1 gb=2 out=0", "t.trace:3: cycle = 'x' is not an integer"),
        ("10 MAC16 col=64 gb=2 out=0", "t.trace:3: MAC16: col = 64 out of range [0, 63]"),
        ("10 RDMAC out=1 row=3", "t.trace:3: RDMAC has no field 'row'"),
        ("10 WRGB gb=1 data=12", "t.trace:3: data must be 64 hex digits"),
        ("10 WRGB gb=1", "t.trace:3: WRGB needs data="),
        ("1 PREA", "t.trace:3: cycle 1 is before the previous line's 5"),
        ("10 PREA bank", "t.trace:3: expected key=value, got 'bank'"),
    ],
)
def test_malformed_trace_lines(line: str, message: str) -> None:
    text = "# header\n5 ACT16 row=1\n" + line + "\n"
    with pytest.raises(IsaError) as info:
        parse_trace(text, CFG, "t.trace")
    assert message in str(info.value)


# ---------------------------------------------------------------- HUB instructions


@st.composite
def instructions(draw: st.DrawFn) -> Instruction:
    op = draw(st.sampled_from(list(InstOp)))
    ranges = inst_ranges(CFG)
    values = {}
    for name in INST_FIELDS[op]:
        lo, hi = ranges[name]
        values[name] = draw(st.integers(lo, hi))
    if op in SCHEDULED_INSTS:
        # keep op_size within the addressed buffer
        room = min(
            ranges[f][1] - values[f] + 1
            for f in ("gb", "col", "out", "gpr")
            if f in values and not (op is InstOp.MAC and f == "out")
        )
        values["op_size"] = min(values["op_size"], room)
    return Instruction(op, **values)


@given(instructions())
def test_instruction_round_trip(inst: Instruction) -> None:
    word = encode_inst(inst, CFG)
    assert 0 <= word < 1 << inst_width(CFG)
    assert decode_inst(word, CFG) == inst
    assert parse_program(format_program([inst]), CFG) == [inst]


def test_instruction_errors() -> None:
    with pytest.raises(IsaError, match=r"MAC: gb \+ op_size - 1 = 64 exceeds 63"):
        encode_inst(Instruction(InstOp.MAC, ch_mask=1, op_size=2, gb=63), CFG)
    with pytest.raises(IsaError, match=r"prog:2: WR_INP: ch_mask = 0 out of range"):
        parse_program(
            "MAC ch_mask=1 op_size=1 gb=0 row=0 col=0 out=0\nWR_INP ch_mask=0 gb=0", CFG, "prog"
        )
    with pytest.raises(IsaError, match="DYN_LOOP has no field 'row'"):
        parse_program("DYN_LOOP req=1 body_len=2 row=3", CFG)
    assert parse_program("DYN_MODI field=row stride=-32", CFG)[0].stride == -32
