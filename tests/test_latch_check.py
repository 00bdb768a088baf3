"""tools/latch_check.py: finds a planted latch, passes a clean cell (small scratch trees; the
whole rtl/ runs in `.ci/run`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import latch_check  # noqa: E402

LATCH = """`default_nettype none
module planted_latch (input logic en_i, input logic d_i, output logic q_o);
  always_comb begin
    if (en_i) q_o = d_i;  // no else: q_o keeps its value, a latch
  end
endmodule
"""


def tree(tmp_path: Path, *extra: tuple[str, str]) -> Path:
    root = tmp_path / "repo"
    (root / "rtl" / "common").mkdir(parents=True)
    shutil.copytree(ROOT / "rtl" / "pkg", root / "rtl" / "pkg")
    shutil.copy2(ROOT / "rtl" / "common" / "since_counter.sv", root / "rtl" / "common")
    for name, text in extra:
        (root / "rtl" / "common" / name).write_text(text)
    return root


@pytest.mark.slow
def test_clean_cell_passes(tmp_path: Path) -> None:
    ok, msg = latch_check.check(tree(tmp_path))
    assert ok, msg


@pytest.mark.slow
def test_planted_latch_is_found(tmp_path: Path) -> None:
    ok, msg = latch_check.check(tree(tmp_path, ("planted_latch.sv", LATCH)))
    assert not ok and "planted_latch" in msg, msg
