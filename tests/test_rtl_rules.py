"""Source rules for rtl/ that no simulator or linter reports.

``$past`` inside a procedural ``for`` loop: Verilator (5.x) samples the loop variable with the
expression, i.e. its value after the previous loop (the bound), not the iteration's. Indexing a
vector of NumCh with it then wraps to element 0 at a power-of-two NumCh (element 0's history is
checked for every element) and is out of range otherwise (the check never runs). pim_top's
a_sched_hold had exactly this (the 16-channel co-simulation stopped on it). Sample the whole
vector into a register outside the loop instead. Generate loops (``genvar``) are fine.
"""

from __future__ import annotations

import re
from pathlib import Path

RTL = Path(__file__).resolve().parents[1] / "rtl"
_TOKEN = re.compile(r"\bfor\s*\(|\bbegin\b|\bend\b|\$past\b|[();]")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def past_in_loops(text: str) -> list[int]:
    """Line numbers of ``$past`` calls inside the body of a procedural ``for`` loop."""
    text = _strip_comments(text)
    hits: list[int] = []
    loops: list[list[int]] = []  # per open loop: [begin depth of its body, or -1 = one statement]
    depth = 0  # begin/end nesting
    header = 0  # paren depth inside a for (...) header; > 0 while in one
    genvar = False
    pending = False  # a header just closed: the body starts at the next token
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if header:
            if tok == "(":
                header += 1
            elif tok == ")":
                header -= 1
                if header == 0:
                    pending = not genvar
            continue
        if tok.startswith("for"):
            header, genvar = 1, text[m.end() : m.end() + 12].lstrip().startswith("genvar")
            continue
        if pending:
            pending = False
            loops.append([depth + 1 if tok == "begin" else -1])
        if tok == "begin":
            depth += 1
        elif tok == "end":
            depth -= 1
            while loops and loops[-1][0] > depth:
                loops.pop()
        elif tok == "$past" and loops:
            hits.append(text.count("\n", 0, m.start()) + 1)
        elif tok == ";":
            while loops and loops[-1][0] == -1:
                loops.pop()
    return hits


def test_no_past_inside_procedural_loops() -> None:
    bad = [
        f"{p.relative_to(RTL)}:{line}"
        for p in sorted(RTL.rglob("*.sv"))
        for line in past_in_loops(p.read_text())
    ]
    assert not bad, f"$past inside a procedural for loop (see this file's docstring): {bad}"


def test_rule_catches_the_old_pim_top_check() -> None:
    """The a_sched_hold form that failed, and the forms that are fine."""
    old = """
      always_ff @(posedge clk_i) begin
        if (past_ok_q) begin
          for (int c = 0; c < NumCh; c++) begin
            if ($past(sched_valid[c] && !sched_ready[c]))  // held?
              a_sched_hold: assert (sched_valid[c] && dpa_out == $past(dpa_out));
            if (!cmd_valid_o[c]) a_cmd_quiet: assert (cmd_data_o[c] == '0);
          end
          if ($past(dpa_ready)) a_done_clear: assert (done_q == '0);
        end
      end"""
    assert past_in_loops(old) == [5, 6]
    one_statement = "for (int i = 0; i < 4; i++) if ($past(v[i])) x = 1;\ny = $past(z);"
    assert past_in_loops(one_statement) == [1]
    fine = """
      for (genvar c = 0; c < N; c++) begin : g
        always_ff @(posedge clk_i) if ($past(v[c])) a: assert (w[c]);
      end
      always_ff @(posedge clk_i) begin
        for (int c = 0; c < N; c++) if (stalled_q[c]) a: assert (v[c]);  // $past(v[c]) no
        if ($past(x)) b: assert (y);
      end"""
    assert past_in_loops(fine) == []
