"""Full-system simulator invariants and a tiny case against command-level runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pymodel.config import PRESETS
from pymodel.golden.kernels import QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import run_kernel
from pymodel.system import workloads
from pymodel.system.hf_config import from_hf_config
from pymodel.system.kernel_cost import NO_REFRESH_NREFI, KernelCache
from pymodel.system.models import TABLE_I, ModelError, ModelSpec, resolve_model
from pymodel.system.simulate import StepModel, roofline_tokens_per_s
from pymodel.system.systems import pim_only, xpu_pim
from pymodel.system.techniques import BUNDLES, bundle

CFG = PRESETS["aim-gddr6"]
M7 = TABLE_I["LLM-7B-128K-GQA"]


@pytest.fixture(scope="module")
def cache(kernel_cache_file: Path) -> Iterator[KernelCache]:
    kc = KernelCache(CFG, kernel_cache_file)
    yield kc
    kc.save()


@pytest.fixture(scope="module")
def work() -> workloads.Workload:
    return workloads.dataset("multifieldqa", n=64, seed=1)


def test_table_i_and_hf_config(tmp_path: Path) -> None:
    assert M7.group == 4 and M7.kv_heads == 8
    assert TABLE_I["LLM-72B-128K-GQA"].group == 8
    p = tmp_path / "config.json"
    p.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 4096,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "intermediate_size": 14336,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
            }
        )
    )
    m = from_hf_config(p)
    assert (m.hidden, m.kv_heads, m.d_head, m.ffn) == (4096, 8, 128, 14336)
    assert m.layer_params == M7.layer_params
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("LLM-9000B")


def test_dataset_sampling_is_seeded_and_bounded() -> None:
    a = workloads.dataset("qmsum", n=200, seed=3)
    assert a == workloads.dataset("qmsum", n=200, seed=3)
    st = workloads.DATASETS["qmsum"]
    assert min(a.context) >= st.min and max(a.context) <= st.max
    assert abs(sum(a.context) / 200 - st.mean) < 0.2 * st.mean


@pytest.mark.parametrize("tech", list(BUNDLES))
def test_invariants(cache: KernelCache, work: workloads.Workload, tech: str) -> None:
    sysm = pim_only(8, CFG)
    sm = StepModel(M7, sysm, BUNDLES[tech], cache)
    r = sm.best(work)
    assert r.throughput_tokens_per_s <= roofline_tokens_per_s(M7, sysm, work.lengths(r.batch))
    used, cap = sm.memory(work.finals(r.batch), r.tp, r.pp, sm.t_max(work))
    assert 0 < used <= cap
    assert 0 < r.mac_utilization <= 1 and 0 < r.capacity_utilization <= 1
    assert sum(r.channel_time.values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(r.time_s.values()) == pytest.approx(r.step_s)


def test_more_modules_never_slower_at_fixed_batch(
    cache: KernelCache, work: workloads.Workload
) -> None:
    for tech in ("baseline", "pimphony"):
        prev = 0.0
        for n in (8, 16):
            r = StepModel(M7, pim_only(n, CFG), BUNDLES[tech], cache).best(work, batch=4)
            assert r.batch == 4
            assert r.throughput_tokens_per_s >= prev
            prev = r.throughput_tokens_per_s


@pytest.mark.slow
def test_dpa_capacity_and_techniques_ordering(cache: KernelCache, work: workloads.Workload) -> None:
    """PIM-only: DPA holds more requests than static reservation. xPU+PIM (NeuPIMs-like): its
    free-row allocator is finer than DPA's 1 MB chunks, so it holds at least as many."""
    pim = {t: StepModel(M7, pim_only(8, CFG), bundle(t), cache).best(work) for t in BUNDLES}
    assert pim["pimphony"].max_batch > pim["+tcp+dcs"].max_batch
    xpu = {
        t: StepModel(M7, xpu_pim(4, CFG), bundle(t, "xpu-pim"), cache).best(work) for t in BUNDLES
    }
    assert xpu["+tcp+dcs"].max_batch >= xpu["pimphony"].max_batch
    assert xpu["+tcp"].throughput_tokens_per_s > xpu["baseline"].throughput_tokens_per_s
    assert xpu["baseline"].batch_limit == "capacity"


def test_tiny_case_equals_command_level_runs(cache: KernelCache) -> None:
    """One layer's attention of a tiny GQA model, 2 requests, TCP on one module: the model's
    per-channel refresh-free cycles equal the sum of the real kernels' command-level runs."""
    tiny = ModelSpec("tiny", 256, 1, 4, 2, 128, 512, 256, 4096)
    sysm = pim_only(1, CFG)
    lengths = [3000, 1700]
    for tech in ("+tcp", "+tcp+dcs"):
        t = BUNDLES[tech]
        sm = StepModel(tiny, sysm, t, cache)
        # the bundle's own hardware (dual-ported OBuf for DCS) and accumulator init
        nr = CFG.with_overrides(t.overrides).with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})
        kw = buffer_args(t.sched, nr) | {"acc_init": t.acc_init}
        expect = 0
        for n in lengths:
            tok = -(-n // sysm.channels)
            if t.gqa_row_reuse:
                qks = [QkKernel(tok, nr, group=tiny.group, **kw)]
            else:
                qks = [QkKernel(tok, nr, group=1, **kw)] * tiny.group
            svs = [SvKernel(-(-tok // 64) * 64, nr, **kw)] * tiny.group
            for k in qks + svs:
                expect += run_kernel(nr, t.sched, k.program()).stats.cycles
        got = sum(sm.pair_cost(n, sysm.channels).cycles for n in lengths) * tiny.kv_heads
        assert got == expect * tiny.kv_heads
        st = sm.stage(lengths, 1, 1, last=False)
        pim_s = expect * tiny.kv_heads * CFG.tck_ns * 1e-9
        # + refresh (a REF costs at most tRFC, a row cycle, a reopen and two mode switches per
        # nREFI) + the EPU reduction (small)
        t = CFG.timing
        ref_max = (t.nRFC + t.nRC + t.nRCD_MAC + 2 * (t.nMODCH + 1)) / t.nREFI
        assert pim_s <= st.parts["attention"] <= (1 + ref_max + 0.01) * pim_s
