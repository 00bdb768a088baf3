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
