"""Generate the SystemVerilog package ``rtl/pkg/pim_pkg.sv`` from ``pymodel``.

    python -m pymodel.gen.sv_pkg --out rtl/pkg [--preset NAME | --config FILE]    # write (make gen)
    python -m pymodel.gen.sv_pkg --check rtl/pkg [--preset NAME | --config FILE]  # make check-gen

The package is the only way constants enter the RTL (docs/conventions.md): geometry, buffer sizes
and timing from :mod:`pymodel.config`, the command-word layout, opcodes and HUB instruction layout
from :mod:`pymodel.isa`, and every pairwise timing rule's latency from :mod:`pymodel.timing`.

Naming (deterministic, see :func:`sv_ident`): a Python name is split on ``_``; a part written as a
lower-case letter followed by capitals (a DRAM timing symbol such as ``nRCD``) becomes that letter
upper-cased plus the capitals in Capitalized form (``nRCD`` -> ``NRcd``); every other part is
Capitalized (``MAC`` -> ``Mac``, ``max`` -> ``Max``, ``ACT16`` -> ``Act16``). So ``nRCD_MAC`` ->
``NRcdMac``, ``nREFI`` -> ``NRefi``, ``nCWLGB`` -> ``NCwlgb``, ``max_postponed_refs`` ->
``MaxPostponedRefs``. Opcodes get a prefix (``Op.ACT16`` -> ``OpAct16``, ``InstOp.WR_INP`` ->
``InstWrInp``, ``ModiField.ROW`` -> ``ModiRow``); rule latencies use ``Rule.sv_name``.

The output stays in the subset Verilator, Icarus 11 and Yosys all accept (docs/toolchain.md):
``localparam int`` (never ``int unsigned``), ``typedef enum logic``, ``typedef struct packed``,
functions that assign to their name (no ``return``). Modules refer to it as ``pim_pkg::Name``.
The output depends only on the config: no dates or paths, fixed iteration order.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from pymodel.config import ConfigError, PimConfig, clog2, resolve
from pymodel.golden.channel import ALL_BANK_OPS, SINGLE_BANK_OPS
from pymodel.golden.dpa import D_HEAD, ROWS_PER_BLOCK, DpaConfigError, DpaLayout, DpaStatus, HostOp
from pymodel.golden.sched import MODE_CODE
from pymodel.isa import (
    CMD_FIELDS,
    INST_FIELD_NAMES,
    INST_FIELDS,
    INST_OPCODE_BITS,
    OP_FIELDS,
    STRIDE_BITS,
    CmdErr,
    CmdLayout,
    InstOp,
    ModiField,
    Op,
    inst_width,
    inst_widths,
)
from pymodel.timing import (
    COMPLETION,
    FAW_LIMIT,
    FAW_WEIGHT,
    MODE_REGISTER,
    RULES,
    Scope,
    applies,
    mode_of,
    rule_parts,
)

PKG_NAME = "pim_pkg"
PKG_FILE = f"{PKG_NAME}.sv"
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


class GenError(ValueError):
    """The config cannot be expressed in the package (value too large, name clash)."""


def sv_ident(name: str) -> str:
    """UpperCamelCase SV identifier of a Python name (the mapping in the module docstring)."""
    out = []
    for part in name.split("_"):
        if not part:
            continue
        if len(part) > 1 and part[0].islower() and part[1:].isupper():
            out.append(part[0].upper() + part[1:].capitalize())
        else:
            out.append(part.capitalize())
    ident = "".join(out)
    if not ident or not ident[0].isalpha():
        raise GenError(f"cannot make an SV identifier from {name!r}")
    return ident


def op_ident(op: Op) -> str:
    return "Op" + sv_ident(op.name)


def inst_op_ident(op: InstOp) -> str:
    return "Inst" + sv_ident(op.name)


def modi_ident(f: ModiField) -> str:
    return "Modi" + sv_ident(f.name)


def field_ident(name: str) -> str:
    """Command-field index name in ``cmd_field_e`` (``gb`` -> ``FieldGb``)."""
    return "Field" + sv_ident(name)


class _Pkg:
    """Line collector that also checks identifiers are unique and values fit a 32-bit int."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: set[str] = set()

    def _declare(self, name: str) -> None:
        if name in self.names:
            raise GenError(f"identifier {name} generated twice")
        self.names.add(name)

    def blank(self) -> None:
        self.lines.append("")

    def comment(self, text: str, indent: int = 2) -> None:
        for line in text.splitlines() or [""]:
            self.lines.append(" " * indent + ("// " + line).rstrip())

    def section(self, title: str) -> None:
        self.blank()
        self.comment("-" * 4 + " " + title + " " + "-" * max(4, 90 - len(title)))

    def int_param(self, name: str, value: int, note: str = "") -> None:
        self._declare(name)
        if not INT_MIN <= value <= INT_MAX:
            raise GenError(f"{name} = {value} does not fit a 32-bit SV int")
        line = f"  localparam int {name} = {value};"
        if note:
            line = f"{line:<48}// {note}"
        self.lines.append(line)

    def bit_param(self, name: str, value: bool, note: str = "") -> None:
        self._declare(name)
        line = f"  localparam bit {name} = 1'b{int(value)};"
        if note:
            line = f"{line:<48}// {note}"
        self.lines.append(line)

    def enum(self, type_name: str, width: str, items: Sequence[tuple[str, int]], note: str) -> None:
        self._declare(type_name)
        self.comment(note)
        self.lines.append(f"  typedef enum logic [{width}-1:0] {{")
        for i, (name, value) in enumerate(items):
            self._declare(name)
            sep = "," if i < len(items) - 1 else ""
            self.lines.append(f"    {name} = {value}{sep}")
        self.lines.append(f"  }} {type_name};")

    def raw(self, *lines: str) -> None:
        self.lines.extend(lines)


