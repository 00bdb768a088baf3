"""Serving simulation: trace formats and bad traces, accounting, step time = the steady-state
model's, static vs DPA admission, preemption, and the `pimphony serve` outputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from pymodel.cli import main
from pymodel.config import PRESETS
from pymodel.errors import PimphonyError
from pymodel.system import workloads
from pymodel.system.kernel_cost import KernelCache
from pymodel.system.memory import request_bytes
from pymodel.system.models import TABLE_I
from pymodel.system.serving import ServeOptions, ServingSim
from pymodel.system.simulate import StepModel
from pymodel.system.systems import pim_only, xpu_pim
from pymodel.system.techniques import BUNDLES, bundle
from pymodel.system.traces import Request, Trace, read_trace

CFG = PRESETS["aim-gddr6"]
M7 = TABLE_I["LLM-7B-32K"]
INSTANT = math.inf  # link bytes/s: the prompt's KV arrives at once


@pytest.fixture(scope="module")
def cache(kernel_cache_file: Path) -> KernelCache:
    return KernelCache(CFG, kernel_cache_file)


def sim(cache: KernelCache, tech: str, modules: int = 8, **opts: object) -> ServingSim:
    sm = StepModel(M7, pim_only(modules, CFG), BUNDLES[tech], cache)
    return ServingSim(sm, ServeOptions(**opts))  # type: ignore[arg-type]


def trace_of(rows: list[tuple[float, int, int]]) -> Trace:
    reqs = [Request(i, i + 2, t, c, o) for i, (t, c, o) in enumerate(rows)]
    return Trace("test", "csv", reqs)


# ---------------------------------------------------------------------------- formats


def test_formats_bom_crlf_and_sorting(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xef\xbb\xbfarrival_s,context_tokens,output_tokens\r\n2,10,3\r\n1,20,4\r\n")
    tr = read_trace(p)
    assert tr.fmt == "csv" and tr.sorted_rows == 1 and "sorted by time" in tr.notes[0]
    assert [(r.line, r.arrival_s, r.context) for r in tr.requests] == [(3, 0.0, 20), (2, 1.0, 10)]
    az = tmp_path / "azure.csv"
    az.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.1805900,396,109\n"
    )
    tr = read_trace(az)
    assert tr.fmt == "azure" and tr.requests[1].arrival_s == pytest.approx(3.5)
    assert (tr.requests[1].context, tr.requests[1].output) == (396, 109)
    mc = tmp_path / "mooncake.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [1, 2]},
        {"timestamp": 1500, "input_length": 6472, "output_length": 26, "hash_ids": [3]},
    ]
    mc.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tr = read_trace(mc)
    assert tr.fmt == "mooncake" and tr.requests[1].arrival_s == 1.5
    assert tr.with_arrivals("poisson", 2.0, 0).requests[1].arrival_s > 0
    assert {r.arrival_s for r in tr.with_arrivals("zero", None, 0).requests} == {0.0}


BAD = [
    ("a.csv", b"", "empty trace"),
    ("a.csv", b"context_tokens,output_tokens\n", "header only, no requests"),
    ("a.csv", b"ctx,output_tokens\n1,2\n", "header must name context_tokens, output_tokens"),
    ("a.csv", b"context_tokens,output_tokens,output_tokens\n1,2,3\n", "output_tokens appears more"),
    ("a.csv", b"context_tokens,output_tokens\n10,-2\n", ":2: output_tokens = -2 must be in"),
    ("a.csv", b"context_tokens,output_tokens\n10,abc\n", ":2: output_tokens = 'abc' is not a"),
    ("a.csv", b"context_tokens,output_tokens\n10,2.5\n", "not a whole number"),
    ("a.csv", b"context_tokens,output_tokens\n10\n", ":2: 1 fields, the header has 2"),
    ("a.csv", b"arrival_s,context_tokens,output_tokens\n-1,10,2\n", "arrival_s = '-1' must not"),
    ("a.csv", b"context_tokens,output_tokens\n10,2\n\xff\xfe,1\n", ":3: trace is not UTF-8"),
    ("a.csv", b"TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,2\n", "not a date-time"),
    ("a.jsonl", b'{"timestamp": 0, "input_length": 5}\n', ":1: missing 'output_length'"),
    ("a.jsonl", b'{"timestamp": 0, "input_length": "5", "output_length": 1}\n', "not a number"),
    ("a.jsonl", b"[1, 2]\n", ":1: not a JSON object"),
]


@pytest.mark.parametrize("name, data, message", BAD)
def test_bad_traces_one_clear_line(
    name: str, data: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(PimphonyError, match=message.replace("(", r"\(")):
        read_trace(p)
    argv = ["serve", "--model", "LLM-7B-32K", "--system", "pim-only", "--modules", "8"]
    rc = main(argv + ["--trace", str(p), "--out", str(tmp_path / "o"), "--kernel-cache", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("pimphony: error:") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------- the simulation


def test_every_request_accounted_for(cache: KernelCache) -> None:
    rows = [(0.0, 4000, 32), (0.1, 0, 8), (0.2, 32000, 1000), (0.3, 1 << 21, 8)]
    rows += [(0.4 + 0.01 * i, 2000 + 100 * i, 16) for i in range(10)]
    res = sim(cache, "pimphony").run(trace_of(rows))
    s = res.summary
    assert s["requests"] == len(rows) == s["completed"] + s["rejected"]
    assert s["rejected_by_reason"] == {"empty": 1, "beyond_window": 2}
    for o in res.outcomes:
        assert o.status in ("completed", "rejected")
        assert o.tokens == (o.req.output if o.status == "completed" else 0)
    huge = sim(cache, "pimphony", allow_beyond_window=True).run(trace_of(rows[:4]))
    reasons = {o.req.context: o.reason.split(":")[0] for o in huge.outcomes}
    assert reasons == {4000: "", 0: "empty", 32000: "", 1 << 21: "too_long"}


def test_step_time_is_the_steady_state_models(cache: KernelCache) -> None:
    """B identical requests decoding together: each request's TPOT is the mean of the steady-state
    model's round times over the lengths it passes through (checked at the mid length)."""
    b, ctx, out = 6, 8192, 64
    s = sim(cache, "+tcp+dcs", link_bytes_per_s=INSTANT)
    res = s.run(trace_of([(0.0, ctx, out)] * b))
    tp, pp = res.summary["tp"], res.summary["pp"]
    step = s.sm.step(workloads.fixed(ctx, n=b, output_tokens=out), b, tp, pp)
    tpots = {round(o.tpot_s, 12) for o in res.outcomes}
    assert len(tpots) == 1  # they decode in lock step
    assert tpots.pop() == pytest.approx(step.step_s, rel=2e-3)
    assert res.summary["peak_batch"] == b and res.summary["preemptions"] == 0


