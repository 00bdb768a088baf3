"""Hugging Face config.json files of public models (tests/data/hf_configs, written from the
models' published configs): each family is modeled faithfully or refused with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pymodel.cli import main
from pymodel.config import PRESETS
from pymodel.errors import PimphonyError
from pymodel.system import workloads
from pymodel.system.hf_config import from_hf_config
from pymodel.system.kernel_cost import KernelCache
from pymodel.system.memory import request_bytes
from pymodel.system.models import ModelSpec
from pymodel.system.simulate import StepModel
from pymodel.system.systems import pim_only, xpu_pim
from pymodel.system.techniques import BUNDLES

CONFIGS = Path(__file__).parent / "data" / "hf_configs"
CFG = PRESETS["aim-gddr6"]


def load(name: str) -> ModelSpec:
    return from_hf_config(CONFIGS / f"{name}.json")


# (file, family, kv_heads, d_head, gated MLP, context window, sliding window, local layers)
MODELED = [
    ("llama-2-70b", "llama", 8, 128, True, 4096, 0, 0),
    ("llama-3.1-8b", "llama", 8, 128, True, 131072, 0, 0),
    ("mistral-7b-v0.1", "mistral", 8, 128, True, 32768, 4096, 32),
    ("mixtral-8x7b-v0.1", "mixtral", 8, 128, True, 32768, 0, 0),
    ("qwen2-7b", "qwen2", 4, 128, True, 131072, 0, 0),  # use_sliding_window false
    ("qwen1.5-moe-a2.7b", "qwen2_moe", 16, 128, True, 8192, 0, 0),
    ("gemma-7b", "gemma", 16, 256, True, 8192, 0, 0),
    ("gemma-2-9b", "gemma2", 8, 256, True, 8192, 4096, 21),  # even layers local
    ("phi-3-mini-4k", "phi3", 32, 96, True, 4096, 2047, 32),
    ("phi-2", "phi", 32, 80, False, 2048, 0, 0),
    ("falcon-7b", "falcon", 1, 64, False, 2048, 0, 0),  # multi_query
    ("falcon-40b", "falcon", 8, 64, False, 2048, 0, 0),  # new_decoder_architecture
    ("gpt2", "gpt2", 12, 64, False, 1024, 0, 0),
    ("opt-6.7b", "opt", 32, 128, False, 2048, 0, 0),
    ("pythia-6.9b", "gpt_neox", 32, 128, False, 2048, 0, 0),
    ("deepseek-moe-16b", "deepseek", 16, 128, True, 4096, 0, 0),
]
REFUSED = [
    ("deepseek-v2-lite", "kv_lora_rank: MLA attention"),
    ("mamba-2.8b", "model_type mamba: state-space layers are not modeled"),
    ("t5-base", "is_encoder_decoder: only decoder-only LLMs"),
]


@pytest.mark.parametrize("name, family, kv, d_head, gated, ctx, window, local", MODELED)
def test_modeled_family(
    name: str, family: str, kv: int, d_head: int, gated: bool, ctx: int, window: int, local: int
) -> None:
    m = load(name)
    got = (m.family, m.kv_heads, m.d_head, m.gated_ffn, m.context_window)
    assert got == (family, kv, d_head, gated, ctx)
    assert (m.sliding_window, m.local_layers) == (window, local)


@pytest.mark.parametrize("name, message", REFUSED)
def test_refused_by_name(name: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PimphonyError, match=message):
        load(name)
    argv = ["simulate", "--model", str(CONFIGS / f"{name}.json"), "--system", "pim-only"]
    rc = main(argv + ["--modules", "8", "--context", "1000", "--kernel-cache", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("pimphony: error:") == 1 and message in err
    assert "Traceback" not in err


# Published parameter counts (model cards / release posts), billions: total and per token.
PUBLISHED = {
    "mixtral-8x7b-v0.1": (46.7, 12.9),
    "qwen1.5-moe-a2.7b": (14.3, 2.7),
    "deepseek-moe-16b": (16.4, 2.8),
    "gemma-2-9b": (9.24, None),
    "llama-2-70b": (69.0, None),
    "phi-2": (2.78, None),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_weights_match_published_parameter_counts(name: str) -> None:
    """Stored weights (every expert) and the weights one token multiplies (router, active and
    shared experts) against the published counts, embeddings included (on the host here)."""
    m = load(name)
    emb = m.vocab * m.hidden
    untied_emb = 0 if m.tied_embeddings else emb
    total, active = PUBLISHED[name]
    assert (m.weight_bytes / 2 + untied_emb) / 1e9 == pytest.approx(total, rel=0.01)
    if active is not None:
        per_token = m.layers * m.active_layer_params + 2 * emb  # embedding row + LM head
        assert per_token / 1e9 == pytest.approx(active, rel=0.02)


def test_mqa_plain_mlp_and_windows_change_the_work() -> None:
    falcon = load("falcon-7b")
    assert [n for n, *_ in falcon.fc_work()] == ["qkv", "o", "ffn_up", "ffn_down"]
    assert falcon.fc_work()[0][1] == (71 + 2) * 64  # one K and one V head (MQA)
    assert falcon.fc_work()[2][1] == 18176  # plain MLP: no gate rows
    mistral = load("mistral-7b-v0.1")
    assert mistral.kv_bytes(32768) == mistral.kv_bytes(4096)  # every layer keeps 4096 tokens
    gemma2 = load("gemma-2-9b")
    half = gemma2.kv_bytes_per_token(21)
    assert gemma2.kv_bytes(8192) == half * 8192 + half * 4096  # 21 global + 21 local layers
    lay_static = StepModel(mistral, pim_only(8, CFG), BUNDLES["+tcp"], KernelCache(CFG)).lay
    static = request_bytes(lay_static, "static", 1000, 32768, mistral, 32)
    assert static == request_bytes(lay_static, "static", 1000, 4096, mistral, 32)


def test_moe_fc_work_runs_the_active_experts(kernel_cache_file: Path) -> None:
    """Mixtral on PIM: FC time per token between the dense Mistral's and 8x its FFN."""
    cache = KernelCache(CFG, kernel_cache_file)
    mixtral, mistral = load("mixtral-8x7b-v0.1"), load("mistral-7b-v0.1")
    fc = {}
    for m in (mixtral, mistral):
        sm = StepModel(m, pim_only(16, CFG), BUNDLES["pimphony"], cache)
        fc[m.family] = sm.stage([2048], m.layers, 16, last=False).parts["fc"]
    counts = {n: k for n, _, _, k in mixtral.fc_work()}
    assert counts["expert_up"] == 2 and counts["router"] == 1
    assert 1.5 * fc["mistral"] < fc["mixtral"] < 3.0 * fc["mistral"]
    # xPU+PIM (NPU reads weights once per batch): a batch of 32 touches nearly every expert
    assert mixtral.layer_weight_bytes_read(32) > 0.99 * 2 * mixtral.layer_params
    assert mixtral.layer_weight_bytes_read(1) < 0.3 * 2 * mixtral.layer_params
    with pytest.raises(PimphonyError, match="does not fit 2 pim-only modules"):
        StepModel(mixtral, pim_only(2, CFG), BUNDLES["pimphony"], cache).best(workloads.fixed(1024))
    cache.save()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["phi-2", "phi-3-mini-4k", "gemma-7b"])
