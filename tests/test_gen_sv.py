"""pymodel.gen.sv_pkg: committed rtl/pkg is current, values follow the config, staleness is
caught."""

from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path

import pytest

from pymodel.config import PimConfig, preset
from pymodel.gen import sv_pkg
from pymodel.isa import CMD_FIELDS, CmdLayout, InstOp, Op
from pymodel.timing import RULES

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "rtl" / "pkg"
AIM = preset("aim-gddr6")
HBM = preset("hbm3-pim")

_PARAM = re.compile(r"^\s*localparam (?:int|bit) (\w+) = (-?\d+|1'b[01]);", re.M)
_ENUM_ITEM = re.compile(r"^\s*(\w+) = (\d+),?$", re.M)


def params(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in _PARAM.findall(text):
        assert name not in out, f"{name} declared twice"
        out[name] = int(value[-1]) if value.startswith("1'b") else int(value)
    return out


def test_committed_package_is_up_to_date() -> None:
    """Same check as `make check-gen`."""
    assert sv_pkg.check(PKG_DIR, AIM) == [], "rtl/pkg is stale: run `make gen`"
    assert sv_pkg.main(["--check", str(PKG_DIR)]) == 0


def test_output_is_deterministic_and_has_header() -> None:
    a, b = sv_pkg.render_pkg(AIM), sv_pkg.render_pkg(preset("aim-gddr6"))
    assert a == b
    assert a.startswith("// GENERATED FILE - DO NOT EDIT")
    assert "make gen" in a.splitlines()[0]
    assert "package pim_pkg;" in a and a.rstrip().endswith("endpackage : pim_pkg")
    assert "int unsigned" not in a  # Icarus 11 rejects it in localparams
    assert not re.search(r"^\s*import\b", a, re.M)  # Yosys rejects import


@pytest.mark.parametrize(
    "name, ident",
    [
        ("nRCD_MAC", "NRcdMac"),
        ("nREFI", "NRefi"),
        ("nCWLGB", "NCwlgb"),
        ("nRP", "NRp"),
        ("max_postponed_refs", "MaxPostponedRefs"),
        ("ACT16", "Act16"),
        ("WR_INP", "WrInp"),
        ("gb", "Gb"),
    ],
)
def test_sv_ident_mapping(name: str, ident: str) -> None:
    assert sv_pkg.sv_ident(name) == ident


@pytest.mark.parametrize("cfg", [AIM, HBM], ids=lambda c: c.name)
def test_values_match_config(cfg: PimConfig) -> None:
    text = sv_pkg.render_pkg(cfg)
    p = params(text)
    for f in fields(cfg.timing):
        value = getattr(cfg.timing, f.name)
        if isinstance(value, bool):
            assert p[sv_pkg.sv_ident(f.name) + "On"] == int(value), f.name
        elif isinstance(value, int):
            assert p[sv_pkg.sv_ident(f.name)] == value, f.name
    from pymodel.timing import MODE_REGISTER, mode_of

    reg = sum(1 << int(op) for op in Op if mode_of(op, cfg.timing.mode_switch) == MODE_REGISTER)
    assert f"ModeRegOps = {len(Op)}'h{reg:x};" in text
    g, b = cfg.geometry, cfg.buffers
    assert (p["NumBanks"], p["NumBankGroups"], p["NumRows"], p["NumCols"]) == (
        g.banks,
        g.bank_groups,
        g.rows_per_bank,
        g.columns_per_row,
    )
    assert (p["Lanes"], p["GbEntries"], p["ObufEntries"]) == (g.lanes, b.gb_entries, b.obuf_entries)
    lay = CmdLayout.of(cfg)
    assert p["CmdWidth"] == lay.width
    assert (p["OpcodeWidth"], p["OpcodeOffset"]) == (lay.widths["opcode"], lay.offsets["opcode"])
    for name in CMD_FIELDS:
        ident = sv_pkg.sv_ident(name)
        assert p[f"{ident}Width"] == lay.widths[name]
        assert p[f"{ident}Offset"] == lay.offsets[name]
        assert p[f"{ident}Limit"] == lay.limits[name]
        assert p[f"{ident}RangeCheck"] == int(lay.limits[name] != 1 << lay.widths[name])
    for rule in RULES:
        assert p[rule.sv_name] == rule.latency(cfg.timing), rule.name
    items = dict((k, int(v)) for k, v in _ENUM_ITEM.findall(text))
    assert all(items[sv_pkg.op_ident(op)] == int(op) for op in Op)
    assert all(items[sv_pkg.inst_op_ident(op)] == int(op) for op in InstOp)
    assert "typedef enum logic [OpcodeWidth-1:0] {" in text and "} op_e;" in text
    assert "} cmd_t;" in text


def test_nrcd_mac_line_literally() -> None:
    assert re.search(r"^  localparam int NRcdMac = 56;", sv_pkg.render_pkg(AIM), re.M)
    assert re.search(r"^  localparam int NRcdMac = 24;", sv_pkg.render_pkg(HBM), re.M)


def test_other_preset_differs() -> None:
    a, h = params(sv_pkg.render_pkg(AIM)), params(sv_pkg.render_pkg(HBM))
    assert a.keys() == h.keys()
    differ = {k for k in a if a[k] != h[k]}
    assert {"NRcdMac", "NRfc", "NumCols", "GbEntries", "CmdWidth", "TckPs"} <= differ
    assert sv_pkg.check(PKG_DIR, HBM) != []  # the committed (aim-gddr6) file is stale for hbm3


def test_stale_file_is_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sv_pkg.main(["--out", str(tmp_path)]) == 0
    pkg = tmp_path / "pim_pkg.sv"
    assert sv_pkg.main(["--check", str(tmp_path)]) == 0
    pkg.write_text(pkg.read_text().replace("NRcdMac = 56;", "NRcdMac = 55;"))
    capsys.readouterr()
    assert sv_pkg.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{pkg} is stale" in err and "NRcdMac = 55" in err and "make gen" in err
    pkg.unlink()
    assert sv_pkg.main(["--check", str(tmp_path)]) == 1
    assert f"{pkg} is missing" in capsys.readouterr().err


def test_write_keeps_unchanged_file(tmp_path: Path) -> None:
    assert sv_pkg.write(tmp_path, AIM) == [tmp_path / "pim_pkg.sv"]
    os.utime(tmp_path / "pim_pkg.sv", (1, 1))
    assert sv_pkg.write(tmp_path, AIM) == []
    assert (tmp_path / "pim_pkg.sv").stat().st_mtime == 1
    assert sv_pkg.write(tmp_path, HBM) == [tmp_path / "pim_pkg.sv"]


def test_preset_and_config_file_options(tmp_path: Path) -> None:
    assert sv_pkg.main(["--out", str(tmp_path / "h"), "--preset", "hbm3-pim"]) == 0
    assert (tmp_path / "h" / "pim_pkg.sv").read_text() == sv_pkg.render_pkg(HBM)
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('preset = "aim-gddr6"\n[timing]\nnRCD_MAC = 60\n')
    assert sv_pkg.main(["--out", str(tmp_path / "c"), "--config", str(cfg_file)]) == 0
    assert params((tmp_path / "c" / "pim_pkg.sv").read_text())["NRcdMac"] == 60
    assert sv_pkg.main(["--check", str(tmp_path / "c"), "--config", str(cfg_file)]) == 0
    assert sv_pkg.main(["--check", str(tmp_path / "c")]) == 1
    assert sv_pkg.main(["--out", str(tmp_path), "--preset", "nope"]) == 2


def test_values_must_fit_an_int() -> None:
    pkg = sv_pkg._Pkg()
    with pytest.raises(sv_pkg.GenError, match="32-bit"):
        pkg.int_param("Huge", 1 << 31)
    pkg.int_param("X", 1)
    with pytest.raises(sv_pkg.GenError, match="twice"):
        pkg.int_param("X", 2)
