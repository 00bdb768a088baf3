"""Serving-simulator speed (``make bench-serve``): a 10,000-request synthetic long-context trace
(multifieldqa prompt lengths, 256 output tokens, Poisson arrivals) of LLM-7B-128K-GQA on 8
PIM-only modules, served under baseline and pimphony. Each run goes through the real CLI
(``pimphony serve --json``); the kernel cache is warmed first so the figures are the event loop's
(the cold calibration is listed apart)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from pymodel.cli import main

KEYS = (
    "requests", "completed", "rejected", "throughput_tokens_per_s", "tpot_ms_p50",
    "tpot_ms_p99", "queue_ms_p99", "preemptions", "peak_kv_bytes", "peak_batch", "tp", "pp",
    "steps", "segments", "wall_s",
)  # fmt: skip


def serve(tech: str, requests: int, rate: float, cache: Path, out: Path) -> dict[str, object]:
    argv = ["serve", "--model", "LLM-7B-128K-GQA", "--system", "pim-only", "--modules", "8"]
    argv += ["--dataset", "multifieldqa", "--requests", str(requests), "--rate", str(rate)]
    argv += ["--techniques", tech, "--out", str(out / tech), "--kernel-cache", str(cache)]
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = main(argv + ["--json"])
    if rc:
        raise SystemExit(f"pimphony serve failed ({rc})")
    s = json.loads(buf.getvalue())
    return {k: s[k] for k in KEYS} | {"command_s": time.perf_counter() - t0}


def run(requests: int, rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "out"
        t0 = time.perf_counter()
        for tech in ("baseline", "pimphony"):  # cold: calibrate the kernels on a short trace
            serve(tech, 50, rate, cache, out)
        cold = time.perf_counter() - t0
        rows = {tech: serve(tech, requests, rate, cache, out) for tech in ("baseline", "pimphony")}
    return {"requests": requests, "rate_per_s": rate, "calibration_s": cold, "runs": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=4.0, help="Poisson arrivals, requests/s")
    ap.add_argument("--out", default="build/serve-bench.json")
    a = ap.parse_args()
    res = run(a.requests, a.rate)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
