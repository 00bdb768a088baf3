"""Root pytest configuration.

Makes the shared bench helpers importable everywhere (``tests/`` and ``tb/<dut>/test_<dut>.py``):
``tb/common`` (``import simlib``, drivers, monitors) and ``tb`` go on ``sys.path``. cocotb's runner
exports ``sys.path`` as the simulator's PYTHONPATH, so the same imports work inside the simulator.

Test files are imported by basename (pytest's default "prepend" mode, no ``__init__.py`` in
``tests/`` or ``tb/``), so every ``test_*.py`` basename must be unique across the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
for _p in (_ROOT / "tb", _ROOT / "tb" / "common"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


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
