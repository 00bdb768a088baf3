"""Baselines as their authors built them (CENT-like, NeuPIMs-like), NeuPIMs' sub-batch
interleaving and free-row KV allocation, the batch search and the DCS study."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pymodel.config import PRESETS
from pymodel.golden.dpa import DpaLayout
from pymodel.golden.kernels import QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import Mode, run_kernel
from pymodel.system import dcs_study, workloads
from pymodel.system.kernel_cost import NO_REFRESH_NREFI, KernelCache
from pymodel.system.memory import request_bytes
from pymodel.system.models import TABLE_I
from pymodel.system.simulate import StepModel
from pymodel.system.systems import PimSystem, pim_only, xpu_pim
from pymodel.system.techniques import BUNDLE_NAMES, TechniqueError, bundle

CFG = PRESETS["aim-gddr6"]
M7 = TABLE_I["LLM-7B-128K-GQA"]


@pytest.fixture(scope="module")
def cache(kernel_cache_file: Path) -> Iterator[KernelCache]:
    kc = KernelCache(CFG, kernel_cache_file)
    yield kc
    kc.save()


def test_each_system_has_its_own_baseline() -> None:
    cent, neu = bundle("baseline"), bundle("baseline", "xpu-pim")
    assert (cent.label, neu.label) == ("cent-like", "neupims-like")
    assert bundle("neupims-like", "xpu-pim") is neu
    assert (cent.memory, neu.memory) == ("static", "rows")
    assert not cent.gqa_row_reuse and not neu.gqa_row_reuse  # K/V re-streamed per query head
    assert cent.overrides == {} and neu.overrides["sched"]["blocking_rd_mac"] is False
    # the pimphony bundles on xPU+PIM build on the NeuPIMs-like system
    assert bundle("+tcp", "xpu-pim").memory == "rows"
    assert bundle("+tcp", "xpu-pim").overrides == neu.overrides
    for system in ("pim-only", "xpu-pim"):
        top = bundle("pimphony", system)
        assert top.memory == "dpa" and top.acc_init == "clear"
        assert top.overrides["buffers"]["obuf_dual_port"] is True
    with pytest.raises(TechniqueError, match="cent-like"):
        bundle("neupims-like")


def test_neupims_rows_are_finer_than_dpa_chunks() -> None:
    lay = DpaLayout.of(CFG, M7.d_head)
    for tokens in (1, lay.block_tokens, lay.block_tokens + 1, 60_000):
        rows = request_bytes(lay, "rows", tokens, 131072, M7, M7.layers)
        dpa = request_bytes(lay, "dpa", tokens, 131072, M7, M7.layers)
        blocks = -(-tokens // lay.block_tokens)
        assert rows == blocks * 2 * lay.row_bytes * M7.kv_heads * M7.layers
        assert rows <= dpa


@pytest.mark.slow
def test_subbatch_interleaving_overlaps_npu_fc_and_pim_attention(cache: KernelCache) -> None:
    lengths = [40_000, 20_000, 30_000, 10_000]
    tech = bundle("baseline", "xpu-pim")
    inter = StepModel(M7, xpu_pim(4, CFG), tech, cache)
    serial_sys = PimSystem(**{**xpu_pim(4, CFG).__dict__, "sub_batches": 1})
    serial = StepModel(M7, serial_sys, tech, cache)
    st = inter.stage(lengths, 8, 4, last=False, detail=False)
    subs = [serial.stage(lengths[i::2], 8, 4, last=False, detail=False) for i in range(2)]
    npu = [s.parts["fc"] for s in subs]
    pim = [s.parts["attention"] + s.parts["kv_append"] for s in subs]
    rest = sum(s.parts["other"] for s in subs)
    want = max(sum(npu), sum(pim), max(f + a for f, a in zip(npu, pim, strict=True)))
    assert st.seconds == pytest.approx(want + rest)
    assert st.parts["subbatch_overlap"] < 0  # something was hidden
    assert st.seconds < sum(s.seconds for s in subs)


@pytest.mark.slow
def test_batch_search_is_a_full_scan(cache: KernelCache) -> None:
    """The chosen batch is the best of every batch that fits, and the binding limit is named."""
    work = workloads.fixed(8192, 64)
    sm = StepModel(M7, pim_only(8, CFG), bundle("+tcp+dcs"), cache)
    res = sm.best(work)
    assert res.batch_limit == "capacity" and res.max_batch >= res.batch
    assert not sm.fits(work, res.max_batch + 1, res.tp, res.pp)
    tputs = {b: b / sm.round_s(work, b, res.tp, res.pp) for b in range(1, res.max_batch + 1)}
    assert res.batch == max(tputs, key=lambda b: tputs[b])
    capped = sm.best(work, max_batch=3)
    assert capped.batch <= 3 and capped.batch_limit == "max-batch"


def test_dpa_request_table_binds(cache: KernelCache) -> None:
    small = CFG.with_overrides({"dpa": {"max_requests": 4}})
    sm = StepModel(M7, pim_only(8, small), bundle("pimphony"), KernelCache(small))
    work = workloads.fixed(4096, 64)
    top, limit = sm.max_batch(work, 8, 1)
    assert limit == "request-table"
    assert sm.requests_per_module(top, 8) <= 4 < sm.requests_per_module(top + 1, 8)


@pytest.mark.slow
def test_dcs_study_costs_equal_command_level_runs(cache: KernelCache) -> None:
    """Each mode's attention cost (refresh-free) is the sum of its real kernels' runs on that
    mode's hardware."""
    shape = ("attention", 2, 128, 1024)
    for mode in Mode:
        kc = dcs_study.mode_cache(cache, mode, 32, 4)
        nr = kc.cfg.with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})
        kw = buffer_args(mode, nr) | {"acc_init": kc.acc_init}
        progs = [QkKernel(1024, nr, group=2, **kw)] + [SvKernel(1024, nr, **kw)] * 2
        want = sum(run_kernel(nr, mode, k.program()).stats.cycles for k in progs)
        assert dcs_study.kernel_cost(kc, mode, shape).cycles == want
    assert dcs_study.mode_cache(cache, Mode.DCS).cfg.buffers.obuf_dual_port
    assert not dcs_study.mode_cache(cache, Mode.STATIC).cfg.buffers.obuf_dual_port
    assert list(BUNDLE_NAMES)[0] == "baseline"


def test_gpu_batch_is_not_capped() -> None:
    """The GPU reference takes the largest batch that fits, past the serving default of 256."""
    from pymodel.system.gpu import _fits, gpu_best
    from pymodel.system.systems import gpu_system

    gpu, work = gpu_system("h200", 8), workloads.fixed(1024, 64)
    res = gpu_best(M7, gpu, work, None)
    assert res.batch > 256 and res.batch_limit == "capacity"
    used, cap = _fits(M7, gpu, work.finals(res.batch + 1))
    assert used > cap