def _ops(ops: frozenset[Op]) -> str:
    return ", ".join(o.name for o in sorted(ops))


def render(cfg: PimConfig) -> dict[str, str]:
    """All generated files: ``{file name: text}``."""
    return {PKG_FILE: render_pkg(cfg)}


def render_pkg(cfg: PimConfig) -> str:
    """The text of ``pim_pkg.sv``: header, then one section per source of constants."""
    p = _Pkg()
    for section in (
        render_header,
        render_sizes,
        render_timing,
        render_cmd_word,
        render_cmd_functions,
        render_rules,
        render_inst_word,
        render_sched,
        render_dpa,
    ):
        section(p, cfg)
    p.blank()
    p.raw(f"endpackage : {PKG_NAME}", "")
    return "\n".join(p.lines)


def render_header(p: _Pkg, cfg: PimConfig) -> None:
    """File header and the package line."""
    p.raw(
        "// GENERATED FILE - DO NOT EDIT. Written by `make gen` (python -m pymodel.gen.sv_pkg)",
        f"// from pymodel.config (config '{cfg.name}'), pymodel.isa and pymodel.timing;",
        "// `make check-gen` fails when it is stale. Change the Python sources and run `make gen`.",
        "//",
        "// Refer to every item with the package scope (pim_pkg::NRcdMac): Yosys rejects `import`.",
        "// Names: Python field names in UpperCamelCase (nRCD_MAC -> NRcdMac, nREFI -> NRefi,",
        "// rows_per_bank -> NumRows ...); see pymodel/gen/sv_pkg.py for the exact mapping.",
        "// Icarus 11 crashes on package-scoped struct types, casts to package enums and variables",
        "// of package enum types: RTL that must run on Icarus uses vectors of the *Width params.",
        "",
        f"package {PKG_NAME};",
    )


def render_sizes(p: _Pkg, cfg: PimConfig) -> None:
    """Geometry, buffer, module, DPA and scheduler sizes (pymodel.config)."""
    g, b, m, d = cfg.geometry, cfg.buffers, cfg.module, cfg.dpa
    p.section("geometry and buffers (pymodel.config)")
    p.int_param("NumBankGroups", g.bank_groups, "geometry.bank_groups")
    p.int_param("BanksPerGroup", g.banks_per_group, "geometry.banks_per_group")
    p.int_param("NumBanks", g.banks, "bank_groups * banks_per_group")
    p.int_param("NumRows", g.rows_per_bank, "geometry.rows_per_bank")
    p.int_param("NumCols", g.columns_per_row, "geometry.columns_per_row")
    p.int_param("ColumnBytes", g.column_bytes, "geometry.column_bytes")
    p.int_param("Lanes", g.lanes, "bf16 lanes per column = MAC lanes per bank")
    p.int_param("RowBytes", g.row_bytes, "columns_per_row * column_bytes")
    p.int_param("GbEntries", b.gb_entries, "buffers.gb_entries (one column each)")
    p.int_param("ObufEntries", b.obuf_entries, "buffers.obuf_entries (per bank)")

    p.section("module, HUB and DPA sizes (pymodel.config)")
    p.int_param("NumChannels", m.channels, "module.channels")
    p.int_param("TckPs", m.tck_ps, "module.tck_ps (command clock period)")
    p.int_param("GprBytes", m.gpr_bytes, "module.gpr_bytes")
    p.int_param("MaxOpSize", m.max_op_size, "module.max_op_size")
    for f in fields(d):
        p.int_param(sv_ident(f.name), getattr(d, f.name), f"dpa.{f.name}")
    p.bit_param("BlockingRdMacOn", cfg.sched.blocking_rd_mac, "sched.blocking_rd_mac")


