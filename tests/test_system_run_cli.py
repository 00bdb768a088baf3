"""pimphony simulate / repro: JSON output and clean errors (exit 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pymodel.cli import main
from pymodel.system import experiments


@pytest.fixture(autouse=True)
def _cache_file(kernel_cache_file: Path) -> None:
    global CACHE
    CACHE = str(kernel_cache_file)


CACHE = "none"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv + ["--kernel-cache", CACHE])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_simulate_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(
        [
            "simulate",
            "--model",
            "LLM-7B-32K",
            "--system",
            "xpu-pim",
            "--modules",
            "4",
            "--context",
            "8192",
            "--techniques",
            "pimphony",
            "--json",
        ],
        capsys,
    )
    assert rc == 0
    d = json.loads(out)
    for k in (
        "throughput_tokens_per_s",
        "mac_utilization",
        "capacity_utilization",
        "batch",
        "tp",
        "pp",
    ):
        assert k in d
    assert d["throughput_tokens_per_s"] > 0 and d["tp"] * d["pp"] == 4


def test_simulate_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    for gpu in ("a100-80gb", "h100-sxm", "h200"):
        argv = ["simulate", "--model", "LLM-7B-32K", "--system", "gpu", "--modules", "2"]
        rc, out, _ = _run(argv + ["--gpu", gpu, "--context", "8000", "--json"], capsys)
        d = json.loads(out)
        assert rc == 0 and d["system"] == "gpu" and d["technique"].startswith(gpu)
        assert d["resolved"]["gpu"] == gpu


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "LLM-9B", "--context", "1000"], "unknown model 'LLM-9B'"),
        (["--model", "/nonexistent/config.json", "--context", "1000"], "cannot read model"),
        (["--model", "LLM-7B-32K", "--dataset", "wiki"], "unknown dataset 'wiki'"),
        (["--model", "LLM-7B-32K", "--context", "0"], "--context = 0 must be positive"),
        (["--model", "LLM-72B-32K", "--context", "1000", "--modules", "2"], "short by"),
        (
            ["--model", "LLM-7B-32K", "--context", "1000", "--modules", "0"],
            "--modules: 0 must be at least 1",
        ),
    ],
)
def test_simulate_errors(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--system", "pim-only"]
    if "--modules" not in extra:
        argv += ["--modules", "8"]
    rc, _, err = _run(argv + extra, capsys)
    assert rc == 2
    assert message in err and "Traceback" not in err and err.startswith("pimphony: error:")


def test_bad_trace_and_bad_hf_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("context_tokens,output_tokens\n4000,64\n12x,5\n")
    base = ["simulate", "--system", "pim-only", "--modules", "8", "--model", "LLM-7B-32K"]
    rc, _, err = _run(base + ["--trace", str(trace)], capsys)
    assert rc == 2 and f"{trace}:3: context_tokens = '12x' is not a number" in err
    trace.write_text("ctx,out\n1,2\n")
    rc, _, err = _run(base + ["--trace", str(trace)], capsys)
    assert rc == 2 and "header must name context_tokens, output_tokens" in err
    assert err.count("pimphony: error:") == 1 and "Traceback" not in err
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32})
    )
    rc, _, err = _run(
        [
            "simulate",
            "--system",
            "pim-only",
            "--modules",
            "8",
            "--model",
            str(cfg),
            "--context",
            "1000",
        ],
        capsys,
    )
    assert rc == 2 and "missing 'num_hidden_layers'" in err


def test_repro_unknown_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["repro", "--out", str(tmp_path), "--only", "nope"], capsys)
    assert rc == 2 and "unknown experiment 'nope'" in err


@pytest.mark.slow
def test_repro_capacity_utilization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real experiment, restricted to the 128K model's datasets to keep the test fast."""
    full = experiments.cases
    monkeypatch.setattr(
        experiments, "cases", lambda name: [c for c in full(name) if "128K" in c.model]
    )
    rc, _, _ = _run(["repro", "--out", str(tmp_path), "--only", "capacity-utilization"], capsys)
    assert rc == 0
    rows = json.loads((tmp_path / "capacity-utilization.json").read_text())
    assert (tmp_path / "capacity-utilization.png").stat().st_size > 0
    assert (tmp_path / "capacity-utilization.csv").read_text().startswith("model,")
    by = {(r["dataset"], r["technique"]): r for r in rows}
    for d in ("multifieldqa", "loogle-sd"):
        assert (
            by[(d, "pimphony")]["capacity_utilization"]
            >= by[(d, "+tcp+dcs")]["capacity_utilization"]
        )
        assert {"speedup_vs_baseline", "throughput_tokens_per_s"} <= set(by[(d, "pimphony")])


def test_gpu_presets_in_the_gpu_experiment() -> None:
    from pymodel.system.gpu import gpu_best
    from pymodel.system.models import TABLE_I
    from pymodel.system.systems import GPU_SPECS, gpu_system
    from pymodel.system.workloads import fixed

    gpus = {c.technique.split(":")[0] for c in experiments.cases("gpu") if c.system == "gpu"}
    assert gpus == set(GPU_SPECS) == {"a100-80gb", "h100-sxm", "h200"}
    m, work = TABLE_I["LLM-7B-128K-GQA"], fixed(32768, n=4)
    tps = {g: gpu_best(m, gpu_system(g, 2), work, 4).throughput_tokens_per_s for g in GPU_SPECS}
    assert tps["a100-80gb"] < tps["h100-sxm"] < tps["h200"]  # memory-bound decode: bandwidth
    assert (
        gpu_best(m, gpu_system("h200", 1), fixed(32768, n=1), None).batch
        > gpu_best(m, gpu_system("h100-sxm", 1), fixed(32768, n=1), None).batch
    )  # 141 GB hold more KV than 80 GB
