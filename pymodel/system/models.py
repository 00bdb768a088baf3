"""LLM shapes: the four Table-I models of the paper and any Hugging Face ``config.json`` read from a
local file (nothing is downloaded)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodel.errors import read_text
from pymodel.system.errors import SystemSimError


class ModelError(SystemSimError):
    """A model that cannot be used: names the field or file."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    d_head: int
    ffn: int
    vocab: int
    context_window: int
    gated_ffn: bool = True  # SwiGLU: gate + up projections, then down

    def __post_init__(self) -> None:
        for f in ("hidden", "layers", "heads", "kv_heads", "d_head", "ffn", "vocab"):
            v = getattr(self, f)
            if not isinstance(v, int) or v <= 0:
                raise ModelError(f"model {self.name}: {f} = {v!r} must be a positive integer")
        if self.heads % self.kv_heads:
            raise ModelError(
                f"model {self.name}: heads = {self.heads} is not a multiple of "
                f"kv_heads = {self.kv_heads}"
            )

    @property
    def group(self) -> int:
        """Query heads per KV head (GQA group size)."""
        return self.heads // self.kv_heads

    def fc_shapes(self) -> list[tuple[str, int, int]]:
        """(name, d_out, d_in) of the per-layer FC GEMVs (weights partitioned by output rows)."""
        q = self.heads * self.d_head
        kv = self.kv_heads * self.d_head
        ffn_in = (2 if self.gated_ffn else 1) * self.ffn
        return [
            ("qkv", q + 2 * kv, self.hidden),
            ("o", self.hidden, q),
            ("ffn_up", ffn_in, self.hidden),
            ("ffn_down", self.hidden, self.ffn),
        ]

    @property
    def layer_params(self) -> int:
        return sum(o * i for _, o, i in self.fc_shapes())

    @property
    def weight_bytes(self) -> int:
        """bf16 weights of all decoder layers plus the LM head (embeddings stay on the host)."""
        return 2 * (self.layers * self.layer_params + self.vocab * self.hidden)

    def kv_bytes_per_token(self, layers: int | None = None) -> int:
        """bf16 K and V of one token over ``layers`` layers (default: all)."""
        n = self.layers if layers is None else layers
        return 2 * 2 * n * self.kv_heads * self.d_head


# Paper Table I with FFN/vocab sizes of the reference models' public configs (PAPER_NOTES.md).
TABLE_I: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("LLM-7B-32K", 4096, 32, 32, 32, 128, 11008, 151936, 32768),
        ModelSpec("LLM-7B-128K-GQA", 4096, 32, 32, 8, 128, 14336, 128256, 131072),
        ModelSpec("LLM-72B-32K", 8192, 80, 64, 64, 128, 24576, 152064, 32768),
        ModelSpec("LLM-72B-128K-GQA", 8192, 80, 64, 8, 128, 28672, 128256, 131072),
    )
}


def _get(cfg: dict[str, Any], path: Path, *names: str, default: int | None = None) -> int:
    for n in names:
        if n in cfg:
            v = cfg[n]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ModelError(f"{path}: {n} = {v!r} must be a positive integer")
            return v
    if default is not None:
        return default
    raise ModelError(f"{path}: missing '{names[0]}' (not a decoder-only LLM config.json?)")


def from_hf_config(path: str | Path) -> ModelSpec:
    """Shape of a Hugging Face ``config.json`` (Llama/Qwen/Mistral-style keys)."""
    p = Path(path)
    try:
        cfg = json.loads(read_text(p, "model config"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{p}: top level must be an object")
    hidden = _get(cfg, p, "hidden_size", "n_embd", "d_model")
    heads = _get(cfg, p, "num_attention_heads", "n_head")
    kv = _get(cfg, p, "num_key_value_heads", default=heads)
    d_head = _get(cfg, p, "head_dim", default=hidden // heads)
    return ModelSpec(
        name=str(cfg.get("_name_or_path") or p.parent.name or p.stem),
        hidden=hidden,
        layers=_get(cfg, p, "num_hidden_layers", "n_layer"),
        heads=heads,
        kv_heads=kv,
        d_head=d_head,
        ffn=_get(cfg, p, "intermediate_size", "n_inner", default=4 * hidden),
        vocab=_get(cfg, p, "vocab_size", default=32000),
        context_window=_get(cfg, p, "max_position_embeddings", default=4096),
    )


def resolve_model(spec: str) -> ModelSpec:
    """A Table-I name (case-insensitive) or a path to a local ``config.json``."""
    for name, m in TABLE_I.items():
        if spec.lower() == name.lower():
            return m
    if spec.endswith(".json") or Path(spec).exists():
        return from_hf_config(spec)
    raise ModelError(
        f"unknown model '{spec}' (available: {', '.join(TABLE_I)}, or a config.json path)"
    )
