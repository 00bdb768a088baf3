"""``pimphony decode`` (reference backend): the JSON figures and the bad-input errors."""

from __future__ import annotations

import json

import pytest

from pymodel.cli import main
from pymodel.golden.dpa import segment_count

SMALL = "[module]\nchannels = 3\ngpr_bytes = 6144\n\n[dpa]\nchunk_rows = 4\nmax_body_len = 40\n"


@pytest.fixture()
def small_cfg(tmp_path):  # type: ignore[no-untyped-def]
    p = tmp_path / "small.toml"
    p.write_text('preset = "aim-gddr6"\nname = "decode-small"\n\n' + SMALL)
    return str(p)


@pytest.mark.slow
def test_decode_json_reports_segments_and_error(small_cfg: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """A request longer than one GPR segment (22 blocks here): 2 segments, within the bound."""
    rc = main(
        [
            "decode",
            "--model",
            "LLM-7B-128K-GQA",
            "--config",
            small_cfg,
            "--requests",
            "3000,200",
            "--steps",
            "2",
            "--gqa-reuse",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("requests", "steps", "segments", "commands", "cycles", "max_error_over_bound"):
        assert key in out
    assert out["requests"] == [3000, 200] and out["steps"] == 2
    assert out["gqa_queries_per_loop"] == 4
    assert out["segments"] == segment_count(3002, 128, out["segment_blocks"]) >= 2
    assert 0 < out["max_error_over_bound"] < 1
    assert out["commands"] > 0 and out["cycles"] > 0


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--requests", "3000000"], "what the VA2PA table maps"),
        (["--requests", "0"], "at least 1"),
        (["--requests", "1,x"], "LEN[,LEN...]"),
        (["--requests", "10", "--kv-heads", "9"], "--kv-heads = 9"),
        (["--requests", ",".join(["10"] * 65)], "dpa.max_requests"),
        (["--requests", "100000", "--steps", "50", "--max-minutes", "0.1"], "estimated"),
        (["--requests", "10", "--backend", "rtl", "--trace-dir", "."], "--trace-dir"),
    ],
)
def test_decode_bad_input_one_line(argv: list[str], needle: str, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["decode", "--model", "LLM-7B-128K-GQA", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("pimphony: error:"), err
    assert needle in err[0]