def render_timing(p: _Pkg, cfg: PimConfig) -> None:
    """Every timing field in command-clock cycles (pymodel.config.Timing)."""
    t = cfg.timing
    p.section("timing in command-clock cycles (pymodel.config.Timing)")
    for f in fields(t):
        value = getattr(t, f.name)
        if isinstance(value, bool):
            p.bit_param(sv_ident(f.name) + "On", value, f"timing.{f.name}")
        elif isinstance(value, int):
            p.int_param(sv_ident(f.name), value, f"timing.{f.name}")
    p.comment(f"timing.mode_switch = {t.mode_switch!r}: see the register-access mode masks below.")


def render_cmd_word(p: _Pkg, cfg: PimConfig) -> None:
    """The channel command word: field layout, opcode/field/error enums, cmd_t."""
    lay = CmdLayout.of(cfg)
    p.section("channel command word (pymodel.isa.CmdLayout), LSB first")
    p.comment(
        "Every field sits at a fixed offset for every opcode; fields an opcode does not use must\n"
        "be 0; a used field must be < its <Field>Limit (checked only where <Field>RangeCheck,\n"
        "i.e. where the limit is not 2**<Field>Width)."
    )
    p.int_param("CmdWidth", lay.width, "bits of one command word")
    p.int_param("OpcodeWidth", lay.widths["opcode"])
    p.int_param("OpcodeOffset", lay.offsets["opcode"])
    for name in CMD_FIELDS:
        ident = sv_ident(name)
        width, limit = lay.widths[name], lay.limits[name]
        p.int_param(f"{ident}Width", width)
        p.int_param(f"{ident}Offset", lay.offsets[name])
        p.int_param(f"{ident}Limit", limit, f"legal values of {name}: 0 .. {limit - 1}")
        check = limit != 1 << width
        rel = "<" if check else "=="
        p.bit_param(f"{ident}RangeCheck", check, f"limit {limit} {rel} 2**{width}")
    p.int_param("NumCmdFields", len(CMD_FIELDS))

    p.blank()
    p.enum(
        "op_e",
        "OpcodeWidth",
        [(op_ident(op), int(op)) for op in Op],
        "Channel command opcodes (pymodel.isa.Op).",
    )
    p.int_param("NumOps", len(Op))
    p.blank()
    p.int_param("CmdFieldWidth", clog2(len(CMD_FIELDS)))
    p.enum(
        "cmd_field_e",
        "CmdFieldWidth",
        [(field_ident(name), i) for i, name in enumerate(CMD_FIELDS)],
        "Index of each command field (bit position in the op_fields() mask), in check order.",
    )
    p.blank()
    p.int_param("CmdErrWidth", clog2(len(CmdErr)))
    p.enum(
        "cmd_err_e",
        "CmdErrWidth",
        [("CmdErr" + sv_ident(e.name), int(e)) for e in CmdErr],
        "Why a command word is illegal (pymodel.isa.CmdErr; mirrors pymodel.isa.decode).",
    )

    p.blank()
    p.comment(
        "A decoded command. Members are declared MSB first so that the packed struct has exactly\n"
        "the bit layout of the command word: `cmd_t'(word)` slices every field."
    )
    p.raw("  typedef struct packed {")
    fields_msb_first = [*reversed(CMD_FIELDS), "opcode"]
    offsets_msb_first = sorted(lay.offsets.items(), key=lambda kv: -kv[1])
    if [n for n, _ in offsets_msb_first] != fields_msb_first:
        raise GenError("pymodel.isa.CmdLayout no longer places fields in CMD_FIELDS order")
    for name in fields_msb_first:
        if name == "opcode":
            p.raw("    op_e op;")
        else:
            p.raw(f"    logic [{sv_ident(name)}Width-1:0] {name};")
    p.raw("  } cmd_t;")
    p._declare("cmd_t")