def test_dpa_admits_more_than_static_and_preempts_when_memory_runs_out(cache: KernelCache) -> None:
    # 24 requests whose prompts are short and outputs long: STATIC reserves the 32K window each
    rows = [(0.0, 2048, 6000)] * 24
    static = sim(cache, "+tcp+dcs", modules=2, link_bytes_per_s=INSTANT).run(trace_of(rows))
    dpa = sim(cache, "pimphony", modules=2, link_bytes_per_s=INSTANT).run(trace_of(rows))
    for r in (static, dpa):
        assert r.summary["completed"] == 24
        assert r.summary["peak_kv_bytes"] <= r.summary["kv_capacity_bytes"]
    assert static.summary["preemptions"] == 0
    assert dpa.summary["peak_batch"] > static.summary["peak_batch"]
    assert dpa.summary["preemptions"] > 0  # lazy chunks outgrow the memory: recompute policy
    preempted = [o for o in dpa.outcomes if o.preemptions]
    assert preempted and all(o.tokens == o.req.output for o in preempted)
    assert dpa.summary["throughput_tokens_per_s"] > static.summary["throughput_tokens_per_s"]


def test_neupims_rows_grow_with_the_request(cache: KernelCache) -> None:
    """The NeuPIMs-like baseline's free-row KV is lazy like DPA: the peak KV of one request that
    decodes 1000 tokens past its prompt is the rows of its final length, not its prompt's."""
    rows = [(0.0, 2048, 1000)]
    sm = StepModel(M7, xpu_pim(1, CFG), bundle("baseline", "xpu-pim"), cache)
    res = ServingSim(sm, ServeOptions(link_bytes_per_s=INSTANT)).run(trace_of(rows))
    assert res.summary["completed"] == 1
    lay, layers = sm.lay, M7.layers
    assert res.summary["peak_kv_bytes"] == request_bytes(lay, "rows", 3048, 0, M7, layers)
    assert request_bytes(lay, "rows", 3048, 0, M7, layers) > request_bytes(
        lay, "rows", 2049, 0, M7, layers
    )


