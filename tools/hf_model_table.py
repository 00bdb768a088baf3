"""The HF model families of tests/data/hf_configs on 8 PIM-only modules at a 32K context:
modeled or refused, and decode tokens/s under baseline and pimphony (docs/models.md quotes it).
Each row goes through the real CLI (``pimphony simulate --json``); contexts beyond a model's
window run with --allow-beyond-window and are marked."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

from pymodel.cli import main
from pymodel.errors import PimphonyError
from pymodel.system.hf_config import from_hf_config

CONFIGS = Path(__file__).resolve().parent.parent / "tests" / "data" / "hf_configs"


def simulate(cfg: Path, tech: str, context: int, modules: int, cache: str) -> str:
    argv = ["simulate", "--model", str(cfg), "--system", "pim-only", "--modules", str(modules)]
    argv += ["--context", str(context), "--techniques", tech, "--allow-beyond-window", "--json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv + ["--kernel-cache", cache])
    if rc:
        return err.getvalue().strip().splitlines()[-1].removeprefix("pimphony: error: ")
    d = json.loads(out.getvalue())
    return f"{d['throughput_tokens_per_s']:,.0f} (batch {d['batch']})"


def main_(context: int, modules: int, cache: str) -> None:
    print("| config | family | heads/KV x d_head | window | baseline tok/s | pimphony tok/s |")
    print("|---|---|---|---|---|---|")
    for cfg in sorted(CONFIGS.glob("*.json")):
        try:
            m = from_hf_config(cfg)
        except PimphonyError as exc:
            why = str(exc).split(": ", 1)[1]
            print(f"| {cfg.stem} | refused | | | {why} | |")
            continue
        beyond = " (beyond window)" if context > m.context_window else ""
        cells = [simulate(cfg, t, context, modules, cache) for t in ("baseline", "pimphony")]
        print(
            f"| {cfg.stem} | {m.family} | {m.heads}/{m.kv_heads} x {m.d_head} | "
            f"{m.context_window}{beyond} | {cells[0]} | {cells[1]} |",
            flush=True,
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--context", type=int, default=32768)
    ap.add_argument("--modules", type=int, default=8)
    ap.add_argument("--kernel-cache", default="build/kernel-cache-models")
    a = ap.parse_args()
    main_(a.context, a.modules, a.kernel_cache)
