"""LLM shapes: the four Table-I models of the paper and any Hugging Face ``config.json`` read from a
local file (:mod:`pymodel.system.hf_config`; nothing is downloaded).

A shape carries what decode work and memory depend on: attention heads and KV heads (MHA, GQA,
MQA), the head size, a gated (SwiGLU/GeGLU) or plain two-matrix MLP, sliding-window layers and a
mixture of experts. Weights are bf16; the LM head is on PIM (tied or not, the embedding lookup
stays on the host, so tying changes no PIM byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pymodel.system.errors import SystemSimError


class ModelError(SystemSimError):
    """A model that cannot be used: names the field or file."""


@dataclass(frozen=True)
class Moe:
    """Mixture-of-experts FFN. Weights of every expert are stored; each token runs the router
    and its ``active`` routed experts (plus the shared experts, always on). Routing assumption:
    every token picks ``active`` of the ``experts`` uniformly and independently."""

    experts: int  # routed experts per MoE layer
    active: int  # routed experts per token
    expert_ffn: int  # intermediate size of one routed expert
    moe_layers: int  # layers with an MoE FFN (the others have the dense ``ffn``)
    shared_ffn: int = 0  # total intermediate size of the shared experts (0: none)

    def expected_distinct(self, tokens: int) -> float:
        """Routed experts a batch of ``tokens`` tokens touches on average (uniform routing)."""
        return self.experts * (1.0 - (1.0 - self.active / self.experts) ** tokens)


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
    gated_ffn: bool = True  # SwiGLU/GeGLU: gate + up projections, then down
    family: str = "table-i"  # HF model_type it was read from
    sliding_window: int = 0  # tokens a local layer attends to (0: no local layers)
    local_layers: int = 0  # layers using the sliding window (the rest attend to everything)
    tied_embeddings: bool = False
    moe: Moe | None = None

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
        if not 0 <= self.local_layers <= self.layers or (
            self.local_layers and self.sliding_window <= 0
        ):
            raise ModelError(f"model {self.name}: local_layers = {self.local_layers} is invalid")
        if self.moe is not None and not 1 <= self.moe.active <= self.moe.experts:
            raise ModelError(
                f"model {self.name}: {self.moe.active} active experts of {self.moe.experts}"
            )

    @property
    def group(self) -> int:
        """Query heads per KV head (GQA group size)."""
        return self.heads // self.kv_heads

    def _mlp(self, prefix: str, ffn: int, count: float) -> list[tuple[str, int, int, float]]:
        up = (2 if self.gated_ffn else 1) * ffn
        return [
            (f"{prefix}_up", up, self.hidden, count),
            (f"{prefix}_down", self.hidden, ffn, count),
        ]

    def fc_work(self) -> list[tuple[str, int, int, float]]:
        """(name, d_out, d_in, GEMVs per token) of an average layer's FC work: weights are
        partitioned by output rows; MoE layers run the router, ``active`` routed experts and the
        shared experts per token (averaged with the dense layers by their share of layers)."""
        q, kv = self.heads * self.d_head, self.kv_heads * self.d_head
        out = [("qkv", q + 2 * kv, self.hidden, 1.0), ("o", self.hidden, q, 1.0)]
        moe = self.moe
        if moe is None:
            return out + self._mlp("ffn", self.ffn, 1.0)
        share = moe.moe_layers / self.layers
        if share < 1:
            out += self._mlp("ffn", self.ffn, 1.0 - share)
        out.append(("router", moe.experts, self.hidden, share))
        out += self._mlp("expert", moe.expert_ffn, moe.active * share)
        if moe.shared_ffn:
            out += self._mlp("shared", moe.shared_ffn, share)
        return out

    @property
    def layer_params(self) -> int:
        """Stored weights of an average layer (every expert of an MoE layer)."""
        q, kv = self.heads * self.d_head, self.kv_heads * self.d_head
        attn = (q + 2 * kv) * self.hidden + self.hidden * q
        mlp = (3 if self.gated_ffn else 2) * self.hidden
        moe = self.moe
        if moe is None:
            return attn + mlp * self.ffn
        per_moe = moe.experts * (self.hidden + mlp * moe.expert_ffn) + mlp * moe.shared_ffn
        dense = self.layers - moe.moe_layers
        return attn + (dense * mlp * self.ffn + moe.moe_layers * per_moe) // self.layers

    @property
    def active_layer_params(self) -> float:
        """Weights one token multiplies per average layer (= FLOPs / 2 of its FC work)."""
        return sum(o * i * n for _, o, i, n in self.fc_work())

    def layer_weight_bytes_read(self, tokens: int) -> float:
        """bf16 weight bytes a batch of ``tokens`` tokens reads per average layer when each
        weight is read once per batch (NPU/GPU): MoE layers read only the experts touched."""
        moe = self.moe
        if moe is None:
            return 2.0 * self.layer_params
        mlp = (3 if self.gated_ffn else 2) * self.hidden
        untouched = (moe.experts - moe.expected_distinct(tokens)) * mlp * moe.expert_ffn
        return 2.0 * (self.layer_params - untouched * moe.moe_layers / self.layers)

    @property
    def weight_bytes(self) -> int:
        """bf16 weights of all decoder layers plus the LM head (embeddings stay on the host)."""
        return 2 * (self.layers * self.layer_params + self.vocab * self.hidden)

    def kv_bytes_per_token(self, layers: int | None = None) -> int:
        """bf16 K and V of one token over ``layers`` layers (default: all)."""
        n = self.layers if layers is None else layers
        return 2 * 2 * n * self.kv_heads * self.d_head

    def attended(self, tokens: int) -> list[tuple[int, int]]:
        """(layers, tokens attended) for a sequence of ``tokens``: local layers see at most the
        sliding window."""
        glob = self.layers - self.local_layers
        out = [(glob, tokens)] if glob else []
        if self.local_layers:
            out.append((self.local_layers, min(tokens, self.sliding_window)))
        return out

    def kv_bytes(self, tokens: int) -> int:
        """Live bf16 KV of one sequence of ``tokens`` (local layers keep the window only)."""
        return sum(self.kv_bytes_per_token(n) * t for n, t in self.attended(tokens))

    def describe(self) -> dict[str, object]:
        """The resolved shape, for outputs."""
        d: dict[str, object] = {
            k: getattr(self, k)
            for k in (
                "name",
                "family",
                "hidden",
                "layers",
                "heads",
                "kv_heads",
                "d_head",
                "ffn",
                "vocab",
                "context_window",
                "gated_ffn",
                "sliding_window",
                "local_layers",
                "tied_embeddings",
            )
        }
        d["moe"] = None if self.moe is None else vars(self.moe).copy()
        d["weight_bytes"] = self.weight_bytes
        return d


# Paper Table I with FFN/vocab sizes of the reference models' public configs (docs/system.md).
TABLE_I: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("LLM-7B-32K", 4096, 32, 32, 32, 128, 11008, 151936, 32768),
        ModelSpec("LLM-7B-128K-GQA", 4096, 32, 32, 8, 128, 14336, 128256, 131072),
        ModelSpec("LLM-72B-32K", 8192, 80, 64, 64, 128, 24576, 152064, 32768),
        ModelSpec("LLM-72B-128K-GQA", 8192, 80, 64, 8, 128, 28672, 128256, 131072),
    )
}


# The two-layer test model of pymodel/compiler/examples/tiny.mlir (shape from gen_layers.py), for
# the compiler only: not a Table-I model. The example has no LM head, so vocab is ours (any positive
# size; no compiler output depends on it).
EXAMPLES: dict[str, ModelSpec] = {
    "tiny": ModelSpec("tiny", 64, 2, 4, 2, 16, 128, 256, 128, family="example"),
}


def model_named(text: str, *, examples: bool = False) -> ModelSpec:
    """The Table-I model named ``text`` in any case (with ``examples``: also an example model)."""
    table = TABLE_I | EXAMPLES if examples else TABLE_I
    for name, m in table.items():
        if text.lower() == name.lower():
            return m
    raise ModelError(f"unknown model '{text}' (available: {', '.join(table)})")


def resolve_model(spec: str) -> ModelSpec:
    """A Table-I name (case-insensitive) or a path to a local ``config.json``."""
    from pymodel.system.hf_config import from_hf_config

    if spec.lower() in map(str.lower, TABLE_I):
        return model_named(spec)
    if spec.endswith(".json") or Path(spec).exists():
        return from_hf_config(spec)
    raise ModelError(
        f"unknown model '{spec}' (available: {', '.join(TABLE_I)}, or a config.json path)"
    )
