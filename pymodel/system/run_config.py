"""What the full-system commands resolve before they run: the system, the model's context
window check, and the record of the resolved configuration kept in every output."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pymodel.config import PimConfig
from pymodel.system.errors import SystemSimError
from pymodel.system.models import ModelSpec
from pymodel.system.systems import SYSTEMS, PimSystem, pim_only, xpu_pim

DEFAULT_GPU = "a100-80gb"


def check_window(model: ModelSpec, tokens: int, allow: bool, what: str) -> None:
    """Contexts beyond the model's trained window are an error unless ``allow`` (then a
    warning on stderr: the model was never trained there, the numbers are extrapolations)."""
    if tokens <= model.context_window:
        return
    msg = (
        f"{what} reaches {tokens} tokens, beyond {model.name}'s context window of "
        f"{model.context_window} (max_position_embeddings)"
    )
    if not allow:
        raise SystemSimError(msg + "; pass --allow-beyond-window to simulate it anyway")
    print(f"pimphony: warning: {msg}", file=sys.stderr)


def pim_system(system: str, modules: int, cfg: PimConfig) -> PimSystem:
    if system not in ("pim-only", "xpu-pim"):
        raise SystemSimError(f"unknown system '{system}' (available: {', '.join(SYSTEMS)})")
    return (pim_only if system == "pim-only" else xpu_pim)(modules, cfg)


def resolved(cfg: PimConfig, model: ModelSpec, **extra: Any) -> dict[str, Any]:
    """The configuration an output was computed with (recorded beside every result)."""
    return {"pim_config": cfg.to_dict(), "model": model.describe()} | extra


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-beyond-window",
        action="store_true",
        help="allow contexts beyond the model's max_position_embeddings (warns)",
    )


def config_line(config: dict[str, Any]) -> str:
    """One line naming the resolved configuration (text outputs)."""
    c, m = config["pim_config"], config["model"]
    gpu = f"; GPU {config['gpu']}" if config.get("gpu") else ""
    return (
        f"{c['name']}: {c['module']['channels']} channels/module, "
        f"{c['geometry']['rows_per_bank']} rows x {c['geometry']['columns_per_row']} columns/bank; "
        f"model {m['family']}: {m['layers']} layers, {m['heads']}/{m['kv_heads']} heads x "
        f"{m['d_head']}, window {m['context_window']}{gpu}"
    )
