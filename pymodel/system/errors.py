"""One base class for bad input to the full-system simulator (the CLI turns it into exit 2)."""

from __future__ import annotations

from pymodel.errors import PimphonyError


class SystemSimError(PimphonyError, ValueError):
    """Bad model, workload, technique or an impossible configuration; the message says why."""
