"""The docs (docs/*.md, README.md) name only things that exist, and nothing outside the repository.

Checked in every doc: relative links resolve to a file in the repository; repository paths
(``rtl/...``, ``pymodel/...``, ``tb/...`` ...; ``<placeholders>`` and ``*`` match as globs) exist;
dotted names ``pymodel.x.y`` / ``scoreboards.x`` resolve to a module and its attributes. Checked in
every tracked text file: no reference to files that live outside a clone (the design inputs the
project started from, absolute machine paths). Fenced blocks of docs/extending.md marked ``run``
are skipped here: they create the files they name (tests/test_extending.py runs them).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
TOP_DIRS = ("rtl", "pymodel", "tb", "tests", "tools", "scoreboards", "docs", "formal", ".ci")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(re.escape(d) for d in TOP_DIRS)})/[\w./*<>-]*)")
DOTTED = re.compile(r"(?<![\w./-])((?:pymodel|scoreboards)(?:\.\w+)+)")
# Files outside a clone: the brief's design inputs and absolute paths of one machine.
OUTSIDE = re.compile(
    r"\.\./shared|(?<![\w.])/(?:work|shared)/|\b(?:DESIGN|STYLE|TOOLCHAIN|PAPER_NOTES)\.md\b"
)
RUN_BLOCK = re.compile(r"^```[^\n]*\brun\b[^\n]*\n.*?^```$", re.M | re.S)


def _exists(rel: str) -> bool:
    rel = rel.rstrip(".,:;")
    if "<" in rel or "*" in rel:
        pattern = re.sub(r"<[^>]*>", "*", rel).rstrip("/")
        return any(ROOT.glob(pattern))
    return (ROOT / rel).exists()


def _resolves(name: str) -> bool:
    parts = name.rstrip(".").split(".")
    for cut in range(len(parts), 0, -1):
        mod = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(mod) is None:
                continue
        except ModuleNotFoundError:
            continue
        obj: object = importlib.import_module(mod)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                try:  # a submodule not imported by its package
                    obj = importlib.import_module(f"{mod}.{attr}")
                except ModuleNotFoundError:
                    return False
            else:
                obj = getattr(obj, attr)
            mod = f"{mod}.{attr}"
        return True
    return False


def problems(text: str, doc: Path) -> list[str]:
    """Every stale link, path or dotted name of one doc, and every reference outside the repo."""
    out = [
        f"{doc.name}: reference outside the repository: {m.group(0)!r}"
        for m in OUTSIDE.finditer(text)
    ]
    text = RUN_BLOCK.sub("", text)
    for m in LINK.finditer(text):
        target = m.group(1).split("#", 1)[0]
        if not target or re.match(r"[a-z]+:", target):  # in-page anchor, http(s), mailto
            continue
        path = (doc.parent / target).resolve()
        if not path.is_relative_to(ROOT):
            out.append(f"{doc.name}: link leaves the repository: {m.group(1)}")
        elif not path.exists():
            out.append(f"{doc.name}: broken link: {m.group(1)}")
    for m in PATH.finditer(text):
        if not _exists(m.group(1)):
            out.append(f"{doc.name}: path does not exist: {m.group(1)}")
    for m in DOTTED.finditer(text):
        if not _resolves(m.group(1)):
            out.append(f"{doc.name}: no such module or attribute: {m.group(1)}")
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_names_only_what_exists(doc: Path) -> None:
    assert problems(doc.read_text(encoding="utf-8"), doc) == []


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    out = []
    for n in names:
        p = ROOT / n
        if n.startswith("tests/data/") or p == Path(__file__) or not p.is_file():
            continue
        try:
            p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        out.append(p)
    return out


def test_no_file_refers_outside_the_repository() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for p in tracked_text_files()
        for text in [p.read_text(encoding="utf-8")]
        for m in OUTSIDE.finditer(text)
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("planted", "expect"),
    [
        ("see `pymodel/sched.py`", "path does not exist: pymodel/sched.py"),
        ("the bench `tb/<dut>/env_<dut>.py`", "path does not exist: tb/<dut>/env_<dut>.py"),
        ("a cell in rtl/common/sync_fifo.sv.", "path does not exist: rtl/common/sync_fifo.sv"),
        ("[timing](timings.md)", "broken link: timings.md"),
        ("[brief](../../shared/DESIGN.md)", "link leaves the repository"),
        ("`../shared/STYLE.md`", "reference outside the repository"),
        ("in /work/main/build", "reference outside the repository"),
        ("`pymodel.gen_sv.render_pkg`", "no such module or attribute: pymodel.gen_sv.render_pkg"),
        ("`pymodel.golden.sched.Schedular`", "no such module or attribute"),
    ],
)
def test_a_stale_reference_is_caught(planted: str, expect: str) -> None:
    """Each kind of stale reference, planted in a copy of a real doc, is reported."""
    doc = ROOT / "docs" / "index.md"
    found = problems(doc.read_text(encoding="utf-8") + "\n" + planted + "\n", doc)
    assert any(expect in f for f in found), found


def test_real_references_pass() -> None:
    """The checker is not vacuous the other way: existing names of each kind are accepted."""
    doc = ROOT / "docs" / "index.md"
    ok = "`pymodel/golden/sched.py`, `tb/<dut>/test_<dut>.py`, [t](timing.md), `pymodel.isa.CmdErr`"
    assert problems(ok, doc) == []
