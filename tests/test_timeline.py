"""`pimphony timeline`: renders a PNG from a trace; bad windows and empty traces are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymodel.cli import main


def test_timeline_from_demo_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, png = tmp_path / "g.trace", tmp_path / "g.png"
    assert main(["demo", "--dim", "1024", "--d-out", "32", "--trace", str(trace)]) == 0
    capsys.readouterr()
    assert main(["timeline", str(trace), "-o", str(png), "--end", "800"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "commands, cycles" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, extra, message",
    [
        ("", [], "the trace has no commands"),
        ("0 ACT16 row=1\n", ["--start", "5", "--end", "5"], "--end 5 must be greater"),
        ("0 ACT16 row=1\n7 BOGUS\n", [], ":2: unknown command 'BOGUS'"),
    ],
)
def test_timeline_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, extra: list[str], message: str
) -> None:
    trace = tmp_path / "t.trace"
    trace.write_text(text)
    assert main(["timeline", str(trace), "-o", str(tmp_path / "x.png"), *extra]) == 2
    assert message in capsys.readouterr().err
