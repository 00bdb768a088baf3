"""Golden-channel speed on the 4096-row full-row MAC stream (``make bench``).

The stream is the one ``pimphony trace replay`` runs for aim_trace's ``mac-stream-4096`` example:
per row ``ACT16``, 64 ``MAC16`` (columns 0..63, GB entry = column, accumulator 0) and ``PREA``
before the next row, one final ``RDMAC``; the in-order issuer (AiM controller policy) adds the
REFs. With bf16 data, 64 ``WRGB`` come first and every row holds random bf16 values.

In one process: the fast path (``Channel(cfg)``) and the reference path (``Channel(cfg,
checked=True)``: every check re-run rule by rule at probe and at issue, each MAC16 applied as it
issues), each timing-only (``data=False``) and with bf16 data. Both paths must end at the same
cycle with the same REFs and read the same data, or the bench fails (``tests/test_channel_fast.py``
compares them command by command). ``--previous REV`` also runs the same streams on the channel of
commit REV (the code before the fast path, which always models data), in a child process;
``--also REV`` (repeatable) does the same for any other commit, such as the fast path before a
change to it (rows ``at-REV``; a tree whose channel takes ``data=`` runs timing only for real).
Rates are stream commands per CPU second (the REFs and the PREA/ACT16 around them are issued but
not counted); wall seconds are listed too (the machine may be shared).

``--peer PATH`` also times the C++ peer, the AiM simulator (arkhadem/aim_simulator on Ramulator 2;
PATH is its ``ramulator2`` binary; ``--peer-config`` its YAML, by default the repository's
``test/example.yaml`` beside PATH or one level up, as from CMake's build directory) on the same
stream as an ISR trace (``AiM MAC_ABK 64`` per row), rated over the same command count by its CPU
seconds, and once more without its start-up (a one-row trace's CPU seconds subtracted); its own
cycle count is kept for comparison. A PATH that does not exist is skipped with a note.
"""

from __future__ import annotations

import argparse
import inspect
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
sys.path.insert(0, os.environ.get("BENCH_PYMODEL_ROOT", str(ROOT)))  # --child: another tree

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


def timed(ch: Any, cmds: list[Command]) -> dict[str, Any]:
    """Run ``cmds`` in order on ``ch`` (no observer: the channel and the issuer alone)."""
    cpu, wall = time.process_time(), time.perf_counter()
    reads = InOrderIssuer(ch).run(cmds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "commands": len(cmds),
        "refs": ch.refs_issued,
        "cycles": ch.last_cycle + 1,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "commands_per_s": round(len(cmds) / cpu),
        "reads": [r.tolist() for r in reads if r is not None],
    }


def workload(cfg: PimConfig, rows: int, seed: int) -> tuple[list[Command], list[Command], dict]:
    """The timing stream, the stream with GB writes, and the rows' bf16 data."""
    rng = np.random.default_rng(seed)
    g = cfg.geometry
    base = stream(rows, g.columns_per_row)
    data = {r: random_bf16(rng, (g.banks, g.columns_per_row, g.lanes)) for r in range(rows)}
    return base, gb_writes(cfg, rng, g.columns_per_row) + base, data


def run(cfg: PimConfig, cmds: list[Command], checked: bool, data: dict[int, Any] | None) -> dict:
    ch = Channel(cfg, checked=checked, data=data is not None)
    for row, values in (data or {}).items():
        ch.load_row(row, values)
    return timed(ch, cmds)


