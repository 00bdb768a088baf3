"""GPU references (A100-80GB, H100-SXM, H200): decode-step roofline with flash-decoding (KV
streamed once at achieved HBM bandwidth) and paged attention (KV held in 16-token pages),
tensor-parallel over all GPUs."""

from __future__ import annotations

from pymodel.system.models import ModelSpec
from pymodel.system.simulate import SimError, StepResult
from pymodel.system.systems import GpuSystem
from pymodel.system.workloads import Workload


def _fits(model: ModelSpec, gpu: GpuSystem, finals: list[int]) -> tuple[int, int]:
    pages = [-(-f // gpu.page_tokens) * gpu.page_tokens for f in finals]
    used = model.weight_bytes + sum(model.kv_bytes(p) for p in pages)
    return used, gpu.gpus * (gpu.memory_bytes - gpu.reserve_bytes)


def gpu_step(model: ModelSpec, gpu: GpuSystem, work: Workload, batch: int) -> StepResult:
    lengths = work.lengths(batch)
    bw = gpu.gpus * gpu.bytes_per_s * gpu.bw_efficiency
    flops = gpu.gpus * gpu.flops * gpu.flops_efficiency
    head = model.vocab * model.hidden
    w_read = model.layers * model.layer_weight_bytes_read(batch) + 2.0 * head
    fc_flops = 2.0 * batch * (model.layers * model.active_layer_params + head)
    fc = max(w_read / bw, fc_flops / flops)
    kv = sum(model.kv_bytes(t) for t in lengths)
    attended = sum(n * t for x in lengths for n, t in model.attended(x))  # layer-tokens
    attn_flops = 4.0 * model.heads * model.d_head * attended
    attn = max(kv / bw, attn_flops / flops)
    comm = 0.0
    if gpu.gpus > 1:
        msg = 2 * model.hidden * batch
        comm = model.layers * 2 * (gpu.nvlink_latency_s + msg / gpu.nvlink_bytes_per_s)
    step = fc + attn + comm
    used, cap = _fits(model, gpu, work.finals(batch))
    live = model.weight_bytes + kv
    useful = fc_flops + attn_flops
    return StepResult(
        model=model.name,
        workload=work.name,
        system="gpu",
        modules=gpu.gpus,
        technique=f"{gpu.name}:flash-decoding+paged",
        batch=batch,
        tp=gpu.gpus,
        pp=1,
        step_s=step,
        throughput_tokens_per_s=batch / step,
        token_latency_s=step,
        mac_utilization=useful / (gpu.gpus * gpu.flops * step),
        capacity_utilization=min(1.0, live / cap),
        memory_used_bytes=used,
        capacity_bytes=cap,
        mean_context=sum(lengths) / len(lengths),
        time_s={"fc": fc, "attention": attn, "other": comm},
    )


def gpu_best(model: ModelSpec, gpu: GpuSystem, work: Workload, batch: int | None) -> StepResult:
    """The largest batch that fits (no cap: memory grows with the batch, so doubling then
    bisecting finds it; the roofline's throughput only grows with the batch), or ``batch``."""

    def fits(b: int) -> bool:
        used, cap = _fits(model, gpu, work.finals(b))
        return used <= cap

    if batch is None:
        lo, hi = 0, 1
        while fits(hi):
            lo, hi = hi, 2 * hi
        hi -= 1
    else:
        lo, hi = 0, batch
    while lo < hi:
        mid = (lo + hi + 1) // 2
        used, cap = _fits(model, gpu, work.finals(mid))
        if used <= cap:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0 or (batch is not None and lo < batch):
        used, cap = _fits(model, gpu, work.finals(batch or 1))
        raise SimError(
            f"{model.name} with batch {batch or 1} does not fit {gpu.gpus} {gpu.name}: needs "
            f"{used / (1 << 30):.1f} GiB, has {cap / (1 << 30):.1f} GiB "
            f"(short by {(used - cap) / (1 << 30):.1f} GiB)"
        )
    res = gpu_step(model, gpu, work, lo)
    res.max_batch, res.batch_limit = lo, "capacity"
    return res
