"""Single-token mutants of a SystemVerilog file (the generator half of ``tools/mutate.py``).

A light tokenizer (comments and strings dropped, ```ifdef PIM_ASSERT`` blocks and declarations
marked off-limits) and five mutation operators:

* ``rel``   a comparison flipped at its boundary (``<`` <-> ``<=``, ``>`` <-> ``>=``) or negated
            (``<`` -> ``>=``, ``==`` <-> ``!=`` ...); a non-blocking ``<=`` is told apart from the
            comparison by its place (first ``<=`` of a statement, outside parentheses);
* ``const`` an integer literal one off (``n`` -> ``n+1``, ``n-1``; ``1'b0`` <-> ``1'b1``);
* ``drop``  one operand of ``&&`` / ``||`` / binary ``+`` dropped with its operator (the right
            one of ``-``), operand extents found by operator precedence;
* ``inv``   a condition inverted: ``if (c)`` -> ``if (!(c))``, or a ``!`` removed;
* ``reset`` a reset value changed (``'0`` <-> ``'1``, a literal one off) inside the
            ``if (!rst_ni)`` branch of a clocked block.

Not mutated: assertion code (```ifdef PIM_ASSERT``), declarations (ports, ``localparam``,
``typedef``, signal declarations, function headers), size casts (``32'(x)``) and anything that
names ``PlantBug`` (the benches' own planted bugs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:\\.|[^"\\])*")
  | (?P<directive>`[A-Za-z_]\w*)
  | (?P<num>(?:\d+)?'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+|'[01xXzZ]\b|\d[\d_]*'(?=\()|\d[\d_]*)
  | (?P<id>[A-Za-z_$][\w$]*(?:::[A-Za-z_]\w*)*)
  | (?P<op><<<|>>>|===|!==|==|!=|<=|>=|&&|\|\||<<|>>|\+:|-:|\+\+|--|::|\*\*|.)
    """,
    re.VERBOSE | re.DOTALL,
)

#: Binding strength of binary operators (higher binds tighter), IEEE 1800 table 11-2.
PREC = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "===": 6,
    "!==": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "<<<": 8,
    ">>>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}
REL_FLIPS = {
    "<": ("<=", ">="),
    "<=": ("<", ">"),
    ">": (">=", "<="),
    ">=": (">", "<"),
    "==": ("!=",),
    "!=": ("==",),
}
#: Tokens that end an operand scan at bracket depth 0 (besides lower-binding operators).
_STOP = {"?", ":", ",", ";", "=", "begin", "end", "assign", "if", "else", "return"}
_DECL = {
    "localparam",
    "parameter",
    "typedef",
    "logic",
    "input",
    "output",
    "inout",
    "wire",
    "reg",
    "bit",
    "int",
    "integer",
    "genvar",
    "function",
    "module",
    "import",
    "endmodule",
    "endfunction",
    "enum",
    "struct",
}
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Mutant:
    """One mutant: ``text[start:end]`` of ``file`` replaced by ``new``."""

    file: str  # repository-relative path
    op: str  # rel / const / drop / inv / reset
    start: int
    end: int
    old: str
    new: str
    line: int  # 1-based line of ``start``
    line_text: str  # that source line, stripped
    col: int = 0  # 1-based column of ``start``

    @property
    def id(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.col}:{self.op}:{' '.join(self.old.split())}->{self.new}"
        )

    def apply(self, text: str) -> str:
        assert text[self.start : self.end] == self.old, f"{self.id}: source changed"
        return text[: self.start] + self.new + text[self.end :]


def tokenize(text: str) -> list[Token]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "op"
        if kind not in ("ws", "comment"):
            out.append(Token(kind, m.group(), m.start(), m.end()))
    return out


