"""Progress on stderr: periodic lines when stderr is not a terminal, nothing for short runs or
with PIMPHONY_PROGRESS=off, elapsed against the estimate for opaque calls."""

from __future__ import annotations

import re
import time

import pytest

from pymodel.ui.progress import Progress, activity, progress


def test_lines_every_interval_and_a_closing_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIMPHONY_PROGRESS", "lines")
    with Progress(4, "job", "points", interval=0.05) as bar:
        for _ in range(4):
            time.sleep(0.06)
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("job: 1/4 points (25%), 0 s, about ")
    assert lines[-1].startswith("job: 4/4 points (100%)") and lines[-1].endswith("(done)")
    assert len(lines) == 5


def test_short_runs_and_off_print_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIMPHONY_PROGRESS", "lines")
    assert list(progress(range(3), 3, "quick")) == [0, 1, 2]  # default interval: 10 s
    monkeypatch.setenv("PIMPHONY_PROGRESS", "off")
    with Progress(2, "off", interval=0.001) as bar:
        time.sleep(0.01)
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_activity_reports_elapsed_against_the_estimate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIMPHONY_PROGRESS", "lines")
    monkeypatch.setenv("PIMPHONY_PROGRESS_INTERVAL", "0.5")
    with activity("compile x", estimate_s=30):
        time.sleep(2.5)  # the heartbeat ticks once a second
    err = capsys.readouterr().err
    assert re.search(r"^compile x: [12] s of about 30 s \(estimate\)$", err, re.M), err
    assert err.rstrip().endswith("(done)")
