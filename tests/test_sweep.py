"""pimphony sweep: spec checks, a 2-worker LocalCluster sweep with a worker killed mid-sweep
(nothing lost, nothing duplicated, rows equal to in-process runs), resume, Pareto front."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pymodel.cli import main
from pymodel.dse import pareto
from pymodel.dse.point import code_version, run_point
from pymodel.dse.run import connect, run_sweep, store_path
from pymodel.dse.spec import EXAMPLE, SpecError, parse_spec, point_key
from pymodel.dse.store import Store
from pymodel.errors import OutputError

SPEC = """
name = "t"
[grid]
model = ["llm-7b-32k"]
modules = [2, 4]
technique = ["+tcp", "pimphony"]
workload = ["ctx2048"]
"buffers.obuf_entries" = [4, 8]
"""
METRICS = ("status", "throughput_tokens_per_s", "batch", "tp", "pp", "buffer_bytes")


def test_example_spec_parses() -> None:
    spec = parse_spec(EXAMPLE, "example")
    assert len(spec.points) == 24
    assert len({point_key(p) for p in spec.points}) == 24


@pytest.mark.parametrize(
    "grid, message",
    [
        ('model = ["LLM-9B"]', "grid.model = 'LLM-9B': unknown model"),
        ("techniques = []", "grid.techniques: unknown axis"),
        ('"buffers.obuf_entries" = [0]', "buffers.obuf_entries = 0 is out of range"),
        ('"buffers.nope" = [1]', "buffers"),
        ("modules = [0]", "grid.modules = 0: must be an integer >= 1"),
        ('workload = ["ctx0"]', "grid.workload = 'ctx0'"),
    ],
)
def test_bad_spec_names_the_key(grid: str, message: str) -> None:
    base = dict(
        line.split(" = ", 1) for line in SPEC.splitlines() if " = " in line and "name" not in line
    )
    key = grid.split(" = ")[0]
    base[key] = grid.split(" = ", 1)[1]
    text = "[grid]\n" + "\n".join(f"{k} = {v}" for k, v in base.items())
    with pytest.raises(SpecError) as info:
        parse_spec(text, "s.toml")
    assert message in str(info.value) and str(info.value).startswith("s.toml: ")


@pytest.mark.slow
def test_sweep_survives_a_killed_worker_and_resumes(tmp_path: Path) -> None:
    """The kill hits running tasks: with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 (no
    rerun after a worker death) this test fails with KilledWorker."""
    spec = parse_spec(SPEC, "t.toml")
    cache = str(tmp_path / "kernels")  # cold: every point does real command-level runs
    store = Store(store_path(tmp_path))
    killed: list[str] = []

    with connect(None, 2) as client:

        def kill_one_busy_worker(row: dict[str, Any]) -> None:
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                killed.append(busy[0])
                try:
                    client.run(os._exit, 1, workers=[busy[0]])
                except Exception:  # the worker dies before answering (CommClosedError)
                    pass

        summary = run_sweep(spec, store, client, cache, on_row=kill_one_busy_worker)
        assert killed, "no worker was busy after the first result: the kill tested nothing"
        assert killed[0] not in client.scheduler_info()["workers"]
        again = run_sweep(spec, store, client, cache)
    rows = store.rows(code_version())
    store.close()
    assert summary.ran == len(spec.points) == len(rows)
    assert sorted(r["key"] for r in rows) == sorted(point_key(p) for p in spec.points)
    assert again.ran == 0 and again.skipped == len(spec.points)
    by_key = {r["key"]: r for r in rows}
    for p in spec.points:  # same numbers as the point run in this process
        ref = run_point(p, cache)
        assert {m: by_key[ref["key"]][m] for m in METRICS} == {m: ref.get(m) for m in METRICS}
    assert all(r["status"] == "ok" and r["config_hash"] for r in rows)
    assert len({r["config_hash"] for r in rows}) == 2


@pytest.mark.slow
def test_serve_points_match_pimphony_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kernel_cache_file: Path
) -> None:
    """A serve point of a sweep computes what `pimphony serve` computes; serve axes on step
    points collapse to one point."""
    spec = parse_spec(
        SPEC.replace('workload = ["ctx2048"]', 'workload = ["qmsum"]')
        .replace("modules = [2, 4]", "modules = [4]")
        .replace('"buffers.obuf_entries" = [4, 8]', 'mode = ["step", "serve"]\nrate = [2.0, 8.0]')
        + "requests = [40]\n",
        "s.toml",
    )
    modes = [p["mode"] for p in spec.points]
    assert modes.count("step") == 2 and modes.count("serve") == 4  # x2 techniques
    p = next(p for p in spec.points if p["mode"] == "serve" and p["technique"] == "pimphony")
    row = run_point(p, str(kernel_cache_file))
    argv = [
        "serve",
        "--model",
        p["model"],
        "--system",
        "pim-only",
        "--modules",
        "4",
        "--dataset",
        "qmsum",
        "--requests",
        "40",
        "--rate",
        str(p["rate"]),
        "--techniques",
        "pimphony",
        "--out",
        str(tmp_path),
        "--json",
    ]
    assert main(argv) == 0
    ref = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["completed"] == ref["completed"] == 40
    for m in ("throughput_tokens_per_s", "tpot_ms_p99", "ttft_ms_p99", "tp", "pp"):
        assert row[m] == ref[m], m


@pytest.mark.slow
def test_sweep_command_writes_store_and_plot_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "two.toml"
    spec.write_text(
        SPEC.replace("modules = [2, 4]", "modules = [2]").replace(
            'technique = ["+tcp", "pimphony"]', 'technique = ["pimphony"]'
        )
    )
    argv = ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 points, 0 already done, 2 run" in out and "Pareto front (step points)" in out
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 0
    assert main(argv) == 0
    assert "2 points, 2 already done, 0 run" in capsys.readouterr().out
    store = Store(store_path(tmp_path / "out"))
    assert len(store.rows()) == 2
    store.close()


def test_a_row_the_store_refuses_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = parse_spec(SPEC, "t.toml").points[0]
    row = {
        "key": point_key(p),
        "code_version": "v",
        "config_hash": "c",
        "params": p,
        "status": "ok",
        "error": None,
        "buffer_bytes": 1,
        "throughput_tokens_per_s": 2.5,
    }
    store = Store(store_path(tmp_path))
    store.db.execute("PRAGMA query_only = ON")  # every write now fails (as a full disk would)
    with pytest.raises(OutputError, match="cannot store a row"):
        store.add(row)
    printed = json.loads(capsys.readouterr().out)
    assert printed["key"] == row["key"] and printed["throughput_tokens_per_s"] == 2.5
    store.close()


def test_pareto_front() -> None:
    def row(buf: int, tput: float) -> dict[str, Any]:
        return {"status": "ok", "buffer_bytes": buf, "throughput_tokens_per_s": tput}

    rows = [row(4, 10.0), row(2, 5.0), row(3, 4.0), row(8, 9.0), row(1, 1.0)]
    assert [(r["buffer_bytes"], r["throughput_tokens_per_s"]) for r in pareto.front(rows)] == [
        (1, 1.0),
        (2, 5.0),
        (4, 10.0),
    ]
