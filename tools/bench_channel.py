"""Golden-channel speed on the 4096-row full-row MAC stream (``make bench``).

The stream is the one ``pimphony trace replay`` runs for aim_trace's ``mac-stream-4096`` example:
per row ``ACT16``, 64 ``MAC16`` (columns 0..63, GB entry = column, accumulator 0) and ``PREA``
before the next row, one final ``RDMAC``; the in-order issuer (AiM controller policy) adds the
REFs. It runs four ways in one process: the fast path (``Channel(cfg)``) and the reference path
(``Channel(cfg, checked=True)``: every check re-run rule by rule at probe and at issue, each MAC16
applied as it issues), each timing-only (``data=False``) and with bf16 data (random rows and
GB). Both paths must end at the same cycle with the same REFs and read the same data, or the bench
fails (``tests/test_channel_fast.py`` compares them command by command). Rates are stream commands per CPU second of this process (the REFs and their
PREA/ACT16 are issued but not counted); wall seconds are listed too.

``--aim-sim BINARY`` also runs the C++ AiM simulator (arkhadem/aim_simulator, Ramulator 2) on the
same stream as an ISR trace and reports its rate over the same command count (its CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymodel.config import PimConfig, resolve  # noqa: E402
from pymodel.isa import Command, Op  # noqa: E402

try:
    from pymodel.golden.bf16 import random_bf16
    from pymodel.golden.channel import Channel
    from pymodel.golden.inorder import InOrderIssuer
    from pymodel.studies.aim_trace import mac_stream
except ImportError:  # --child on a tree from before pymodel's regrouping by role
    from pymodel.aim_trace import mac_stream  # type: ignore[no-redef]
    from pymodel.bf16 import random_bf16  # type: ignore[no-redef]
    from pymodel.channel import Channel  # type: ignore[no-redef]
    from pymodel.inorder import InOrderIssuer  # type: ignore[no-redef]


def stream(rows: int, cols: int) -> list[Command]:
    cmds: list[Command] = []
    for r in range(rows):
        if r:
            cmds.append(Command(Op.PREA))
        cmds.append(Command(Op.ACT16, row=r))
        cmds += [Command(Op.MAC16, col=c, gb=c, out=0) for c in range(cols)]
    return cmds + [Command(Op.RDMAC, out=0)]


def gb_writes(cfg: PimConfig, rng: np.random.Generator, cols: int) -> list[Command]:
    lanes = random_bf16(rng, (cols, cfg.geometry.lanes))
    return [Command(Op.WRGB, gb=c, data=tuple(int(v) for v in lanes[c])) for c in range(cols)]


def run(cfg: PimConfig, cmds: list[Command], checked: bool, data: dict[int, Any] | None) -> dict:
    ch = Channel(cfg, checked=checked, data=data is not None)
    for row, values in (data or {}).items():
        ch.load_row(row, values)
    cpu, wall = time.process_time(), time.perf_counter()
    reads = InOrderIssuer(ch).run(cmds)  # no observer: the channel and the issuer alone
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "commands": len(cmds),
        "refs": ch.refs_issued,
        "cycles": ch.last_cycle + 1,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "commands_per_s": round(len(cmds) / cpu),
        "_reads": [r.tolist() for r in reads],
    }


def aim_sim(binary: Path, config: Path, rows: int, commands: int) -> dict[str, Any]:
    """The C++ peer on the same stream (``AiM MAC_ABK 64`` per row on channel 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "mac-stream.trace"
        trace.write_text(mac_stream(rows))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        proc = subprocess.run(
            [str(binary), "-f", str(config), "-t", str(trace)],
            capture_output=True, text=True, cwd=tmp, check=False,
        )
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"bench_channel: {binary} failed ({proc.returncode}): {proc.stderr[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "binary": str(binary), "config": str(config), "commands": commands,
        "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "commands_per_s": round(commands / cpu),
        "stdout_tail": proc.stdout.strip().splitlines()[-12:],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/channel-bench.json")
    ap.add_argument("--rows", type=int, default=4096, help="rows in the stream (default 4096)")
    ap.add_argument("--config", default="aim-gddr6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aim-sim", type=Path, help="the C++ AiM simulator binary (ramulator2)")
    ap.add_argument("--aim-config", type=Path, help="its YAML config (test/example.yaml)")
    args = ap.parse_args()
    cfg = resolve(args.config)
    cols = cfg.geometry.columns_per_row
    rng = np.random.default_rng(args.seed)
    base = stream(args.rows, cols)
    g = cfg.geometry
    rows_data = {
        r: random_bf16(rng, (g.banks, g.columns_per_row, g.lanes)) for r in range(args.rows)
    }
    with_data = gb_writes(cfg, rng, cols) + base
    runs: dict[str, dict[str, Any]] = {}
    for checked in (False, True):
        path = "reference" if checked else "fast"
        print(f"bench_channel: {path} path, timing only ...", flush=True)
        runs[f"{path}_timing"] = run(cfg, base, checked, None)
        print(f"bench_channel: {path} path, bf16 data ...", flush=True)
        runs[f"{path}_data"] = run(cfg, with_data, checked, rows_data)
    for kind in ("timing", "data"):
        fast, ref = runs[f"fast_{kind}"], runs[f"reference_{kind}"]
        if any(fast[k] != ref[k] for k in ("cycles", "refs", "_reads")):
            print(f"bench_channel: fast and reference paths differ ({kind})", file=sys.stderr)
            return 1
    result: dict[str, Any] = {
        "config": cfg.name,
        "rows": args.rows,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "runs": {k: {f: v for f, v in r.items() if not f.startswith("_")} for k, r in runs.items()},
    }
    for kind in ("timing", "data"):
        result[f"speedup_{kind}"] = round(
            runs[f"fast_{kind}"]["commands_per_s"] / runs[f"reference_{kind}"]["commands_per_s"], 2
        )
    if args.aim_sim:
        if not args.aim_config:
            ap.error("--aim-sim needs --aim-config")
        result["aim_sim"] = aim_sim(args.aim_sim, args.aim_config, args.rows, len(base))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("| path | data | commands | CPU s | wall s | commands/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in result["runs"].items():
        path, kind = name.split("_")
        print(
            f"| {path} | {'bf16' if kind == 'data' else 'timing only'} | {r['commands']:,} | "
            f"{r['cpu_s']:.2f} | {r['wall_s']:.2f} | {r['commands_per_s']:,} |"
        )
    print(f"speedup: timing only {result['speedup_timing']}x, bf16 data {result['speedup_data']}x")
    if "aim_sim" in result:
        print(f"C++ AiM simulator: {result['aim_sim']['commands_per_s']:,} commands/s")
    print(f"bench_channel: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
