"""tools/synth.py report parsing (no yosys run): logic cells exclude black-box memories and
$scopeinfo, flip-flops are the DFF cells, macro bits come from the black boxes' Depth x Width."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "synth_tool", Path(__file__).resolve().parents[1] / "tools" / "synth.py"
)
assert _SPEC and _SPEC.loader
synth = importlib.util.module_from_spec(_SPEC)
sys.modules["synth_tool"] = synth
_SPEC.loader.exec_module(synth)

STAT = """
5. Printing statistics.

=== top ===

    1200 wires
      40 cells
      10   $_AND_
       7   $_DFFE_PN0P_
       3   $_DFF_PN0_
      12   $_NAND_
       6   $scopeinfo
       2   dpa_ram

Warnings: none
"""


def test_stat_excludes_black_boxes_and_scopeinfo() -> None:
    cells, flops, boxes = synth._parse_stat(STAT, ["dpa_ram"])
    assert (cells, flops, boxes) == (32, 10, {"dpa_ram": 2})


def _json(tmp_path: Path, params: dict[str, str]) -> Path:
    p = tmp_path / "bb.json"
    cells = {
        "u_a": {"type": "dpa_ram", "parameters": params},
        "u_b": {"type": "other", "parameters": {}},
    }
    p.write_text(json.dumps({"modules": {"top": {"cells": cells}}}))
    return p


def test_ram_bits_from_parameters(tmp_path: Path) -> None:
    rams = synth._parse_rams(
        _json(tmp_path, {"Depth": f"{1024:032b}", "Width": "1001"}), ["dpa_ram"]
    )
    assert [(r.instance, r.depth, r.width, r.bits) for r in rams] == [("u_a", 1024, 9, 9216)]


def test_black_box_without_depth_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Depth/Width"):
        synth._parse_rams(_json(tmp_path, {"Width": "1001"}), ["dpa_ram"])
