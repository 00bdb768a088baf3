"""tools/mutate.py on a toy: mutants generated right, files restored, outcomes classified."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import mutate
from mutate_gen import mutants

TOY = """\
module toy (
  input  logic clk_i,
  input  logic rst_ni,
  input  logic a,
  input  logic b,
  output logic y,
  output logic z
);
  logic q;
  assign y = a && b;
  assign z = a || b;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) q <= 1'b0;
    else q <= a;
  end
`ifdef PIM_ASSERT
  always_ff @(posedge clk_i) a_q: assert (q < 2);
`endif
endmodule
"""

# The toy "bench": kills every change of y's line, hangs when z loses its left operand, and
# cannot see anything else.
CHECK = """\
import pathlib, sys, time
text = pathlib.Path("rtl/toy.sv").read_text()
if "assign z = b;" in text:
    time.sleep(60)
sys.exit(0 if "assign y = a && b;" in text else 1)
"""


def test_generator_operators() -> None:
    got = {(m.op, " ".join(m.old.split()), m.new) for m in mutants(TOY, "rtl/toy.sv")}
    assert ("drop", "&& b", "") in got and ("drop", "a &&", "") in got
    assert ("drop", "|| b", "") in got and ("drop", "a ||", "") in got
    assert ("reset", "1'b0", "1'b1") in got
    assert ("inv", "!", "") in got  # the reset condition
    # nothing from the header, the assertion block, or the non-blocking assignments
    assert not any(m.op == "rel" for m in mutants(TOY, "rtl/toy.sv"))
    rel = mutants(
        "module m (input logic a, b, output logic y);\n  assign y = a < b;\nendmodule\n", "m.sv"
    )
    assert sorted(m.new for m in rel if m.op == "rel") == ["<=", ">="]
    m = next(m for m in mutants(TOY, "rtl/toy.sv") if m.old.strip() == "a ||")
    assert "assign z = b;" in m.apply(TOY)


def _toy_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "rtl").mkdir(parents=True)
    (root / "tb").mkdir()
    (root / "rtl" / "toy.sv").write_text(TOY)
    (root / "tb" / "check.py").write_text(CHECK)
    return root


def _config(equivalent: list[mutate.Pattern]) -> mutate.Config:
    return mutate.Config(
        {"rtl/toy.sv": ["tb/check.py"]}, [sys.executable], [], equivalent, lint=False
    )


def _mutate_all(
    root: Path, out: Path, equivalent: list[mutate.Pattern], seed: int, **kw: int
) -> mutate.Run:
    """Every mutant of the toy design, with the budget and timeout the toy tests share."""
    n = len(mutants(TOY, "rtl/toy.sv"))
    return mutate.mutate(
        _config(equivalent),
        root,
        out,
        sample=n,
        seed=seed,
        budget_s=300,
        timeout=3.0,
        progress=lambda s: None,
        **kw,
    )


@pytest.mark.parametrize("jobs", [1, 2])
def test_outcomes_and_restore(jobs: int, tmp_path: Path) -> None:
    root = _toy_root(tmp_path)
    eq = mutate.Pattern("rtl/toy.sv", "assign z", "|| b", "", reason="z is never observed")
    n = len(mutants(TOY, "rtl/toy.sv"))
    run = _mutate_all(root, tmp_path / "out", [eq], seed=3, jobs=jobs)
    by = {(r.line_text, r.old.strip(), r.new): r.outcome for r in run.results}
    assert all(o == "killed" for (line, _, _), o in by.items() if line.startswith("assign y"))
    assert by[("assign z = a || b;", "a ||", "")] == "timeout"
    assert by[("assign z = a || b;", "|| b", "")] == "equivalent"
    assert "survived" in by.values()  # the reset value: the toy bench cannot see it
    assert not run.stopped and len(run.results) == n
    assert [r.index for r in run.results] == list(range(n))
    c = run.counts()
    assert run.score() == c["killed"] / (c["killed"] + c["survived"] + c["timeout"])
    assert (root / "rtl" / "toy.sv").read_text() == TOY  # the checkout is never written
    mutate.write_reports(run, tmp_path / "out", tmp_path / "doc.md")
    assert "mutation-results:begin" in (tmp_path / "doc.md").read_text()
    again = mutate.load_report(tmp_path / "out" / "report.json")  # make mutate --from-json
    assert mutate.summary_md(again) == mutate.summary_md(run)


def test_file_restored_on_interrupt(tmp_path: Path) -> None:
    root = _toy_root(tmp_path)
    tree = mutate.make_tree(root, tmp_path / "tree")

    def interrupt(tree: Path, file: str) -> bool:
        assert (tree / file).read_text() != TOY  # the mutant is in place
        raise KeyboardInterrupt

    mut = mutate.Mutator(_config([]), tree, tmp_path / "out", timeout=3.0, lint=interrupt)
    with pytest.raises(KeyboardInterrupt):
        mut.run_one(mutants(TOY, "rtl/toy.sv")[0], 0)
    assert (tree / "rtl" / "toy.sv").read_text() == TOY


def test_bad_input_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutate.main(["--only", "rtl/nope.sv", "--list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pimphony: error: --only rtl/nope.sv")


def test_rerun_after_a_new_test(tmp_path: Path) -> None:
    """--rerun: the survivors run again against a stronger bench and keep their first outcome."""
    root = _toy_root(tmp_path)
    first = _mutate_all(root, tmp_path / "out", [], seed=1)
    survivors = {r.id for r in first.results if r.outcome == "survived"}
    assert survivors
    # the "new test": the toy bench now also checks z's line and the reset value
    (root / "tb" / "check.py").write_text(
        CHECK.replace(
            'sys.exit(0 if "assign y = a && b;" in text else 1)',
            'ok = all(s in text for s in ("assign y = a && b;", "assign z = a || b;",'
            ' "q <= 1\'b0"))\n'
            "sys.exit(0 if ok else 1)",
        )
    )
    merged = mutate.rerun(
        _config([]),
        root,
        tmp_path / "out2",
        first,
        budget_s=300,
        timeout=3.0,
        progress=lambda s: None,
    )
    again = {r.id: r for r in merged.results if r.first}
    hung = {r.id for r in first.results if r.outcome == "timeout"}
    assert set(again) == survivors | hung
    assert all(again[i].first == "survived" for i in survivors)
    z_drop = next(i for i in survivors if "assign z" in again[i].line_text)
    assert again[z_drop].outcome == "killed"  # the new check sees z
    # (the reset polarity inverted still survives: the toy bench never resets)
    assert len(merged.results) == len(first.results)
    assert "First pass" in mutate.summary_md(merged)


def test_harness_error_is_not_a_kill(tmp_path: Path) -> None:
    """A bench that does not run (pytest exit code 4/5: usage error, nothing collected) stops
    the run with an error instead of counting the mutant as killed."""
    root = _toy_root(tmp_path)
    (root / "tb" / "check.py").write_text(
        "import pathlib, sys\n"
        'sys.exit(0 if "a && b" in pathlib.Path("rtl/toy.sv").read_text() else 4)\n'
    )
    m = next(m for m in mutants(TOY, "rtl/toy.sv") if m.old.strip() == "&& b")
    with pytest.raises(RuntimeError, match="did not run"):
        mutate.mutate(
            _config([]),
            root,
            tmp_path / "out",
            sample=0,
            seed=1,
            budget_s=60,
            timeout=3.0,
            exactly=[m],
            progress=lambda s: None,
        )


def test_equivalents_applied_to_a_saved_run(tmp_path: Path) -> None:
    """--from-json: a survivor the reviewed list now names becomes equivalent (first: survived)."""
    root = _toy_root(tmp_path)
    run = _mutate_all(root, tmp_path / "out", [], seed=1)
    target = next(r for r in run.results if r.outcome == "survived")
    eq = mutate.Pattern(target.file, target.line_text, target.old, target.new, reason="toy")
    mutate.apply_equivalents(run, _config([eq]))
    assert (target.outcome, target.first, target.reason) == ("equivalent", "survived", "toy")