def render_cmd_functions(p: _Pkg, cfg: PimConfig) -> None:
    """op_fields() and op_known(): which fields an opcode uses, known opcodes."""
    lay = CmdLayout.of(cfg)
    p.blank()
    p.comment(
        "Fields each opcode uses (pymodel.isa.OP_FIELDS): bit cmd_field_e of the mask; 0 for an\n"
        "unknown opcode. Plain-vector argument and literal case items: Icarus 11 cannot cast to\n"
        "package enums, and Yosys does not resolve package names inside an inlined function."
    )
    p._declare("op_fields")
    ow, nf = lay.widths["opcode"], len(CMD_FIELDS)
    p.raw(
        f"  function automatic logic [{nf - 1}:0] op_fields(input logic [{ow - 1}:0] opcode);",
        f"    op_fields = {nf}'b0;",
        "    case (opcode)",
    )
    for op in Op:
        used = OP_FIELDS[op]
        mask = "".join("1" if n in used else "0" for n in reversed(CMD_FIELDS))
        names = ", ".join(used) if used else "no fields"
        p.raw(f"      {ow}'d{int(op)}: op_fields = {nf}'b{mask};  // {op_ident(op)}: {names}")
    p.raw(
        f"      default: op_fields = {nf}'b0;",
        "    endcase",
        "  endfunction",
    )
    p.blank()
    p.comment("1 when `opcode` is one of op_e (pymodel.isa.Op).")
    p._declare("op_known")
    p.raw(
        f"  function automatic logic op_known(input logic [{ow - 1}:0] opcode);",
        "    case (opcode)",
        "      " + ",\n      ".join(f"{ow}'d{int(op)}" for op in Op) + ": op_known = 1'b1;",
        "      default: op_known = 1'b0;",
        "    endcase",
        "  endfunction",
    )


def render_rules(p: _Pkg, cfg: PimConfig) -> None:
    """One latency constant per pairwise timing rule, and the nFAW window."""
    t = cfg.timing
    p.section("timing rules (pymodel.timing.RULES): minimum prev -> next distance, cycles")
    p.comment(
        "A latency may be <= 0 (the next command's data comes later anyway): no constraint.\n"
        "Scopes: same bank | other bank, same bank group | other bank group | channel |\n"
        "same GB entry | same OBuf entry."
    )
    for rule in RULES:
        p.comment(f"{rule.name}: {rule.doc}")
        p.comment(f"  prev: {_ops(rule.prev)} | next: {_ops(rule.next)}")
        p.comment(f"  scope: {rule.scope.value}")
        p.int_param(rule.sv_name, rule.latency(t))
    p.comment("nFAW window (pymodel.timing, not pairwise): at most FawLimit ACT weights per NFaw.")
    p.int_param("FawLimit", FAW_LIMIT)
    for op, weight in sorted(FAW_WEIGHT.items()):
        p.int_param(f"FawWeight{sv_ident(op.name)}", weight, f"{op.name} counts as {weight}")


def render_inst_word(p: _Pkg, cfg: PimConfig) -> None:
    """The HUB instruction word: widths, opcode and DYN_MODI enums, offsets."""
    p.section("HUB instruction word (pymodel.isa), LSB first: opcode, then the op's fields")
    p.comment("op_size and body_len are stored minus one; stride is two's complement.")
    iw = inst_widths(cfg)
    p.int_param("InstWidth", inst_width(cfg), "bits of one instruction word")
    p.int_param("InstOpcodeWidth", INST_OPCODE_BITS)
    for name in INST_FIELD_NAMES:
        p.int_param(f"Inst{sv_ident(name)}Width", iw[name])
    if iw["stride"] != STRIDE_BITS:
        raise GenError("pymodel.isa stride width changed; update pymodel.gen.sv_pkg")
    p.blank()
    p.enum(
        "inst_op_e",
        "InstOpcodeWidth",
        [(inst_op_ident(iop), int(iop)) for iop in InstOp],
        "HUB instruction opcodes (pymodel.isa.InstOp).",
    )
    p.int_param("NumInstOps", len(InstOp))
    p.blank()
    p.enum(
        "modi_field_e",
        "InstFieldWidth",
        [(modi_ident(f), int(f)) for f in ModiField],
        "Operand a DYN_MODI advances (pymodel.isa.ModiField).",
    )
    p.blank()
    p.comment("Bit offset of each operand inside its instruction word.")
    for iop in InstOp:
        pos = INST_OPCODE_BITS
        for name in INST_FIELDS[iop]:
            p.int_param(f"{inst_op_ident(iop)}{sv_ident(name)}Offset", pos)
            pos += iw[name]
        p.int_param(f"{inst_op_ident(iop)}Bits", pos, f"used bits of {iop.name}; the rest are 0")