def test_head_sizes_not_dividing_the_row_run(name: str, kernel_cache_file: Path) -> None:
    """head_dim 80 / 96 / 256 under baseline and pimphony: no traceback, and DPA's lazy chunks
    let more requests fit than the static reservation."""
    cache = KernelCache(CFG, kernel_cache_file)
    m = load(name)
    work = workloads.fixed(1024, n=1, output_tokens=64)
    fits = {}
    for tech in ("baseline", "pimphony"):
        sm = StepModel(m, pim_only(2, CFG), BUNDLES[tech], cache)
        assert sm.best(work).throughput_tokens_per_s > 0
        fits[tech] = sm.max_batch(work, 2, 1)[0]
    assert fits["pimphony"] >= fits["baseline"] > 0
    cache.save()


def test_head_dim_64_refused_by_dpa_only(kernel_cache_file: Path) -> None:
    """d_head 64: 16 K slots per row need a 20-word DYN_LOOP body, more than dpa.max_body_len;
    the static techniques run; a config with a longer body runs DPA too."""
    cache = KernelCache(CFG, kernel_cache_file)
    m = load("falcon-7b")
    with pytest.raises(PimphonyError, match="head_dim 64 unsupported by DPA memory.*max_body_len"):
        StepModel(m, pim_only(2, CFG), BUNDLES["pimphony"], cache)
    StepModel(m, pim_only(2, CFG), BUNDLES["+tcp+dcs"], cache)
    longer = CFG.with_overrides({"dpa": {"max_body_len": 32}})
    StepModel(m, pim_only(2, longer), BUNDLES["pimphony"], KernelCache(longer))


def test_bad_head_dims_and_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = json.loads((CONFIGS / "llama-3.1-8b.json").read_text())
    cases = [
        ({"head_dim": 100}, "head_dim 100 unsupported by the QK^T/SV layouts"),
        ({"num_key_value_heads": 5}, "not a multiple of kv_heads = 5"),
        ({"vocab_size": -3}, "vocab_size = -3 must be a positive integer"),
        ({"model_type": "llava", "text_config": {}}, "multimodal config"),
        ({"model_type": "qwen9"}, "model_type qwen9 is not modeled"),
        ({"quantization_config": {"bits": 4}}, "quantization_config: only bf16"),
        ({"intermediate_size": None}, "missing 'intermediate_size'"),
    ]
    for change, message in cases:
        p = tmp_path / "config.json"
        p.write_text(json.dumps(base | change))
        argv = ["simulate", "--model", str(p), "--system", "pim-only", "--modules", "8"]
        rc = main(argv + ["--context", "1000", "--kernel-cache", "none"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("pimphony: error:") == 1, (change, err)
        assert message in err and "Traceback" not in err, (change, err)


def test_context_beyond_window(capsys: pytest.CaptureFixture[str], kernel_cache_file: Path) -> None:
    argv = ["simulate", "--model", str(CONFIGS / "llama-2-70b.json"), "--system", "xpu-pim"]
    argv += ["--modules", "8", "--context", "8192", "--kernel-cache", str(kernel_cache_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "beyond llama-2-70b's context window of 4096" in err and "--allow-beyond-window" in err
    assert main(argv + ["--allow-beyond-window", "--json"]) == 0
    out = capsys.readouterr()
    assert "pimphony: warning:" in out.err
    assert json.loads(out.out)["resolved"]["model"]["context_window"] == 4096


def test_xpu_module_uses_the_config_channels() -> None:
    four = CFG.with_overrides({"module": {"channels": 16}})
    assert pim_only(1, four).channels == 16 and xpu_pim(1, four).channels == 32
    assert (
        pim_only(1, PRESETS["hbm3-pim"]).capacity_bytes
        == 32 * PRESETS["hbm3-pim"].geometry.channel_bytes
    )