def previous(rev: str, args: argparse.Namespace) -> dict[str, Any]:
    """The same two streams on commit ``rev``'s channel (its own tree, a child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "pymodel"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=tree, check=True)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--rows",
                str(args.rows),
                "--config",
                args.config,
                "--seed",
                str(args.seed),
            ],
            env={**os.environ, "BENCH_PYMODEL_ROOT": tmp},
            capture_output=True,
            text=True,
            check=True,
        )
    return {"rev": rev, **json.loads(out.stdout)}


def child(args: argparse.Namespace) -> int:
    """``--child``: the streams on the channel of $BENCH_PYMODEL_ROOT (before ``data=``, the
    channel always models data)."""
    cfg = resolve(args.config)
    base, with_gb, data = workload(cfg, args.rows, args.seed)
    if "data" in inspect.signature(Channel).parameters:
        timing = timed(Channel(cfg, data=False), base)
    else:
        timing = timed(Channel(cfg), base)  # rows never written: the MACs multiply zeros
    ch = Channel(cfg)
    for row, values in data.items():
        ch.load_row(row, values)
    print(json.dumps({"timing": timing, "data": timed(ch, with_gb)}))
    return 0


def _peer_cpu(binary: Path, config: Path, trace: str, tmp: Path) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, stdout) of one peer run on ``trace``."""
    path = tmp / "mac-stream.trace"
    path.write_text(trace)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    proc = subprocess.run(
        [str(binary), "-f", str(config), "-t", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp,
        check=False,
    )
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        tail = proc.stderr[-400:]
        raise SystemExit(f"bench_channel: {binary} failed ({proc.returncode}): {tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.stdout


def peer(binary: Path, config: Path, rows: int, commands: int) -> dict[str, Any]:
    """The C++ peer on the same stream, and on one row for its start-up (reading the YAML,
    building the device)."""
    with tempfile.TemporaryDirectory() as tmp:
        startup, _, _ = _peer_cpu(binary, config, mac_stream(1), Path(tmp))
        cpu, wall, stdout = _peer_cpu(binary, config, mac_stream(rows), Path(tmp))
    return {
        "binary": str(binary),
        "config": str(config),
        "commands": commands,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "commands_per_s": round(commands / cpu),
        "startup_cpu_s": round(startup, 3),
        "commands_per_s_after_startup": round(commands / max(cpu - startup, 1e-9)),
        "cycles": next(  # its own count, for comparison (it models no refresh)
            (
                int(line.split(":")[1])
                for line in stdout.splitlines()
                if "memory_system_cycles:" in line
            ),
            None,
        ),
        "stdout_tail": stdout.strip().splitlines()[-12:],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/channel-bench.json")
    ap.add_argument("--rows", type=int, default=4096, help="rows in the stream (default 4096)")
    ap.add_argument("--config", default="aim-gddr6")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--previous", metavar="REV", help="also run the channel of commit REV")
    ap.add_argument(
        "--also", metavar="REV", action="append", default=[], help="the same for REV (repeatable)"
    )
    ap.add_argument(
        "--peer",
        type=Path,
        metavar="PATH",
        help="also time the C++ AiM simulator's ramulator2 (skipped if absent)",
    )
    ap.add_argument(
        "--peer-config",
        type=Path,
        metavar="YAML",
        help="its config (default: test/example.yaml beside PATH or one level up)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.peer and not args.peer.is_file():
        print(f"bench_channel: no peer at {args.peer}: skipped", flush=True)
        args.peer = None
    peer_config = args.peer_config
    if args.peer and not peer_config:
        near = [d / "test" / "example.yaml" for d in (args.peer.parent, args.peer.parent.parent)]
        peer_config = next((c for c in near if c.is_file()), near[0])
    if args.peer and not peer_config.is_file():
        ap.error(f"--peer-config: {peer_config} does not exist")
    cfg = resolve(args.config)
    base, with_gb, rows_data = workload(cfg, args.rows, args.seed)
    runs: dict[str, dict[str, Any]] = {}
    for checked in (False, True):
        path = "reference" if checked else "fast"
        print(f"bench_channel: {path} path, timing only ...", flush=True)
        runs[f"{path}_timing"] = run(cfg, base, checked, None)
        print(f"bench_channel: {path} path, bf16 data ...", flush=True)
        runs[f"{path}_data"] = run(cfg, with_gb, checked, rows_data)
    if args.previous:
        print(f"bench_channel: the channel of {args.previous} ...", flush=True)
        prev = previous(args.previous, args)
        runs["previous_timing"], runs["previous_data"] = prev["timing"], prev["data"]
    for rev in args.also:
        print(f"bench_channel: the channel of {rev} ...", flush=True)
        got = previous(rev, args)
        runs[f"at-{rev}_timing"], runs[f"at-{rev}_data"] = got["timing"], got["data"]
    for name, r in runs.items():
        kind = name.split("_")[1]
        fast = runs[f"fast_{kind}"]
        same = ("cycles", "refs") + (("reads",) if kind == "data" else ())
        if any(r[k] != fast[k] for k in same):
            print(f"bench_channel: {name} differs from the fast path", file=sys.stderr)
            return 1
    result: dict[str, Any] = {
        "config": cfg.name,
        "rows": args.rows,
        "previous_rev": args.previous,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "runs": {k: {f: v for f, v in r.items() if f != "reads"} for k, r in runs.items()},
    }
    for kind in ("timing", "data"):
        for other in ("reference", "previous", *(f"at-{rev}" for rev in args.also)):
            if f"{other}_{kind}" in runs:
                result[f"speedup_vs_{other}_{kind}"] = round(
                    runs[f"fast_{kind}"]["commands_per_s"]
                    / runs[f"{other}_{kind}"]["commands_per_s"],
                    2,
                )
    if args.peer:
        print(f"bench_channel: the C++ peer {args.peer} ...", flush=True)
        result["peer"] = peer(args.peer, peer_config, args.rows, len(base))
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
    for key, value in result.items():
        if key.startswith("speedup"):
            print(f"{key}: {value}x")
    if "peer" in result:
        rates = result["peer"]
        print(
            f"C++ AiM simulator: {rates['commands_per_s']:,} commands/s "
            f"({rates['commands_per_s_after_startup']:,} after its start-up)"
        )
    print(f"bench_channel: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