def test_prefill_on_the_npu_stalls_decode(cache: KernelCache) -> None:
    rows = [(0.0, 4096, 16), (0.0, 4096, 16)]
    sms = [StepModel(M7, xpu_pim(4, CFG), BUNDLES["pimphony"], cache) for _ in range(2)]
    link = ServingSim(sms[0], ServeOptions(link_bytes_per_s=INSTANT)).run(trace_of(rows))
    npu = ServingSim(sms[1], ServeOptions(prefill="npu")).run(trace_of(rows))
    flops = 2 * 4096 * (M7.layers * M7.active_layer_params + M7.vocab * M7.hidden)
    assert npu.summary["ttft_ms_p50"] > 1e3 * flops / (4 * sms[1].system.npu_flops)
    assert npu.summary["ttft_ms_p50"] > link.summary["ttft_ms_p50"]
    with pytest.raises(PimphonyError, match="--prefill npu needs an NPU"):
        sim(cache, "pimphony", prefill="npu")


# ---------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_serve_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kernel_cache_file: Path
) -> None:
    trace = tmp_path / "t.csv"
    lines = ["arrival_s,context_tokens,output_tokens"]
    lines += [f"{0.05 * i},{3000 + 500 * i},{20 + i}" for i in range(12)] + ["0.7,100000,10"]
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["serve", "--model", "LLM-7B-32K", "--system", "pim-only", "--modules", "8"]
    argv += ["--trace", str(trace), "--out", str(out), "--kernel-cache", str(kernel_cache_file)]
    assert main(argv + ["--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    for key in ("requests", "completed", "rejected", "throughput_tokens_per_s", "tpot_ms_p50",
                "tpot_ms_p99", "queue_ms_p99", "preemptions", "peak_kv_bytes"):  # fmt: skip
        assert key in s, key
    assert s["requests"] == 13 and s["completed"] == 12 and s["rejected"] == 1
    assert s["resolved"]["pim_config"]["name"] == "aim-gddr6"
    with (out / "requests.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 13 and rows[-1]["status"] == "rejected"
    assert rows[-1]["reason"].startswith("beyond_window") and rows[-1]["line"] == "14"
    assert all(not math.isnan(float(r["tpot_ms"])) for r in rows[:-1])
    assert (out / "serve.png").stat().st_size > 1000
    assert json.loads((out / "summary.json").read_text())["completed"] == 12
    # simulate --trace serves the trace the same way
    sim_argv = ["simulate"] + argv[1:] + ["--json"]
    assert main(sim_argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["throughput_tokens_per_s"] == s["throughput_tokens_per_s"]
    assert main(sim_argv + ["--batch", "4"]) == 2
    assert "--batch does not apply to a trace" in capsys.readouterr().err


def test_serve_synthetic_text_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kernel_cache_file: Path
) -> None:
    argv = ["serve", "--model", "LLM-7B-32K", "--system", "pim-only", "--modules", "8"]
    argv += ["--dataset", "qmsum", "--requests", "20", "--rate", "5", "--output-tokens", "16"]
    argv += ["--out", str(tmp_path), "--kernel-cache", str(kernel_cache_file)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "completed 20, rejected 0" in text and "TPOT" in text and "preemptions" in text
    assert main(argv[:-4] + ["--arrivals", "zero", "--rate", "3", "--out", str(tmp_path)]) == 2
    assert "--rate applies to --arrivals poisson" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max-batch", "0"], "--max-batch: 0 must be at least 1"),
        (["--link-gbps", "0"], "--link-gbps must be positive"),
        (["--arrivals", "poisson", "--rate", "-1"], "--rate = -1.0 must be a positive number"),
        (["--prefill", "npu"], "--prefill npu needs an NPU"),
        (["--trace-format", "azure"], "--trace-format azure, but the header is the csv format's"),
    ],
)
def test_bad_serve_options(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("context_tokens,output_tokens\n1000,8\n")
    argv = ["serve", "--model", "LLM-7B-32K", "--system", "pim-only", "--modules", "8"]
    argv += ["--trace", str(trace), "--out", str(tmp_path / "o"), "--kernel-cache", "none"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.count("pimphony: error:") == 1 and message in err and "Traceback" not in err
