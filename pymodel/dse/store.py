"""The sweep's result store: one SQLite database, one row per (point, code version).

SQLite (Python's own) gives atomic commits and a primary key, so a row is either stored whole or
not at all, and a point can never be stored twice: a resumed sweep skips the keys it finds for
the current code version (rows of older code stay, marked by their version).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pymodel.errors import OutputError

COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "TEXT NOT NULL"),
    ("code_version", "TEXT NOT NULL"),
    ("config_hash", "TEXT NOT NULL"),
    ("status", "TEXT NOT NULL"),
    ("error", "TEXT"),
    ("model", "TEXT"),
    ("system", "TEXT"),
    ("modules", "INTEGER"),
    ("technique", "TEXT"),
    ("workload", "TEXT"),
    ("preset", "TEXT"),
    ("mode", "TEXT"),  # step (one decode step) or serve (a serving simulation)
    ("params", "TEXT NOT NULL"),  # every parameter of the point, JSON
    ("throughput_tokens_per_s", "REAL"),
    ("token_latency_s", "REAL"),
    ("batch", "INTEGER"),
    ("tp", "INTEGER"),
    ("pp", "INTEGER"),
    ("mac_utilization", "REAL"),
    ("capacity_utilization", "REAL"),
    ("energy_j_per_token", "REAL"),
    ("tpot_ms_p50", "REAL"),  # serve points
    ("tpot_ms_p99", "REAL"),
    ("ttft_ms_p99", "REAL"),
    ("completed", "INTEGER"),
    ("rejected", "INTEGER"),
    ("buffer_bytes", "INTEGER"),
    ("wall_s", "REAL"),
    ("worker", "TEXT"),
    ("finished_at", "TEXT"),
)
NAMES = tuple(c for c, _ in COLUMNS)


class Store:
    """``DIR/results.sqlite`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            cols = ", ".join(f"{c} {t}" for c, t in COLUMNS)
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS points ({cols}, PRIMARY KEY (key, code_version))"
            )
            have = {r[1] for r in self.db.execute("PRAGMA table_info(points)")}
            for c, t in COLUMNS:  # a store written by an older version: add the new columns
                if c not in have:
                    nullable = t.replace(" NOT NULL", "")
                    self.db.execute(f"ALTER TABLE points ADD COLUMN {c} {nullable}")
            self.db.commit()
        except sqlite3.Error as exc:
            raise OutputError(f"result store {path}: {exc}") from None

    def done(self, code_version: str) -> set[str]:
        cur = self.db.execute("SELECT key FROM points WHERE code_version = ?", (code_version,))
        return {k for (k,) in cur}

    def add(self, row: dict[str, Any]) -> bool:
        """Store one result row (committed at once); False if the point was already there."""
        p = row["params"]
        values = row | {
            k: p[k]
            for k in ("model", "system", "modules", "technique", "workload", "preset", "mode")
        }
        values["params"] = json.dumps(p, sort_keys=True)
        values["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        marks = ", ".join("?" for _ in NAMES)
        try:
            with self.db:
                cur = self.db.execute(
                    f"INSERT OR IGNORE INTO points ({', '.join(NAMES)}) VALUES ({marks})",
                    [values.get(c) for c in NAMES],
                )
        except sqlite3.Error as exc:  # disk full, store removed: the row goes to stdout
            print(json.dumps({c: values.get(c) for c in NAMES}), flush=True)
            raise OutputError(f"result store {self.path}: cannot store a row: {exc}") from None
        return cur.rowcount == 1

    def rows(self, code_version: str | None = None) -> list[dict[str, Any]]:
        q = f"SELECT {', '.join(NAMES)} FROM points"
        args: Iterable[str] = ()
        if code_version is not None:
            q, args = q + " WHERE code_version = ?", (code_version,)
        out = []
        for r in self.db.execute(q, tuple(args)):
            d = dict(zip(NAMES, r, strict=True))
            d["params"] = json.loads(d["params"])
            out.append(d)
        return out

    def close(self) -> None:
        self.db.close()
