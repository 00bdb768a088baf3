"""The pimphony CLI: demo figures, trace replay, clean errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pymodel.cli import main


def test_demo_small_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "gemv.trace"
    assert main(["demo", "--dim", "1024", "--d-out", "64", "--json", "--trace", str(trace)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bit_exact_outputs"] == out["outputs"] == 64
    assert 0.3 < out["mac_utilization"] < 1.0
    assert out["commands"]["MAC16"] == 64 // 16 * 64
    assert main(["trace", "check", str(trace)]) == 0
    assert "legal on aim-gddr6" in capsys.readouterr().out


def test_trace_check_reports_violation_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.trace"
    trace.write_text("0 ACT16 row=1\n55 MAC16 col=0 gb=0 out=0\n")
    assert main(["trace", "check", str(trace)]) == 1
    assert "violates nRCD_MAC (earliest legal cycle 56)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--config", "ddr9"], "unknown preset 'ddr9'"),
        (["demo", "--dim", "1000"], "d_out = 1000 must be a positive multiple of 16"),
        (["trace", "check", "/nonexistent.trace"], "cannot read trace /nonexistent.trace"),
    ],
)
def test_bad_input_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_malformed_trace_names_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "m.trace"
    trace.write_text("0 ACT16 row=1\n56 MAC16 col=0 gb=99 out=0\n")
    assert main(["trace", "check", str(trace)]) == 2
    assert f"{trace}:2: MAC16: gb = 99 out of range [0, 63]" in capsys.readouterr().err


def test_bad_config_file_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[timing]\nnRP = 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pymodel.cli", "config", "show", "--config", str(cfg)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "timing.nRP = 0 is out of range [1, 65536]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_for_every_command() -> None:
    for argv in (
        ["--help"],
        ["demo", "--help"],
        ["trace", "check", "--help"],
        ["config", "show", "--help"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
