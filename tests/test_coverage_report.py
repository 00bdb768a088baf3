"""tools/coverage.py: an unhit bin shows in the report, runs merge, coverage.dat parses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from cocotb_coverage.coverage import CoverPoint, coverage_db

# tools/coverage.py by path (the name `coverage` may be coverage.py's)
_spec = importlib.util.spec_from_file_location(
    "pimphony_tools_coverage", Path(__file__).resolve().parents[1] / "tools" / "coverage.py"
)
assert _spec is not None and _spec.loader is not None
cov = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cov  # (dataclasses look their module up)
_spec.loader.exec_module(cov)


@CoverPoint("report_test.kind", xf=lambda k: k, bins=["hit", "hit later", "never hit"])
def _sample(kind: str) -> None:
    """(the coverpoint under test)"""


def _yaml(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    coverage_db.export_to_yaml(filename=str(path))
    return path


def _row(rows: list, name: str) -> tuple:
    return next(r for r in rows if r[0] == name)


def test_unhit_bin_is_reported_and_runs_merge(tmp_path: Path) -> None:
    _sample("hit")
    first = _yaml(tmp_path, "run1.yml")
    _sample("hit later")
    second = _yaml(tmp_path, "run2.yml")
    name, pct, holes, bins = _row(cov.functional([first]), "report_test.kind")
    assert holes == ["hit later", "never hit"] and bins == 3 and round(pct, 1) == 33.3
    name, pct, holes, bins = _row(cov.functional([first, second]), "report_test.kind")
    assert holes == ["never hit"] and round(pct, 1) == 66.7
    bench = cov.BenchResult("t", "Test", ["intro"], [], [first, second], [], ["- none"])
    text = "\n".join(cov.bench_markdown(bench))
    assert "| `report_test.kind` | 66.7% | never hit |" in text


def test_dat_points_merge_across_runs(tmp_path: Path) -> None:
    src = tmp_path / "m.sv"
    src.write_text("module m;\n  assign a = b;\n  assign c = d;\nendmodule\n")

    def line(n: int, count: int) -> str:
        return f"C '\x01f\x02{src}\x01l\x02{n}\x01page\x02v_line/m\x01o\x02block' {count}"

    run1 = cov.parse_dat("\n".join([line(2, 5), line(3, 0)]))
    run2 = cov.parse_dat("\n".join([line(2, 0), line(3, 0)]))
    assert cov.summarize(run1 + run2)[("m.sv", "line")] == (1, 2)
    assert cov.uncovered_lines(run1 + run2, src) == [(3, "assign c = d;")]