def _excluded(toks: list[Token]) -> list[bool]:
    """Tokens never mutated: `ifdef PIM_ASSERT blocks, the module header, declarations, and
    size-cast groups (``(W + 3)'(x)``)."""
    n = len(toks)
    skip = [False] * n
    stack: list[bool] = []  # per open `ifdef: does it exclude?
    for i, t in enumerate(toks):
        if t.text in ("`ifdef", "`ifndef"):
            name = toks[i + 1].text if i + 1 < n else ""
            stack.append(t.text == "`ifdef" and name == "PIM_ASSERT")
        elif t.text == "`endif" and stack:
            stack.pop()
        if any(stack) or t.kind == "directive":
            skip[i] = True
        if t.text == "'" and i > 0 and toks[i - 1].text == ")":
            for k in range(_match(toks, i - 1, -1), i):
                skip[k] = True
    # everything up to the first depth-0 ';' after `module` (parameters and ports)
    head = next((i for i, t in enumerate(toks) if t.text == "module"), n)
    depth = 0
    for k in range(head, n):
        depth += (toks[k].text in _OPEN) - (toks[k].text in _CLOSE)
        if depth == 0 and toks[k].text == ";":
            head = k
            break
    for k in range(min(head + 1, n)):
        skip[k] = True
    # declaration statements (up to their depth-0 ';', 'begin' or 'end')
    i = head + 1
    while i < n:
        j, depth = i, 0
        while j < n:
            tx = toks[j].text
            depth += (tx in _OPEN) - (tx in _CLOSE)
            if depth <= 0 and tx in (";", "begin", "end", "endcase", "else"):
                break
            j += 1
        if toks[i].text in _DECL or _typed_decl(toks, i, j):
            for k in range(i, min(j + 1, n)):
                skip[k] = True
        i = j + 1
    return skip


def _typed_decl(toks: list[Token], i: int, j: int) -> bool:
    """``type_t [..] name ...;`` (a user-typed declaration): an id, brackets, then another id."""
    if toks[i].kind != "id" or toks[i].text in ("assign", "if", "for", "case", "unique"):
        return False
    k = i + 1
    while k < j and toks[k].text == "[":
        depth = 0
        while k < j:
            depth += (toks[k].text == "[") - (toks[k].text == "]")
            k += 1
            if depth == 0:
                break
    return k < j and toks[k].kind == "id"


def _match(toks: list[Token], i: int, step: int) -> int:
    """Index of the bracket matching toks[i] (scanning by step)."""
    depth = 0
    k = i
    while 0 <= k < len(toks):
        tx = toks[k].text
        depth += (tx in _OPEN) - (tx in _CLOSE) if step > 0 else (tx in _CLOSE) - (tx in _OPEN)
        if depth == 0:
            return k
        k += step
    raise ValueError("unbalanced brackets")


def _is_binary(toks: list[Token], i: int) -> bool:
    prev = toks[i - 1] if i > 0 else None
    return prev is not None and (prev.kind in ("id", "num") or prev.text in (")", "]", "}"))


def _operand(toks: list[Token], i: int, step: int, prec: int, nba: set[int]) -> int | None:
    """Last token index of the operand of the binary op at i (right: step 1, left: -1)."""
    k, last = i + step, None
    while 0 <= k < len(toks):
        t = toks[k]
        if (step > 0 and t.text in _OPEN) or (step < 0 and t.text in _CLOSE):
            k = _match(toks, k, step)
            last = k
            k += step
            continue
        if t.text in _OPEN or t.text in _CLOSE or t.text in _STOP or k in nba:
            break
        if t.text in PREC and _is_binary(toks, k):
            if PREC[t.text] < prec or (step > 0 and PREC[t.text] == prec):
                break
        last = k
        k += step
    return last


def _assignments(toks: list[Token]) -> set[int]:
    """Indices of '<=' tokens that are non-blocking assignments, not comparisons."""
    out: set[int] = set()
    depth, assigned, ternary = 0, False, False
    header = False  # inside if (...)/for (...)/@(...)/case (...) header parentheses
    for i, t in enumerate(toks):
        tx = t.text
        if tx in _OPEN:
            depth += 1
            if depth == 1 and i > 0 and toks[i - 1].text in ("if", "for", "@", "case", "while"):
                header = True
        elif tx in _CLOSE:
            depth -= 1
            if depth == 0 and header:
                header, assigned, ternary = False, False, False
        elif depth == 0:
            if tx in (";", "begin", "end", "else", "endcase"):
                assigned, ternary = False, False
            elif tx == "?":
                ternary = True
            elif tx == ":" and not ternary:
                assigned = False
            elif tx == "=":
                assigned = True
            elif tx == "<=":
                if not assigned:
                    out.add(i)
                assigned = True
    return out