# ---------------------------------------------------------------------------- command scheduler

#: Per-bank scope classes of ``SchedBankLat`` (index 0..2).
BANK_CLASSES = (Scope.BANK, Scope.BANK_GROUP, Scope.OTHER_GROUP)


def sched_latency_tables(cfg: PimConfig) -> dict[str, list[int]]:
    """Pairwise latencies folded by what the RTL must remember (flat lists, index ``p*N + n``).

    ``chan``: rules resolved by the last issue of ``p`` anywhere on the channel (channel scope,
    or a bank scope where either command is all-bank, as :class:`pymodel.golden.channel.Channel`
    does); ``bank``: single-bank ``p`` -> single-bank ``n``, index ``(p*N + n)*3 + class`` with
    class 0 same bank, 1 other bank same group, 2 other group; ``gb``/``out``: per buffer entry.
    Latencies <= 0 (no constraint) are 0. ``N = len(Op)``.
    """
    g, t = cfg.geometry, cfg.timing
    n_ops = len(Op)
    chan = [0] * (n_ops * n_ops)
    bank = [0] * (n_ops * n_ops * len(BANK_CLASSES))
    gb = [0] * (n_ops * n_ops)
    out = [0] * (n_ops * n_ops)
    dual = cfg.buffers.obuf_dual_port
    for rule in RULES:
        lat = rule.latency(t)
        if lat <= 0:
            continue
        for p in rule.prev:
            for n in rule.next:
                if not applies(rule, p, n, dual):
                    continue
                i = int(p) * n_ops + int(n)
                if rule.scope is Scope.CHANNEL:
                    chan[i] = max(chan[i], lat)
                elif rule.scope is Scope.GB_ENTRY:
                    gb[i] = max(gb[i], lat)
                elif rule.scope is Scope.OUT_ENTRY:
                    out[i] = max(out[i], lat)
                elif n in ALL_BANK_OPS:
                    chan[i] = max(chan[i], lat)
                elif p in ALL_BANK_OPS:  # every bank has p's cycle: exists unless class empty
                    exists = {
                        Scope.BANK: True,
                        Scope.BANK_GROUP: g.banks_per_group > 1,
                        Scope.OTHER_GROUP: g.bank_groups > 1,
                    }[rule.scope]
                    if exists:
                        chan[i] = max(chan[i], lat)
                else:
                    j = i * len(BANK_CLASSES) + BANK_CLASSES.index(rule.scope)
                    bank[j] = max(bank[j], lat)
    return {"chan": chan, "bank": bank, "gb": gb, "out": out}


def _packed(p: _Pkg, name: str, values: Sequence[int], width: int, note: str) -> None:
    """A packed-vector localparam: element ``i`` at bits ``[i*width +: width]``."""
    p._declare(name)
    p.comment(note)
    total = width * len(values)
    body = 0
    for i, v in enumerate(values):
        body |= v << (i * width)
    p.raw(f"  localparam logic [{total}-1:0] {name} = {total}'h{body:x};")


