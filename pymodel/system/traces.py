"""Request traces for the serving simulator: arrival time, prompt (context) and output tokens.

Formats (``fmt="auto"`` picks by the file: ``.jsonl`` -> Mooncake, else by the CSV header):

* ``csv``: the project's CSV, header ``context_tokens,output_tokens`` and optionally
  ``arrival_s`` (seconds; without it every request arrives at t = 0);
* ``azure``: the Azure LLM inference trace CSV, ``TIMESTAMP,ContextTokens,GeneratedTokens``
  (TIMESTAMP a date-time such as ``2023-11-16 18:15:46.6805900`` or seconds);
* ``mooncake``: JSON lines with ``timestamp`` (ms), ``input_length``, ``output_length``.

Every row becomes a request (its file line is kept for messages and the per-request CSV). A
UTF-8 byte-order mark and CRLF line ends are accepted; anything else malformed (non-UTF-8,
missing or duplicated columns, a short row, a non-numeric or negative value, an empty file) is
an error naming the line. Rows whose timestamps go backwards are sorted by time (stably) and the
count is reported. A zero-length prompt or output is not an error: that request is rejected
with its reason by the simulator, like every other request it cannot serve.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from pymodel.errors import read_text
from pymodel.system.errors import SystemSimError
from pymodel.system.workloads import DATASETS, truncated_normal

FORMATS = ("auto", "csv", "azure", "mooncake")
PROJECT_COLUMNS = ("context_tokens", "output_tokens")
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")
MAX_TOKENS = 1 << 31  # larger counts are certainly a broken file


class TraceError(SystemSimError):
    """A trace that cannot be read: names the file, line and field."""


@dataclass(frozen=True)
class Request:
    index: int  # position in the file (0-based, before any sorting)
    line: int  # file line (1-based)
    arrival_s: float
    context: int
    output: int


@dataclass
class Trace:
    name: str
    fmt: str
    requests: list[Request]
    sorted_rows: int = 0  # rows that arrived earlier than the row before them
    notes: list[str] = field(default_factory=list)

    def with_arrivals(self, mode: str, rate: float | None, seed: int) -> Trace:
        """Arrival times from the trace (``trace``), all at 0 (``zero``) or Poisson at
        ``rate`` requests/s (``poisson``)."""
        if mode == "trace":
            return self
        if mode == "zero":
            times = [0.0] * len(self.requests)
        elif mode == "poisson":
            if rate is None or not rate > 0 or not math.isfinite(rate):
                raise TraceError(f"--rate = {rate} must be a positive number for poisson arrivals")
            gaps = np.random.default_rng(seed).exponential(1.0 / rate, len(self.requests))
            times = list(np.cumsum(gaps) - gaps[0])
        else:
            raise TraceError(f"unknown --arrivals '{mode}' (trace, zero, poisson)")
        reqs = [replace(r, arrival_s=float(t)) for r, t in zip(self.requests, times, strict=True)]
        return Trace(self.name, self.fmt, reqs, 0, self.notes + [f"arrivals: {mode}"])


def _int(raw: str, where: str, key: str) -> int:
    s = raw.strip()
    try:
        v = int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            raise TraceError(f"{where}: {key} = {raw!r} is not a number") from None
        if not f.is_integer():
            raise TraceError(f"{where}: {key} = {raw!r} is not a whole number of tokens") from None
        v = int(f)
    if v < 0 or v >= MAX_TOKENS:
        raise TraceError(f"{where}: {key} = {v} must be in [0, {MAX_TOKENS})")
    return v


def _seconds(raw: str, where: str, key: str) -> float:
    s = raw.strip()
    try:
        v = float(s)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        if math.isfinite(v):
            raise TraceError(f"{where}: {key} = {raw!r} must not be negative")
        raise TraceError(f"{where}: {key} = {raw!r} is not a number of seconds")
    return v


def _azure_time(raw: str, where: str) -> float:
    s = raw.strip()
    try:
        return float(s)
    except ValueError:
        pass
    head, _, frac = s.partition(".")
    try:
        t = datetime.fromisoformat(head)
    except ValueError:
        raise TraceError(f"{where}: TIMESTAMP = {raw!r} is not a date-time") from None
    if frac and not frac.isdigit():
        raise TraceError(f"{where}: TIMESTAMP = {raw!r} is not a date-time")
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def _text(path: Path) -> str:
    text = read_text(path, "trace").removeprefix("\ufeff")  # a UTF-8 byte-order mark is fine
    if not text.strip():
        raise TraceError(f"{path}: empty trace (no header, no requests)")
    return text


def _csv_rows(path: Path, text: str) -> tuple[str, list[Request]]:
    lines = text.splitlines()
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise TraceError(f"{path}:1: column {', '.join(dup)} appears more than once")
    if all(c in header for c in AZURE_COLUMNS):
        fmt, cols = "azure", AZURE_COLUMNS[1:]
    elif all(c in header for c in PROJECT_COLUMNS):
        fmt, cols = "csv", PROJECT_COLUMNS
    else:
        raise TraceError(
            f"{path}:1: header must name {', '.join(PROJECT_COLUMNS)} [arrival_s] or "
            f"{', '.join(AZURE_COLUMNS)} (got {', '.join(header) or 'nothing'})"
        )
    pos = {h: i for i, h in enumerate(header)}
    out: list[Request] = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue  # blank line
        where = f"{path}:{lineno}"
        if len(row) != len(header):
            raise TraceError(f"{where}: {len(row)} fields, the header has {len(header)}")
        if fmt == "azure":
            t = _azure_time(row[pos["TIMESTAMP"]], where)
        elif "arrival_s" in pos:
            t = _seconds(row[pos["arrival_s"]], where, "arrival_s")
        else:
            t = 0.0
        ctx = _int(row[pos[cols[-2]]], where, cols[-2])
        gen = _int(row[pos[cols[-1]]], where, cols[-1])
        out.append(Request(len(out), lineno, t, ctx, gen))
    return fmt, out


def _jsonl_rows(path: Path, text: str) -> list[Request]:
    out: list[Request] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{where}: not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{where}: not a JSON object")
        for k in MOONCAKE_KEYS:
            if k not in obj:
                raise TraceError(f"{where}: missing '{k}'")
            if isinstance(obj[k], bool) or not isinstance(obj[k], (int, float)):
                raise TraceError(f"{where}: {k} = {obj[k]!r} is not a number")
        t = _seconds(str(obj["timestamp"]), where, "timestamp") / 1e3
        ctx = _int(str(obj["input_length"]), where, "input_length")
        gen = _int(str(obj["output_length"]), where, "output_length")
        out.append(Request(len(out), lineno, t, ctx, gen))
    return out


def read_trace(path: str | Path, fmt: str = "auto") -> Trace:
    p = Path(path)
    if fmt not in FORMATS:
        raise TraceError(f"unknown trace format '{fmt}' (available: {', '.join(FORMATS)})")
    text = _text(p)
    if fmt == "mooncake" or (fmt == "auto" and p.suffix == ".jsonl"):
        got, reqs = "mooncake", _jsonl_rows(p, text)
    else:
        got, reqs = _csv_rows(p, text)
        if fmt not in ("auto", got):
            raise TraceError(f"{p}:1: --trace-format {fmt}, but the header is the {got} format's")
    if not reqs:
        raise TraceError(f"{p}: header only, no requests")
    t0 = min(r.arrival_s for r in reqs)
    reqs = [replace(r, arrival_s=r.arrival_s - t0) for r in reqs]
    back = sum(1 for a, b in zip(reqs, reqs[1:], strict=False) if b.arrival_s < a.arrival_s)
    trace = Trace(p.stem, got, sorted(reqs, key=lambda r: r.arrival_s), back)
    if back:
        trace.notes.append(f"{back} rows arrived before the row above them: sorted by time")
    return trace


def synthetic(dataset: str, n: int, seed: int, output_tokens: int) -> Trace:
    """``n`` requests with prompt lengths of a Table-II dataset (seeded), arriving at t = 0
    (use :meth:`Trace.with_arrivals` for Poisson arrivals)."""
    key = dataset.lower()
    if key not in DATASETS:
        raise TraceError(f"unknown dataset '{dataset}' (available: {', '.join(DATASETS)})")
    if n < 1:
        raise TraceError(f"--requests = {n} must be at least 1")
    if output_tokens < 1:
        raise TraceError(f"--output-tokens = {output_tokens} must be at least 1")
    ctx = truncated_normal(DATASETS[key], n, seed)
    reqs = [Request(i, i + 1, 0.0, c, output_tokens) for i, c in enumerate(ctx)]
    return Trace(f"{key}-{n}", "synthetic", reqs, notes=[f"synthetic {key}, seed {seed}"])
