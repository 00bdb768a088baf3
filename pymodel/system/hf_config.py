"""Hugging Face ``config.json`` -> :class:`ModelSpec`, per ``model_type``; anything this model
cannot represent faithfully is refused with the field that says why (docs/models.md).

Each family reader uses the key names and defaults of that family's public configuration
(a key the family's config class defaults is taken at that default; a key without a default
must be present).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymodel.errors import read_text
from pymodel.system.models import ModelError, ModelSpec, Moe

Cfg = dict[str, Any]

# Families whose MLP is two plain matrices (GELU/ReLU), not gate + up + down.
PLAIN_MLP = {
    "gpt2",
    "gpt_bigcode",
    "opt",
    "gpt_neox",
    "phi",
    "falcon",
    "bloom",
    "gptj",
    "starcoder2",
}
GATED_MLP = {
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "deepseek",
    "olmo",
    "olmo2",
    "granite",
    "stablelm",
    "internlm2",
}
# Refused by name: (reason, the field or model_type that shows it).
UNSUPPORTED_TYPES = {
    "deepseek_v2": "MLA attention (kv_lora_rank): compressed latent KV is not modeled",
    "deepseek_v3": "MLA attention (kv_lora_rank): compressed latent KV is not modeled",
    "mamba": "state-space layers are not modeled (no KV cache)",
    "mamba2": "state-space layers are not modeled (no KV cache)",
    "falcon_mamba": "state-space layers are not modeled (no KV cache)",
    "jamba": "hybrid attention/state-space layers are not modeled",
    "zamba": "hybrid attention/state-space layers are not modeled",
    "recurrent_gemma": "recurrent (Griffin) layers are not modeled",
    "rwkv": "RWKV linear-attention layers are not modeled",
    "t5": "encoder-decoder models are not modeled (decoder-only LLMs only)",
    "bart": "encoder-decoder models are not modeled (decoder-only LLMs only)",
    "whisper": "encoder-decoder models are not modeled (decoder-only LLMs only)",
    "bert": "encoder-only models have no decode phase",
    "roberta": "encoder-only models have no decode phase",
}


def _int(cfg: Cfg, where: str, *names: str, default: int | None = None) -> int:
    """The first of ``names`` present (a positive integer), else ``default``."""
    for n in names:
        if n in cfg and cfg[n] is not None:
            v = cfg[n]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ModelError(f"{where}: {n} = {v!r} must be a positive integer")
            return v
    if default is not None:
        return default
    raise ModelError(f"{where}: missing '{names[0]}' (required for model_type {cfg['model_type']})")


def _window(cfg: Cfg, where: str, layers: int) -> tuple[int, int]:
    """(sliding window, local layers) from the family's sliding-window keys."""
    mt = cfg["model_type"]
    types = cfg.get("layer_types")
    w = cfg.get("sliding_window")
    if isinstance(types, list):
        if len(types) != layers or any(
            t not in ("sliding_attention", "full_attention") for t in types
        ):
            raise ModelError(
                f"{where}: layer_types must list {layers} sliding_attention/full_attention"
            )
        local = types.count("sliding_attention")
        return (_int(cfg, where, "sliding_window"), local) if local else (0, 0)
    if w is None or w is False:
        return 0, 0
    w = _int(cfg, where, "sliding_window")
    if mt in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if not cfg.get("use_sliding_window", False):
            return 0, 0  # the window is configured but switched off
        first = _int(cfg, where, "max_window_layers", default=layers)
        return w, max(0, layers - first)
    if mt == "gemma2":
        return w, (layers + 1) // 2  # even layers are local
    if mt == "gemma3_text":
        pattern = _int(cfg, where, "sliding_window_pattern", default=6)
        return w, layers - layers // pattern  # every pattern-th layer is global
    return w, layers


def _context(cfg: Cfg, where: str, *names: str, default: int | None = None) -> int:
    """Trained context: max_position_embeddings, or the RoPE-scaled original when larger."""
    ctx = _int(cfg, where, *names, default=default)
    rs = cfg.get("rope_scaling")
    if isinstance(rs, dict) and isinstance(rs.get("factor"), (int, float)):
        orig = rs.get("original_max_position_embeddings")
        if isinstance(orig, int) and orig > 0:
            ctx = max(ctx, int(rs["factor"] * orig))
    return ctx