def render_sched(p: _Pkg, cfg: PimConfig) -> None:
    """Constants of the RTL command scheduler (rtl/sched, pymodel.golden.sched)."""
    b, t = cfg.buffers, cfg.timing
    p.section("command scheduler (rtl/sched; pymodel.golden.sched, pymodel.timing)")
    p.int_param("QueueDepth", b.queue_depth, "buffers.queue_depth (instructions per queue)")
    p.int_param("SchedModeWidth", 2)
    for mode, code in MODE_CODE.items():
        p.int_param(f"SchedMode{sv_ident(mode.value)}", code, f"pymodel.golden.sched.{mode}")
    p.int_param("SchedGbHalf", max(1, b.gb_entries // 2), "PINGPONG: GB key = entry / SchedGbHalf")
    p.int_param(
        "SchedObufHalf", max(1, b.obuf_entries // 2), "PINGPONG: OBuf key = entry / SchedObufHalf"
    )
    tables = sched_latency_tables(cfg)
    completion = [0] * len(Op)
    for op, f in COMPLETION.items():
        completion[int(op)] = max(0, f(t))
    since_max = max([1, t.nFAW, *completion] + [v for tab in tables.values() for v in tab])
    lat_w = clog2(since_max + 1)
    p.int_param("SchedSinceMax", since_max, "largest latency a 'cycles since' counter must see")
    p.int_param("SchedLatWidth", lat_w, "bits of one latency entry / since counter")
    # Per-entry counters need only count to their own table's largest latency (same checks,
    # fewer bits: the GB and OBuf counters are most of pim_sched's state).
    for key, name in (("gb", "Gb"), ("out", "Out")):
        top = max([1, *tables[key]])
        p.int_param(f"Sched{name}SinceMax", top, f"largest SchedGbLat/SchedOutLat: {key} counters")
        p.int_param(f"Sched{name}SinceWidth", clog2(top + 1))
    p.int_param("SchedNumBankClasses", len(BANK_CLASSES), "same bank, same group, other group")
    p.comment(
        "Latency tables, element [prev*NumOps + next] (SchedBankLat: *3 + class). Built from\n"
        "pymodel.timing.RULES by pymodel.gen.sv_pkg.sched_latency_tables; 0 = no constraint."
    )
    _packed(p, "SchedChanLat", tables["chan"], lat_w, "since last prev anywhere on the channel")
    _packed(p, "SchedBankLat", tables["bank"], lat_w, "single-bank prev -> single-bank next")
    _packed(p, "SchedGbLat", tables["gb"], lat_w, "same GB entry")
    _packed(p, "SchedOutLat", tables["out"], lat_w, "same OBuf entry")
    _packed(
        p,
        "SchedCompletion",
        completion,
        lat_w,
        "pymodel.timing.COMPLETION per op (STATIC waits this long after an instruction)",
    )
    render_rule_list(p, cfg, lat_w)
    rd_hold = t.nCLREG + t.nBL + 1 if cfg.sched.blocking_rd_mac else 0
    p.int_param(
        "SchedRdHold",
        rd_hold,
        "STATIC: cycles from an RDMAC to the next command (sched.blocking_rd_mac; 0 = off)",
    )
    p.blank()
    dual = cfg.buffers.obuf_dual_port
    p.comment(
        f"Register-access mode (timing.mode_switch = {t.mode_switch!r}, buffers.obuf_dual_port "
        f"= {str(dual).lower()}, pymodel.timing.mode_of):\n"
        "bit op of ModeAnyOps = legal in either mode; of ModeRegOps = needs register mode.\n"
        "A head whose command needs the other mode issues a TMOD in its place."
    )
    n_ops = len(Op)
    any_mask = sum(1 << int(op) for op in Op if mode_of(op, t.mode_switch, dual) is None)
    reg_mask = sum(1 << int(op) for op in Op if mode_of(op, t.mode_switch, dual) == MODE_REGISTER)
    p._declare("ModeAnyOps")
    p.raw(f"  localparam logic [{n_ops}-1:0] ModeAnyOps = {n_ops}'h{any_mask:x};")
    p._declare("ModeRegOps")
    p.raw(f"  localparam logic [{n_ops}-1:0] ModeRegOps = {n_ops}'h{reg_mask:x};")
    p.int_param(
        "SchedSeqWidth",
        clog2(2 * b.queue_depth) + 1,
        "age tag of a queued instruction (wraps; compared modulo 2**SchedSeqWidth)",
    )
    p.blank()
    p.comment(
        "One queued instruction, decoded from the HUB word (op_size stored minus one). Only\n"
        "WR_INP, MAC, RD_OUT, WR_BANK, WR_BIAS and RD_MAC reach the scheduler; unused operands\n"
        "are 0."
    )
    p.raw("  typedef struct packed {")
    for name, width in (
        ("op", "InstOpcodeWidth"),
        ("size_m1", "InstOpSizeWidth"),
        ("gpr", "InstGprWidth"),
        ("bank", "InstBankWidth"),
        ("gb", "InstGbWidth"),
        ("row", "InstRowWidth"),
        ("col", "InstColWidth"),
        ("out", "InstOutWidth"),
    ):
        p.raw(f"    logic [{width}-1:0] {name};")
    p.raw("  } sched_inst_t;")
    p._declare("sched_inst_t")
    p.int_param(
        "SchedInstBits",
        INST_OPCODE_BITS
        + sum(inst_widths(cfg)[f] for f in ("op_size", "gpr", "bank", "gb", "row", "col", "out")),
        "bits of sched_inst_t",
    )
    p.int_param(
        "SchedRefWidth",
        clog2(t.nREFI + 1) + 3,
        "signed cycles until the next REF is due",
    )


#: Scope codes of ``RuleScope`` (the order of pymodel.timing.Scope).
SCOPE_CODES = tuple(Scope)


def _op_mask(ops: frozenset[Op] | set[Op]) -> int:
    return sum(1 << int(op) for op in ops)


def render_rule_list(p: _Pkg, cfg: PimConfig, lat_w: int) -> None:
    """Every pairwise rule unfolded (prev/next op masks, scope, latency), for the RTL's timing
    checker (rtl/sched/sched_timing_check.sv): an implementation of the channel model's rule
    resolution independent of the folded SchedChanLat/SchedBankLat tables."""
    t, n_ops = cfg.timing, len(Op)
    # a rule whose pairs a dual-ported OBuf partly lifts becomes several rectangles
    parts = [
        (r, prev, nxt) for r in RULES for prev, nxt in rule_parts(r, cfg.buffers.obuf_dual_port)
    ]
    p.blank()
    p.comment(
        "Timing rules one by one (pymodel.timing.RULES order; pymodel.timing.rule_parts) for the\n"
        "assertion-only checker:\n"
        "RuleLat[r] (0 = never binds), RulePrev/RuleNext[r] op masks (bit op), RuleScope[r] =\n"
        + ", ".join(f"{i} {s.value}" for i, s in enumerate(SCOPE_CODES))
        + "."
    )
    p.int_param("NumRules", len(parts))
    p.int_param("RuleScopeWidth", clog2(len(SCOPE_CODES)))
    for i, scope in enumerate(SCOPE_CODES):  # the checker names scopes by these, never by number
        p.int_param(f"Scope{sv_ident(scope.name)}", i, f"RuleScope code: {scope.value}")
    _packed(p, "RuleLat", [max(0, r.latency(t)) for r, _, _ in parts], lat_w, "latency per rule")
    _packed(p, "RulePrev", [_op_mask(a) for _, a, _ in parts], n_ops, "prev op mask per rule")
    _packed(p, "RuleNext", [_op_mask(b) for _, _, b in parts], n_ops, "next op mask per rule")
    _packed(
        p,
        "RuleScope",
        [SCOPE_CODES.index(r.scope) for r, _, _ in parts],
        clog2(len(SCOPE_CODES)),
        "scope per rule",
    )
    for name, ops, note in (
        ("AllBankOps", ALL_BANK_OPS, "commands that touch every bank"),
        ("SingleBankOps", SINGLE_BANK_OPS, "commands that touch their bank"),
        ("GbOps", {o for o in Op if "gb" in OP_FIELDS[o]}, "commands with a GB entry"),
        ("OutOps", {o for o in Op if "out" in OP_FIELDS[o]}, "commands with an OBuf entry"),
    ):
        p._declare(name)
        p.raw(f"  localparam logic [{n_ops}-1:0] {name} = {n_ops}'h{_op_mask(ops):x};  // {note}")


def write(out_dir: str | Path, cfg: PimConfig) -> list[Path]:
    """Write the generated files; files whose content is unchanged are not touched (mtime kept)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in render(cfg).items():
        path = out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def check(out_dir: str | Path, cfg: PimConfig) -> list[str]:
    """Problems with the files in ``out_dir`` (empty when every generated file is up to date)."""
    problems = []
    for name, text in render(cfg).items():
        path = Path(out_dir) / name
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        old = path.read_text()
        if old != text:
            diff = list(
                difflib.unified_diff(
                    old.splitlines(),
                    text.splitlines(),
                    f"{path} (on disk)",
                    f"{path} (expected)",
                    lineterm="",
                    n=0,
                )
            )
            shown = "\n".join(diff[:12]) + ("\n  ..." if len(diff) > 12 else "")
            problems.append(f"{path} is stale (differs from config '{cfg.name}'):\n{shown}")
    return problems


# ---------------------------------------------------------------------------- DPA controller


def render_dpa(p: _Pkg, cfg: PimConfig) -> None:
    """Constants of the DPA controller (rtl/dpa, pymodel.golden.dpa)."""
    try:
        lay = DpaLayout.of(cfg)
    except DpaConfigError as exc:
        raise GenError(f"DPA layout: {exc}") from None
    p.section("DPA controller (rtl/dpa; pymodel.golden.dpa)")
    p.int_param("DpaDHead", D_HEAD, "head size of the KV layout")
    p.int_param("DpaRowsPerBlock", ROWS_PER_BLOCK, "virtual rows per KV block (K row, V row)")
    p.int_param("DpaBlockTokens", lay.block_tokens, "tokens per KV block (one K row)")
    p.int_param("DpaChunkTokens", lay.chunk_tokens, "tokens per chunk")
    p.int_param("DpaChunksPerChannel", lay.chunks_per_channel, "rows_per_bank / chunk_rows")
    p.int_param("DpaNumChunks", lay.num_chunks, "chunks in the module")
    p.int_param("DpaMaxTokens", lay.max_tokens, "max_chunks_per_request * chunk_tokens")
    p.int_param("DpaMaxIters", lay.max_tokens // lay.block_tokens, "KV blocks of a full request")
    p.int_param("DpaChanWidth", clog2(lay.channels))
    p.int_param("DpaIdxWidth", clog2(lay.chunks_per_channel), "chunk index within a channel")
    p.int_param("DpaVchunkWidth", clog2(lay.max_chunks), "virtual chunk number")
    p.int_param("DpaNchunkWidth", clog2(lay.max_chunks + 1), "chunks held by one request")
    p.int_param("DpaFreeWidth", clog2(lay.chunks_per_channel + 1), "free chunks of a channel")
    p.int_param("DpaTotalFreeWidth", clog2(lay.num_chunks + 1), "free chunks of the module")
    p.int_param("DpaTokWidth", clog2(lay.max_tokens + 1), "a request length in tokens")
    p.int_param("DpaIterWidth", clog2(lay.max_tokens // lay.block_tokens + 1))
    p.int_param("DpaArgWidth", clog2(lay.max_tokens + 1), "host argument: tokens or virtual row")
    p.int_param("DpaHostOpWidth", 2)
    for op in HostOp:
        p.int_param(f"DpaHost{sv_ident(op.name)}", int(op), f"pymodel.golden.dpa.HostOp.{op.name}")
    p.int_param("DpaStatusWidth", 3)
    for stat in DpaStatus:
        p.int_param(
            f"DpaSt{sv_ident(stat.name)}", int(stat), f"pymodel.golden.dpa.DpaStatus.{stat.name}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pymodel.gen.sv_pkg", description="Generate rtl/pkg/pim_pkg.sv from pymodel."
    )
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", metavar="DIR", help="write the package(s) into DIR")
    mode.add_argument("--check", metavar="DIR", help="exit 1 if the package(s) in DIR are stale")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME", help="config preset (default aim-gddr6)")
    src.add_argument("--config", metavar="FILE", help="TOML/JSON config file")
    args = ap.parse_args(argv)
    try:
        cfg = resolve(args.config or args.preset)
        if args.out is not None:
            changed = write(args.out, cfg)
            for name in render(cfg):
                path = Path(args.out) / name
                print(f"sv_pkg: {'wrote' if path in changed else 'up to date:'} {path}")
            return 0
        problems = check(args.check, cfg)
    except (ConfigError, GenError) as exc:
        print(f"sv_pkg: error: {exc}", file=sys.stderr)
        return 2
    for msg in problems:
        print(f"sv_pkg: {msg}", file=sys.stderr)
    if problems:
        print("sv_pkg: run `make gen` to regenerate", file=sys.stderr)
        return 1
    print(f"sv_pkg: {args.check} is up to date (config '{cfg.name}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
