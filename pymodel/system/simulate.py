"""One decode step of a batch on a PIM system, TP/PP search and batching (docs/system.md).

Step model (per pipeline stage of ``layers_s`` layers on ``tp`` modules, per micro-batch ``b``):

* FC (PIM-only): every FC GEMV is split by output rows over the stage's ``tp * channels``
  channels; each request is one GEMV (the GB holds one input vector). xPU+PIM: FC on the NPU,
  ``max(flops / npu_flops, weight bytes / module bandwidth)``.
* Attention on PIM. HFP: (request, KV head) pairs go round-robin to whole channels; the layer
  waits for the busiest channel. TCP: pairs go round-robin to modules and every channel of the
  module takes ``ceil(T / channels)`` of each pair's tokens; the EPU adds the ``channels``
  partial SV sums of each query head (charged at ``nmu_flops``). With fewer pairs than modules a
  pair's tokens also spread over ``tp // pairs`` modules (partial sums reduced over the link).
* Per pair: QK^T (GQA group in one kernel when the technique reuses the open row, else one kernel
  per query head) and one SV per query head. Kernel cycles come from :class:`KernelCache`
  (command-level runs); kernels of one channel run back to back; refresh adds
  ``busy / nREFI`` REFs at the kernels' measured penalty.
* KV append: per pair, the new token's K and V (:meth:`KernelCache.kv_append`, ``WR_BANK`` as
  :mod:`pymodel.decode` issues them) on the channel holding the pair's last chunk.
* Softmax, norms, residual: 5 flops per score, 10 per hidden element, on the near-memory unit.
* TP: two all-gathers per layer; PP: one hand-off per stage (link latency + bytes / bandwidth).
* The LM head runs on the last stage, which is therefore the slowest and sets the pipeline pace.

Pipeline: ``m = min(pp, batch)`` micro-batches; a round (every request gets one token) takes
``max(sum of the stage's micro-batch times, pp * slowest micro-batch time)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from pymodel.system.energy import step_energy_j
from pymodel.system.errors import SystemSimError
from pymodel.system.kernel_cost import KernelCache, KernelCost
from pymodel.system.memory import layout, request_bytes
from pymodel.system.models import ModelSpec
from pymodel.system.systems import PimSystem
from pymodel.system.techniques import Techniques
from pymodel.system.workloads import Workload

MAX_BATCH = 256  # batch searched up to this many requests
SOFTMAX_FLOPS_PER_SCORE = 5
VECTOR_FLOPS_PER_HIDDEN = 10  # two norms, residual adds, activation per hidden element


class SimError(SystemSimError):
    """An impossible configuration: names what does not fit and by how much."""


@dataclass
class StepResult:
    model: str
    workload: str
    system: str
    modules: int
    technique: str
    batch: int
    tp: int
    pp: int
    step_s: float  # one decode round: every request of the batch gets one token
    throughput_tokens_per_s: float
    token_latency_s: float
    mac_utilization: float
    capacity_utilization: float
    memory_used_bytes: int
    capacity_bytes: int
    mean_context: float
    time_s: dict[str, float] = field(default_factory=dict)  # fc / attention / other per round
    channel_time: dict[str, float] = field(default_factory=dict)  # mac/act_pre/ref/io/idle
    commands: dict[str, float] = field(default_factory=dict)  # per round, whole system
    energy_j_per_token: float = 0.0
    kernel_runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Stage:
    """Time and PIM work of one stage for one micro-batch (all its layers)."""

    seconds: float
    parts: dict[str, float]
    cost: KernelCost  # sum over every channel of the stage
    channels: int


class StepModel:
    """Decode-step model of ``model`` on ``system`` under ``tech`` (kernels from ``cache``)."""

    def __init__(
        self, model: ModelSpec, system: PimSystem, tech: Techniques, cache: KernelCache
    ) -> None:
        self.model, self.system, self.tech, self.cache = model, system, tech, cache
        self.cfg = system.cfg
        self.tck_s = self.cfg.tck_ns * 1e-9
        self.lay = layout(self.cfg, model.d_head)
        self._pair: dict[tuple[int, int], KernelCost] = {}
        self.pp_now = 1

    # ------------------------------------------------------------------ kernels

    def pair_cost(self, tokens: int, split: int) -> KernelCost:
        """One channel's attention work for one (request, KV head) pair of ``tokens`` tokens of
        which this channel holds ``ceil(tokens / split)``."""
        key = (tokens, split)
        hit = self._pair.get(key)
        if hit is not None:
            return hit
        m, kc, mode = self.model, self.cache, self.tech.sched
        t = -(-tokens // split)
        cfg = self.cfg
        max_group = max(1, cfg.buffers.gb_entries // (m.d_head // cfg.geometry.lanes))
        if self.tech.gqa_row_reuse:
            full, rest = divmod(m.group, max_group)
            cost = kc.qk(t, mode, m.d_head, max_group).scale(full) if full else KernelCost()
            if rest:
                cost = cost + kc.qk(t, mode, m.d_head, rest)
        else:
            cost = kc.qk(t, mode, m.d_head, 1).scale(m.group)
        cost = cost + kc.sv(t, mode, m.d_head).scale(m.group)
        self._pair[key] = cost
        return cost

    def _busy_s(self, cost: KernelCost) -> float:
        return cost.with_refresh(self.cfg.timing.nREFI).busy_cycles * self.tck_s

    # ------------------------------------------------------------------ one stage

    def stage(self, lengths: list[int], layers: int, tp: int, last: bool) -> _Stage:
        m, s = self.model, self.system
        b = len(lengths)
        ch = tp * s.channels
        parts = {"fc": 0.0, "attention": 0.0, "kv_append": 0.0, "other": 0.0}
        total = KernelCost()
        # FC
        if s.fc_on_pim:
            fc = KernelCost()
            for _, d_out, d_in in m.fc_shapes():
                fc = fc + self.cache.gemv(-(-d_out // ch), d_in, self.tech.sched)
            fc_layer = fc.scale(b)
            parts["fc"] += layers * self._busy_s(fc_layer)
            total = total + fc_layer.scale(layers * ch)
            if last:
                head = self.cache.gemv(-(-m.vocab // ch), m.hidden, self.tech.sched).scale(b)
                parts["fc"] += self._busy_s(head)
                total = total + head.scale(ch / self.pp_now)
        else:
            flops = 2.0 * b * m.layer_params
            wbytes = 2.0 * m.layer_params
            per_layer = max(flops / (tp * s.npu_flops), wbytes / (tp * s.npu_bytes_per_s))
            parts["fc"] += layers * per_layer
            if last:
                hb = 2.0 * m.vocab * m.hidden
                parts["fc"] += max(b * hb / (tp * s.npu_flops), hb / (tp * s.npu_bytes_per_s))
        # attention (one layer; all layers of the stage are alike)
        pairs = [(r, h) for r in range(b) for h in range(m.kv_heads)]
        append = self.cache.kv_append(self.tech.sched, m.d_head)  # per pair: the new token's K, V
        if self.tech.partition == "hfp":
            per_ch: dict[int, KernelCost] = defaultdict(KernelCost)
            appends: dict[int, int] = defaultdict(int)
            for k, (r, _) in enumerate(pairs):
                c = k % ch
                per_ch[c] = per_ch[c] + self.pair_cost(lengths[r], 1)
                appends[c] += 1
            loads = list(per_ch.values())
            attn_read = max((self._busy_s(c) for c in loads), default=0.0)
            attn = max(
                (self._busy_s(per_ch[c] + append.scale(appends[c])) for c in per_ch), default=0.0
            )
            layer_cost = sum(loads, KernelCost()) + append.scale(len(pairs))
            reduce_s = 0.0
        else:
            # fewer pairs than modules: a pair's tokens spread over `spread` modules too
            spread = max(1, tp // max(1, len(pairs)))
            homes = tp // spread
            per_mod: dict[int, KernelCost] = defaultdict(KernelCost)
            appends = defaultdict(int)
            for k, (r, _) in enumerate(pairs):
                pc = self.pair_cost(lengths[r], s.channels * spread)
                per_mod[k % homes] = per_mod[k % homes] + pc
                appends[k % homes] += 1
            attn_read = max((self._busy_s(c) for c in per_mod.values()), default=0.0)
            # a pair's new token goes to the channel of its last chunk: the module's appends
            # spread over its channels, the busiest one takes ceil(appends / channels)
            attn = max(
                (
                    self._busy_s(c + append.scale(-(-appends[k] // s.channels)))
                    for k, c in per_mod.items()
                ),
                default=0.0,
            )
            layer_cost = sum(per_mod.values(), KernelCost()).scale(s.channels * spread)
            layer_cost = layer_cost + append.scale(len(pairs))
            heads_per_mod = -(-len(pairs) // homes) * m.group
            reduce_s = s.channels * m.d_head * heads_per_mod / s.nmu_flops
            if spread > 1:  # partial SV sums of the other modules over the link
                msg = 4 * m.d_head * heads_per_mod
                reduce_s += s.link_latency_s + msg / s.link_bytes_per_s
        parts["attention"] += layers * (attn_read + reduce_s)
        parts["kv_append"] = layers * (attn - attn_read)
        total = total + layer_cost.scale(layers)
        # softmax, vector ops, communication
        scores = sum(lengths) * m.heads
        vec = SOFTMAX_FLOPS_PER_SCORE * scores + VECTOR_FLOPS_PER_HIDDEN * m.hidden * b
        other = layers * vec / (tp * s.nmu_flops)
        if tp > 1:
            msg = 2 * m.hidden * b
            other += layers * 2 * (s.link_latency_s + msg / s.link_bytes_per_s)
        other += s.link_latency_s + 2 * m.hidden * b / s.link_bytes_per_s  # stage hand-off
        parts["other"] += other
        return _Stage(sum(parts.values()), parts, total, ch)

    # ------------------------------------------------------------------ one configuration

    def memory(self, finals: list[int], tp: int, pp: int, t_max: int) -> tuple[int, int]:
        """(bytes used on the fullest stage, that stage's capacity)."""
        m, s = self.model, self.system
        layers_s = -(-m.layers // pp)
        weights = 2 * layers_s * m.layer_params + 2 * m.vocab * m.hidden
        kv = sum(
            request_bytes(self.lay, self.tech.memory, f, t_max, layers_s, m.kv_heads)
            for f in finals
        )
        return weights + kv, tp * s.module_bytes

    def step(self, work: Workload, batch: int, tp: int, pp: int) -> StepResult:
        m, s = self.model, self.system
        lengths = work.lengths(batch)
        layers_s = -(-m.layers // pp)
        n_mb = min(pp, batch)
        mbs = [lengths[i::n_mb] for i in range(n_mb)]
        self.pp_now = pp  # the LM head runs on one stage: its commands count once per round
        stages = [self.stage(mb, layers_s, tp, last=True) for mb in mbs]
        busy = sum(st.seconds for st in stages)
        round_s = max(busy, pp * max(st.seconds for st in stages))
        parts = {k: sum(st.parts[k] for st in stages) for k in stages[0].parts}
        parts["pipeline_bubble"] = round_s - busy
        cost = sum((st.cost for st in stages), KernelCost()).scale(pp)
        cost = cost.with_refresh(self.cfg.timing.nREFI)
        n_ch = s.modules * s.channels
        ch_cycles = round_s / self.tck_s * n_ch
        causes = cost.causes
        work_cycles = {
            "mac": causes["mac"],
            "act_pre": causes["act_pre"],
            "ref": causes["ref"],
            "io": causes["gb_write"] + causes["out_read"],
            "kv_write": causes["kv_write"],
            "other": causes["stall"] + causes["mode_switch"],
        }
        idle = max(0.0, ch_cycles - sum(work_cycles.values()))
        channel_time = {k: v / ch_cycles for k, v in work_cycles.items()}
        channel_time["idle"] = idle / ch_cycles
        macs = cost.command("MAC16")
        mac_util = macs * self.cfg.timing.nCCDL / ch_cycles if ch_cycles else 0.0
        used, cap = self.memory(work.finals(batch), tp, pp, self.t_max(work))
        live = m.weight_bytes + m.kv_bytes_per_token() * sum(lengths)
        commands = cost.commands
        energy = step_energy_j(commands, round_s, n_ch)
        return StepResult(
            model=m.name,
            workload=work.name,
            system=s.name,
            modules=s.modules,
            technique=self.tech.name,
            batch=batch,
            tp=tp,
            pp=pp,
            step_s=round_s,
            throughput_tokens_per_s=batch / round_s,
            token_latency_s=round_s,
            mac_utilization=mac_util,
            capacity_utilization=min(1.0, live / s.capacity_bytes),
            memory_used_bytes=used * pp,
            capacity_bytes=s.capacity_bytes,
            mean_context=sum(lengths) / len(lengths),
            time_s=parts,
            channel_time=channel_time,
            commands=commands,
            energy_j_per_token=energy / batch,
            kernel_runs=self.cache.exact_runs,
        )

    def t_max(self, work: Workload) -> int:
        """Tokens STATIC reserves per request: the model's window (or the longest request)."""
        return max(self.model.context_window, work.max_tokens)

    def max_batch(self, work: Workload, tp: int, pp: int, limit: int = MAX_BATCH) -> int:
        """Largest batch whose weights + KV fit every stage (0: not even one request)."""
        t_max = self.t_max(work)
        lo, hi = 0, limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            used, cap = self.memory(work.finals(mid), tp, pp, t_max)
            if used <= cap:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def splits(self) -> list[tuple[int, int]]:
        """(tp, pp) with tp * pp = modules and pp <= layers."""
        n = self.system.modules
        return [(n // p, p) for p in range(1, n + 1) if n % p == 0 and p <= self.model.layers]

    def shortfall(self, work: Workload) -> str:
        """Why not even one request fits, with the numbers."""
        best = None
        for tp, pp in self.splits():
            used, cap = self.memory(work.finals(1), tp, pp, self.t_max(work))
            if best is None or used - cap < best[0]:
                best = (used - cap, used, cap, tp, pp)
        assert best is not None
        over, used, cap, tp, pp = best
        gib = 1 << 30
        return (
            f"{self.model.name} does not fit {self.system.modules} {self.system.name} modules "
            f"with one request of {work.max_tokens} tokens under {self.tech.memory} memory: "
            f"needs {used / gib:.1f} GiB per stage, has {cap / gib:.1f} GiB "
            f"(short by {over / gib:.1f} GiB at TP={tp} PP={pp})"
        )

    def best(self, work: Workload, batch: int | None = None) -> StepResult:
        """The fastest (tp, pp) split and batch (the largest that fits, half of it, or one per
        pipeline stage; or exactly ``batch``)."""
        results: list[StepResult] = []
        for tp, pp in self.splits():
            cap_b = self.max_batch(work, tp, pp, MAX_BATCH if batch is None else batch)
            if cap_b == 0 or (batch is not None and cap_b < batch):
                continue
            tries = {cap_b} if batch is not None else {cap_b, max(1, cap_b // 2), min(cap_b, pp)}
            results += [self.step(work, b, tp, pp) for b in sorted(tries)]
        if not results:
            if batch is not None and self.max_batch(work, *self.splits()[0]) > 0:
                raise SimError(
                    f"batch {batch} does not fit {self.system.modules} {self.system.name} "
                    f"modules under {self.tech.memory} memory at any TP/PP split"
                )
            raise SimError(self.shortfall(work))
        return max(results, key=lambda r: r.throughput_tokens_per_s)


def roofline_tokens_per_s(model: ModelSpec, system: PimSystem, lengths: list[int]) -> float:
    """Upper bound: every byte of weights and live KV read once per round at the system's peak
    internal bandwidth (PIM-only) — no schedule can beat it."""
    kv = model.kv_bytes_per_token() * sum(lengths)
    w = 2 * model.layers * model.layer_params + 2 * model.vocab * model.hidden
    bw = system.internal_bytes_per_s
    if system.fc_on_pim:
        secs = (w * len(lengths) + kv) / bw
    else:
        secs = kv / bw
    return len(lengths) / secs if secs else math.inf
