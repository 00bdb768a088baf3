"""docs/extending.md runs as written: each section's ``run`` blocks, in order, in a scratch copy.

Block kinds (the info string after the fence): ``diff run`` is applied with ``git apply``;
``<lang> file=PATH run`` writes PATH; ``sh run`` runs under ``bash -euo pipefail``; ``python run``
runs as a script. Everything runs from the copy's root with the copy's code first on
``PYTHONPATH`` and the venv's tools on ``PATH``, so the repository itself is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    kind: str  # diff, file, sh, python
    body: str
    path: str = ""


def sections(text: str) -> dict[str, list[Block]]:
    """``## `` heading -> its runnable blocks, in order."""
    out: dict[str, list[Block]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title = part.splitlines()[0].strip()
        blocks = []
        for m in FENCE.finditer(part):
            words = m.group("info").split()
            if "run" not in words:
                continue
            file = next((w.split("=", 1)[1] for w in words if w.startswith("file=")), "")
            kind = "file" if file else words[0]
            assert kind in ("diff", "file", "sh", "python"), f"{title}: unknown block {words}"
            blocks.append(Block(kind, m.group("body"), file))
        out[title] = blocks
    return out


SECTIONS = sections(DOC.read_text(encoding="utf-8"))


def scratch_copy(dest: Path) -> Path:
    """The tracked files of the working tree (uncommitted edits included) under ``dest``."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "build").mkdir(exist_ok=True)
    return dest


def run_block(block: Block, where: Path, env: dict[str, str], title: str, i: int) -> None:
    if block.kind == "file":
        (where / block.path).parent.mkdir(parents=True, exist_ok=True)
        (where / block.path).write_text(block.body, encoding="utf-8")
        return
    if block.kind == "diff":
        cmd = ["git", "apply", "--recount", "-"]
    elif block.kind == "sh":
        cmd = ["bash", "-euo", "pipefail", "-c", block.body]
    else:
        cmd = [sys.executable, "-c", block.body]
    r = subprocess.run(
        cmd,
        cwd=where,
        env=env,
        input=block.body if block.kind == "diff" else None,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, (
        f"docs/extending.md, '{title}', block {i} ({block.kind}) failed (exit {r.returncode}):\n"
        f"{block.body}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
    )


def test_every_section_has_runnable_blocks() -> None:
    assert len(SECTIONS) >= 6 and all(SECTIONS.values()), {k: len(v) for k, v in SECTIONS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("title", list(SECTIONS), ids=lambda t: t.split(".")[0])
def test_example_runs_as_written(title: str, tmp_path: Path) -> None:
    if "RTL block" in title and shutil.which("g++") is None:
        pytest.skip("the RTL example builds a Verilator model (needs g++)")
    where = scratch_copy(tmp_path / "repo")
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(
        [str(venv_bin), str(venv_bin.parent / "verilator-bin"), env.get("PATH", "")]
    )
    env["PYTHONPATH"] = str(where)
    env.setdefault("CCACHE_DIR", str(ROOT / ".ccache"))
    env.pop("PYTEST_CURRENT_TEST", None)
    for i, block in enumerate(SECTIONS[title], 1):
        run_block(block, where, env, title, i)


def test_a_stale_example_fails(tmp_path: Path) -> None:
    """A diff that no longer matches the code, and a failing command, both fail the run."""
    where = tmp_path / "repo"  # the one file the planted diff targets is enough
    (where / "pymodel").mkdir(parents=True)
    shutil.copy2(ROOT / "pymodel" / "config.py", where / "pymodel" / "config.py")
    stale = Block(
        "diff",
        "--- a/pymodel/config.py\n+++ b/pymodel/config.py\n@@ -1,2 +1,2 @@\n"
        "-no such line\n+x\n context\n",
    )
    env = dict(os.environ, PYTHONPATH=str(where))
    with pytest.raises(AssertionError, match="block 1 \\(diff\\) failed"):
        run_block(stale, where, env, "planted", 1)
    with pytest.raises(AssertionError, match="block 2 \\(sh\\) failed"):
        run_block(
            Block("sh", "grep -x 'obuf_entries = 99' pymodel/config.py\n"), where, env, "planted", 2
        )