def _reset_ranges(toks: list[Token]) -> list[tuple[int, int]]:
    """Token index ranges of ``if (!rst_ni) begin ... end`` (or a single statement)."""
    out = []
    for i in range(len(toks) - 4):
        if [t.text for t in toks[i : i + 4]] == ["if", "(", "!", "rst_ni"]:
            k = _match(toks, i + 1, 1) + 1
            if k < len(toks) and toks[k].text == "begin":
                depth, e = 0, k
                while e < len(toks):
                    depth += (toks[e].text == "begin") - (toks[e].text == "end")
                    if depth == 0:
                        break
                    e += 1
                out.append((k, e))
            else:
                e = k
                while e < len(toks) and toks[e].text != ";":
                    e += 1
                out.append((k, e))
    return out


def _literal_variants(tx: str) -> list[str]:
    m = re.fullmatch(r"(\d+)'([bdh])([0-9a-fA-F_]+)", tx)
    if m:
        width, base = int(m.group(1)), m.group(2)
        val = int(m.group(3).replace("_", ""), {"b": 2, "d": 10, "h": 16}[base])
        fmt = {"b": "b", "d": "d", "h": "x"}[base]
        return [
            f"{width}'{base}{format(v, fmt)}" for v in (val + 1, val - 1) if 0 <= v < (1 << width)
        ]
    if re.fullmatch(r"\d[\d_]*", tx):
        val = int(tx.replace("_", ""))
        return [str(v) for v in (val + 1, val - 1) if v >= 0]
    return []


def mutants(text: str, file: str) -> list[Mutant]:
    """Every mutant of one file, in source order."""
    toks = tokenize(text)
    skip = _excluded(toks)
    nba = _assignments(toks)
    resets = _reset_ranges(toks)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    out: list[Mutant] = []

    def line_of(pos: int) -> int:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def add(op: str, a: int, b: int, new: str) -> None:
        """Replace tokens a..b (inclusive) by ``new``."""
        if any(skip[k] for k in range(a, b + 1)):
            return
        near = range(a, b + 1) if op == "drop" else range(max(a - 2, 0), min(b + 3, len(toks)))
        if any(toks[k].text == "PlantBug" for k in near):
            return
        start, end = toks[a].start, toks[b].end
        ln = line_of(start)
        end_line = text.find("\n", start)
        line_text = text[line_starts[ln - 1] : end_line if end_line >= 0 else len(text)]
        out.append(
            Mutant(
                file,
                op,
                start,
                end,
                text[start:end],
                new,
                ln,
                line_text.strip(),
                start - line_starts[ln - 1] + 1,
            )
        )

    def in_reset(i: int) -> bool:
        return any(a <= i <= b for a, b in resets)

    for i, t in enumerate(toks):
        tx = t.text
        if tx in REL_FLIPS and _is_binary(toks, i) and i not in nba:
            for new in REL_FLIPS[tx]:
                add("rel", i, i, new)
        elif t.kind == "num" and not tx.endswith("'"):
            op = "reset" if in_reset(i) else "const"
            variants = _literal_variants(tx)
            if tx in ("'0", "'1") and op == "reset":
                variants = ["'1" if tx == "'0" else "'0"]
            for new in variants:
                add(op, i, i, new)
        elif tx in ("&&", "||", "+", "-") and _is_binary(toks, i):
            prec = PREC[tx]
            right = _operand(toks, i, 1, prec, nba)
            left = _operand(toks, i, -1, prec, nba)
            if right is not None:
                add("drop", i, right, "")
            if left is not None and tx != "-":
                add("drop", left, i, "")
        elif tx == "if" and i + 1 < len(toks) and toks[i + 1].text == "(":
            close = _match(toks, i + 1, 1)
            single_not = close == i + 4 and toks[i + 2].text == "!"  # the '!' removal covers it
            if close > i + 2 and not single_not:
                inner = text[toks[i + 2].start : toks[close - 1].end]
                add("inv", i + 2, close - 1, f"!({inner})")
        elif tx == "!" and i + 1 < len(toks):
            add("inv", i, i, "")
    # a dropped operand must leave a non-empty expression; drop the span's stray spaces
    return [_tidy(text, m) for m in out]


def _tidy(text: str, m: Mutant) -> Mutant:
    if m.op != "drop":
        return m
    start, end = m.start, m.end
    while end < len(text) and text[end] == " " and start > 0 and text[start - 1] in " (":
        end += 1
    return Mutant(
        m.file,
        m.op,
        start,
        end,
        text[start:end],
        m.new,
        m.line,
        m.line_text,
        m.col - (m.start - start),
    )
