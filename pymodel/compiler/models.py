"""Model names ``pimphony compile --model`` accepts: the Table-I models of
:mod:`pymodel.system.models` (matched case-insensitively, as every command matches them) and a
two-layer ``tiny`` test model. Importing this does not need xDSL."""

from __future__ import annotations

import argparse

from pymodel.system.models import TABLE_I

#: layers (for PP) and the context window (documentation only), by lower-case name.
MODELS: dict[str, dict[str, int]] = {"tiny": {"layers": 2, "context": 128}} | {
    name.lower(): {"layers": m.layers, "context": m.context_window} for name, m in TABLE_I.items()
}


def model_name(text: str) -> str:
    """argparse ``type``: the lower-case key of a known model name (any case)."""
    key = text.lower()
    if key not in MODELS:
        names = ", ".join(["tiny", *TABLE_I])
        raise argparse.ArgumentTypeError(f"unknown model '{text}' (available: {names})")
    return key