def _moe(cfg: Cfg, where: str, layers: int) -> Moe | None:
    mt = cfg["model_type"]
    if mt == "mixtral":
        return Moe(
            experts=_int(cfg, where, "num_local_experts"),
            active=_int(cfg, where, "num_experts_per_tok"),
            expert_ffn=_int(cfg, where, "intermediate_size"),
            moe_layers=layers,
        )
    if mt in ("qwen2_moe", "qwen3_moe"):
        step = _int(cfg, where, "decoder_sparse_step", default=1)
        dense_only = set(cfg.get("mlp_only_layers") or [])
        n = sum(1 for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
        shared = cfg.get("shared_expert_intermediate_size") or 0
        return Moe(
            experts=_int(cfg, where, "num_experts"),
            active=_int(cfg, where, "num_experts_per_tok"),
            expert_ffn=_int(cfg, where, "moe_intermediate_size"),
            moe_layers=n,
            shared_ffn=int(shared),
        )
    if mt == "deepseek":
        first = cfg.get("first_k_dense_replace") or 0
        freq = _int(cfg, where, "moe_layer_freq", default=1)
        n = sum(1 for i in range(layers) if i >= first and i % freq == 0)
        eff = _int(cfg, where, "moe_intermediate_size")
        return Moe(
            experts=_int(cfg, where, "n_routed_experts"),
            active=_int(cfg, where, "num_experts_per_tok"),
            expert_ffn=eff,
            moe_layers=n,
            shared_ffn=eff * int(cfg.get("n_shared_experts") or 0),
        )
    for key in ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size"):
        if cfg.get(key):
            raise ModelError(f"{where}: {key} (experts) is not read for model_type {mt}")
    return None


def _kv_heads(cfg: Cfg, where: str, heads: int) -> int:
    mt = cfg["model_type"]
    if mt == "falcon":
        if cfg.get("new_decoder_architecture"):
            return _int(cfg, where, "num_kv_heads", "n_head_kv", default=heads)
        return 1 if cfg.get("multi_query", True) else heads
    if mt == "gpt_bigcode":
        return 1 if cfg.get("multi_query", True) else heads
    return _int(cfg, where, "num_key_value_heads", "n_head_kv", default=heads)


def _ffn_and_context(cfg: Cfg, where: str, hidden: int) -> tuple[int, int]:
    mt = cfg["model_type"]
    if mt in ("gpt2", "gpt_bigcode"):
        return _int(cfg, where, "n_inner", default=4 * hidden), _int(
            cfg, where, "n_positions", default=1024
        )
    if mt == "opt":
        return _int(cfg, where, "ffn_dim"), _context(
            cfg, where, "max_position_embeddings", default=2048
        )
    if mt == "falcon":
        return (
            _int(cfg, where, "ffn_hidden_size", default=4 * hidden),
            _context(cfg, where, "max_position_embeddings", default=2048),
        )
    if mt == "bloom":
        return 4 * hidden, _int(cfg, where, "seq_length", default=2048)
    if mt == "gptj":
        return _int(cfg, where, "n_inner", default=4 * hidden), _int(
            cfg, where, "n_positions", default=2048
        )
    return _int(cfg, where, "intermediate_size"), _context(cfg, where, "max_position_embeddings")


def _refuse(cfg: Cfg, where: str) -> None:
    mt = cfg.get("model_type")
    if "text_config" in cfg:
        raise ModelError(
            f"{where}: multimodal config (model_type {mt}): pass the language model's own "
            "config (its text_config) — the vision/audio encoder is not modeled"
        )
    if cfg.get("kv_lora_rank") or cfg.get("q_lora_rank"):
        raise ModelError(
            f"{where}: kv_lora_rank: MLA attention (compressed latent KV) is not modeled"
        )
    if cfg.get("is_encoder_decoder"):
        raise ModelError(f"{where}: is_encoder_decoder: only decoder-only LLMs are modeled")
    if not isinstance(mt, str):
        raise ModelError(f"{where}: missing 'model_type' (needed to read the config faithfully)")
    if mt in UNSUPPORTED_TYPES:
        raise ModelError(f"{where}: model_type {mt}: {UNSUPPORTED_TYPES[mt]}")
    if mt not in PLAIN_MLP | GATED_MLP:
        known = ", ".join(sorted(PLAIN_MLP | GATED_MLP))
        raise ModelError(f"{where}: model_type {mt} is not modeled (modeled: {known})")
    if cfg.get("quantization_config"):
        raise ModelError(f"{where}: quantization_config: only bf16 weights are modeled")
    if mt == "opt" and cfg.get("word_embed_proj_dim", cfg.get("hidden_size")) != cfg.get(
        "hidden_size"
    ):
        raise ModelError(
            f"{where}: word_embed_proj_dim != hidden_size: the projection is not modeled"
        )


def parse_config(cfg: Cfg, where: str, name: str) -> ModelSpec:
    """:class:`ModelSpec` of one parsed ``config.json`` (``where``: for messages)."""
    _refuse(cfg, where)
    mt = cfg["model_type"]
    hidden = _int(cfg, where, "hidden_size", "n_embd", "d_model")
    heads = _int(cfg, where, "num_attention_heads", "n_head")
    layers = _int(cfg, where, "num_hidden_layers", "n_layer")
    if "head_dim" not in cfg or cfg["head_dim"] is None:
        if hidden % heads:
            raise ModelError(f"{where}: hidden_size {hidden} is not a multiple of {heads} heads")
    d_head = _int(cfg, where, "head_dim", default=hidden // heads)
    kv = _kv_heads(cfg, where, heads)
    ffn, ctx = _ffn_and_context(cfg, where, hidden)
    window, local = _window(cfg, where, layers)
    tie_default = mt in (
        "gpt2",
        "gpt_bigcode",
        "opt",
        "falcon",
        "bloom",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi",
    )
    return ModelSpec(
        name=name,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        d_head=d_head,
        ffn=ffn,
        vocab=_int(cfg, where, "vocab_size"),
        context_window=ctx,
        gated_ffn=mt in GATED_MLP,
        family=mt,
        sliding_window=window,
        local_layers=local,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", tie_default)),
        moe=_moe(cfg, where, layers),
    )


def from_hf_config(path: str | Path) -> ModelSpec:
    """Shape of a local Hugging Face ``config.json``."""
    p = Path(path)
    try:
        cfg = json.loads(read_text(p, "model config"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{p}: top level must be an object")
    name = str(cfg.get("_name_or_path") or p.parent.name or p.stem)
    return parse_config(cfg, str(p), name)
