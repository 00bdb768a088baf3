"""Root pytest configuration.

Makes the shared bench helpers importable everywhere (``tests/`` and ``tb/<dut>/test_<dut>.py``):
``tb/common`` (``import simlib``, drivers, monitors) and ``tb`` go on ``sys.path``. cocotb's runner
exports ``sys.path`` as the simulator's PYTHONPATH, so the same imports work inside the simulator.

Test files are imported by basename (pytest's default "prepend" mode, no ``__init__.py`` in
``tests/`` or ``tb/``), so every ``test_*.py`` basename must be unique across the repository.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent
for _p in (_ROOT / "tb", _ROOT / "tb" / "common"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


# `make sim SEEDS=N`: every RTL simulation test runs with N seeds, SEED_BASE .. SEED_BASE+N-1.
# The base must be the same in every xdist worker (they collect separately): SEED_BASE, else the
# date, so each day's regression tries new seeds and a failing one is named in the summary.
SEEDS = int(os.environ.get("SEEDS") or 0)
SEED_BASE = int(os.environ.get("SEED_BASE") or time.strftime("%Y%m%d00"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SEEDS > 0 and metafunc.definition.get_closest_marker("sim"):
        seeds = [SEED_BASE + i for i in range(SEEDS)]
        metafunc.fixturenames.append("sim_seed")
        metafunc.parametrize("sim_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(autouse=True)
def _sim_seed_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """simlib.run takes its seed from SEED: set it to this item's seed under SEEDS=N."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "sim_seed" in callspec.params:
        monkeypatch.setenv("SEED", str(callspec.params["sim_seed"]))


def _reproduce(name: str) -> str | None:
    """``SEED=s make waves TEST=...`` for a failed seeded test (None if not seeded)."""
    m = re.fullmatch(r"(.*)\[(.*)\]", name)
    if m is None:
        return None
    ids = m.group(2).split("-")
    seeds = [i for i in ids if re.fullmatch(r"seed\d+", i)]
    if not seeds:
        return None
    rest = "-".join(i for i in ids if i not in seeds)
    test = f"{m.group(1)}[{rest}]" if rest else m.group(1)
    seed, sim = seeds[0][4:], os.environ.get("SIM", "verilator")
    return f"seed {seed}: reproduce: SEED={seed} SIM={sim} make waves TEST='{test}'"


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """After any run that included RTL simulations (marker ``sim``), print one table of them."""
    rows = []
    for outcome in ("passed", "failed", "error", "skipped"):
        for rep in terminalreporter.stats.get(outcome, []):
            if getattr(rep, "when", "call") != "call" and outcome != "error":
                continue
            if "sim" not in getattr(rep, "keywords", {}):
                continue
            rows.append((rep.nodeid.split("::", 1)[-1], outcome, rep.duration))
    if not rows:
        return
    width = max(len(r[0]) for r in rows)
    terminalreporter.section("RTL simulation summary")
    terminalreporter.write_line(f"{'test':<{width}}  {'result':<7}  wall s")
    for name, outcome, dur in sorted(rows):
        terminalreporter.write_line(f"{name:<{width}}  {outcome:<7}  {dur:6.1f}")
    failed = sum(1 for r in rows if r[1] != "passed")
    total = sum(r[2] for r in rows)
    terminalreporter.write_line(
        f"{len(rows)} simulations, {failed} not passed, {total:.1f} s summed wall time"
    )
    if SEEDS:
        terminalreporter.write_line(f"seeds {SEED_BASE}..{SEED_BASE + SEEDS - 1} (SEEDS={SEEDS})")
    failing = [
        _reproduce(name) for name, outcome, _ in sorted(rows) if outcome in ("failed", "error")
    ]
    for line in filter(None, failing):
        terminalreporter.write_line(f"FAILED {line}")
