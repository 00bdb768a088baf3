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
  :mod:`pymodel.golden.decode` issues them) on the channel holding the pair's last chunk.
* Softmax, norms, residual: 5 flops per score, 10 per hidden element, on the near-memory unit.
* TP: two all-gathers per layer; PP: one hand-off per stage (link latency + bytes / bandwidth).
* The LM head runs on the last stage, which is therefore the slowest and sets the pipeline pace.

Sub-batch interleaving (xPU+PIM with dual row buffers, NeuPIMs): a micro-batch splits into two
sub-batches (requests alternately); the NPU runs one sub-batch's FC while the PIM attends the
other, so per stage ``max(F1 + F2, A1 + A2, F1 + A1, F2 + A2) + O1 + O2`` (F: NPU FC, A: PIM
attention and KV append, O: the rest, serial): the busier unit or the longer sub-batch chain
(the part ``subbatch_overlap`` of the breakdown is the time hidden, <= 0).

Pipeline: ``m = min(pp, batch)`` micro-batches; a round (every request gets one token) takes
``max(sum of the stage's micro-batch times, pp * slowest micro-batch time)``.

Batch search (:meth:`StepModel.best`): every (tp, pp) split, every batch from 1 to the largest
that fits (a full scan: throughput is not monotone in the batch), the limit that binds named in
the result: ``capacity`` (weights + KV of one more request do not fit a stage), ``request-table``
(DPA: the requests a module's dispatcher table holds, ``dpa.max_requests``) or ``max-batch`` (a
cap the caller set).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pymodel.system.energy import step_energy_j
from pymodel.system.errors import SystemSimError
from pymodel.system.kernel_cost import KernelCache, KernelCost
from pymodel.system.memory import layout, request_bytes
from pymodel.system.models import ModelSpec
from pymodel.system.systems import PimSystem
from pymodel.system.techniques import Techniques
from pymodel.system.workloads import Workload

MAX_BATCH = 256  # default cap of the serving simulation's running batch (``--max-batch``)
LIMITS = ("capacity", "request-table", "max-batch")
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
    batch_limit: str = ""  # what bounds the largest batch of the split (LIMITS)
    bundle: str = ""  # what the technique bundle is (e.g. cent-like, neupims-like)
    max_batch: int = 0  # that largest batch

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
        self.model, self.system, self.tech = model, system, tech
        self.cache = cache.variant(tech.overrides, tech.acc_init)  # the bundle's hardware
        self.cfg = self.cache.cfg
        self.tck_s = self.cfg.tck_ns * 1e-9
        self.lay = layout(self.cfg, model, tech.memory == "dpa")
        stage_in = 2 * max(d_in for _, _, d_in, _ in model.fc_work())
        if system.fc_on_pim and stage_in > self.cfg.module.gpr_bytes:
            raise SimError(
                f"module.gpr_bytes = {self.cfg.module.gpr_bytes} cannot stage one FC input "
                f"vector of {stage_in} bytes ({model.name})"
            )
        self._pair: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        self._fc: dict[int, KernelCost] = {}
        self._head: dict[int, KernelCost] = {}
        self._append = self.cache.kv_append(tech.sched, model.d_head)  # per pair: new K, V
        self._assign: dict[tuple[int, int], np.ndarray] = {}
        self.pp_now = 1

    # ------------------------------------------------------------------ kernels

    def pair_key(self, tokens: int, split: int) -> int:
        """Kernel-cost key of a pair of ``tokens`` tokens split ``split`` ways: QK^T costs whole
        16-token slots and SV 64-token quanta of the channel's ``ceil(tokens / split)``, so the
        cost depends on the slot count only."""
        per_channel = -(-tokens // split)
        return -(-per_channel // self.cfg.geometry.banks)

    def pair_cost(self, tokens: int, split: int) -> KernelCost:
        """One channel's attention work for one (request, KV head) pair of ``tokens`` tokens of
        which this channel holds ``ceil(tokens / split)``."""
        m, kc, mode = self.model, self.cache, self.tech.sched
        t = self.pair_key(tokens, split) * self.cfg.geometry.banks
        if self.tech.gqa_row_reuse:
            cost = kc.qk_group(t, mode, m.d_head, m.group)
        else:
            cost = kc.qk(t, mode, m.d_head, 1).scale(m.group)
        return cost + kc.sv(t, mode, m.d_head).scale(m.group)

    def attention_split(self, batch: int, tp: int) -> int:
        """Channels one pair's tokens are split over: HFP 1; TCP a module's channels, times the
        modules a pair spreads over when there are fewer pairs than modules."""
        if self.tech.partition == "hfp":
            return 1
        return self.system.channels * max(1, tp // max(1, batch * self.model.kv_heads))

    def steps_same_cost(self, length: int, split: int) -> int:
        """Decode steps from ``length`` (this one included) over which a pair's kernel costs stay
        the same: until the channel's slot count (:meth:`pair_key`) grows, or forever once every
        layer is a sliding-window layer past its window."""
        m = self.model
        if m.local_layers == m.layers and length >= m.sliding_window:
            return 1 << 40
        unit = self.cfg.geometry.banks * split
        return unit * -(-length // unit) - length + 1

    def _pair_vec(self, tokens: int, split: int) -> tuple[np.ndarray, float]:
        key = (self.pair_key(tokens, split), split)
        hit = self._pair.get(key)
        if hit is None:
            c = self.pair_cost(tokens, split)
            hit = (np.array(c.values), c.refresh_penalty_cycles)
            self._pair[key] = hit
        return hit

    def _busy_s(self, cost: KernelCost) -> float:
        return cost.with_refresh(self.cfg.timing.nREFI).busy_cycles * self.tck_s

    def _busy_vec_s(self, cycles: np.ndarray, pen: np.ndarray) -> np.ndarray:
        """:meth:`_busy_s` of many summed costs: refreshes at ``busy / nREFI``, ``pen`` each."""
        n_refi = self.cfg.timing.nREFI
        scale = np.where(pen < n_refi, n_refi / np.maximum(n_refi - pen, 1e-9), 1.0)
        return cycles * scale * self.tck_s

    def _fc_layer(self, ch: int) -> KernelCost:
        """One request's FC GEMVs of an average layer, split by output rows over ``ch``."""
        hit = self._fc.get(ch)
        if hit is None:
            hit = KernelCost()
            for _, d_out, d_in, n in self.model.fc_work():
                hit = hit + self.cache.gemv(-(-d_out // ch), d_in, self.tech.sched).scale(n)
            self._fc[ch] = hit
        return hit

    def _lm_head(self, ch: int) -> KernelCost:
        hit = self._head.get(ch)
        if hit is None:
            m = self.model
            hit = self.cache.gemv(-(-m.vocab // ch), m.hidden, self.tech.sched)
            self._head[ch] = hit
        return hit

    def _assignment(self, b: int, slots: int) -> np.ndarray:
        """(slots x b) pairs of each request on each slot: pair k = r * kv_heads + h goes to
        slot ``k % slots`` (round robin)."""
        key = (b, slots)
        hit = self._assign.get(key)
        if hit is None:
            kv = self.model.kv_heads
            k = np.arange(b * kv)
            hit = np.zeros((slots, b))
            np.add.at(hit, (k % slots, k // kv), 1.0)
            self._assign[key] = hit
        return hit

    def _attention(
        self, lengths: list[int], tp: int, detail: bool
    ) -> tuple[float, float, KernelCost, float]:
        """One layer's attention over ``lengths`` attended tokens: (busiest unit's read seconds,
        with the KV appends, summed cost over every channel (``detail`` only), EPU reduction
        seconds)."""
        m, s = self.model, self.system
        b, ch = len(lengths), tp * s.channels
        append = self._append
        pairs = b * m.kv_heads
        split = self.attention_split(b, tp)
        if self.tech.partition == "hfp":
            slots, per_slot_ch = ch, 1  # pairs round robin over whole channels
        else:
            slots, per_slot_ch = tp // (split // s.channels), s.channels
        vecs = [self._pair_vec(t, split) for t in lengths]
        if pairs <= slots and not detail:  # one pair per slot: the busiest pair decides
            return self._attention_sparse(vecs, per_slot_ch) + (KernelCost(), self._reduce_s(b, tp))
        pens = np.array([p for _, p in vecs])
        per_req = np.array([v[0] for v, _ in vecs])
        # pair k = r * kv_heads + h goes to slot k % slots (round robin)
        k = np.arange(pairs)
        slot_of, req_of = k % slots, k // m.kv_heads
        n_slots = min(slots, pairs)
        cyc = np.bincount(slot_of, weights=per_req[req_of], minlength=n_slots)
        pen_w = np.bincount(slot_of, weights=(pens * per_req)[req_of], minlength=n_slots)
        pen = np.divide(pen_w, cyc, out=np.zeros_like(cyc), where=cyc > 0)
        attn_read = float(self._busy_vec_s(cyc, pen).max())
        # a pair's new token goes to the channel of its last chunk: a slot's appends spread
        # over its channels, the busiest one takes ceil(appends / channels)
        n_app = np.ceil(np.bincount(slot_of, minlength=n_slots) / per_slot_ch)
        cyc_a = cyc + n_app * append.cycles
        pen_a = np.divide(
            pen_w + n_app * append.cycles * append.refresh_penalty_cycles,
            cyc_a,
            out=np.zeros_like(cyc_a),
            where=cyc_a > 0,
        )
        attn = float(self._busy_vec_s(cyc_a, pen_a).max())
        layer_cost = KernelCost()
        if detail:
            vals = np.array([v for v, _ in vecs])  # b x FIELDS
            load = self._assignment(b, slots) @ vals  # slots x FIELDS
            total_vals = tuple(float(x) for x in load.sum(axis=0) * split)
            tot_pen = float(pen_w.sum() / cyc.sum()) if cyc.sum() else 0.0
            layer_cost = KernelCost(total_vals, tot_pen) + append.scale(pairs)
        return attn_read, attn, layer_cost, self._reduce_s(b, tp)

    def _attention_sparse(
        self, vecs: list[tuple[np.ndarray, float]], per_slot_ch: int
    ) -> tuple[float, float]:
        """:meth:`_attention`'s two times when every slot holds at most one pair (the same
        arithmetic without the assignment matrix)."""
        n_refi, tck = self.cfg.timing.nREFI, self.tck_s
        a_cyc = self._append.cycles * -(-1 // per_slot_ch)
        a_pen = self._append.refresh_penalty_cycles
        read = with_app = 0.0
        for v, pen in vecs:
            c = float(v[0])
            read = max(read, c * (n_refi / (n_refi - pen) if pen < n_refi else 1.0))
            ca = c + a_cyc
            pa = (pen * c + a_pen * a_cyc) / ca if ca else 0.0
            with_app = max(with_app, ca * (n_refi / (n_refi - pa) if pa < n_refi else 1.0))
        return read * tck, with_app * tck

    def _reduce_s(self, b: int, tp: int) -> float:
        """TCP: the EPU adds the channels' partial SV sums (and other modules' over the link)."""
        m, s = self.model, self.system
        if self.tech.partition == "hfp":
            return 0.0
        pairs = b * m.kv_heads
        split = self.attention_split(b, tp)
        slots = tp // (split // s.channels)
        heads_per_slot = -(-pairs // slots) * m.group
        reduce_s = s.channels * m.d_head * heads_per_slot / s.nmu_flops
        if split > s.channels:  # partial SV sums of the other modules over the link
            msg = 4 * m.d_head * heads_per_slot
            reduce_s += s.link_latency_s + msg / s.link_bytes_per_s
        return reduce_s

    # ------------------------------------------------------------------ one stage

    def stage(
        self, lengths: list[int], layers: int, tp: int, last: bool, detail: bool = True
    ) -> _Stage:
        """Time of one micro-batch on one stage; ``detail``: also the stage's summed kernel
        cost (commands, causes) for breakdowns and energy. Sub-batch interleaving: see the
        module docstring."""
        n_sub = min(self.system.sub_batches, len(lengths))
        if n_sub <= 1:
            return self._stage_one(lengths, layers, tp, last, detail)
        subs = [self._stage_one(lengths[i::n_sub], layers, tp, last, detail) for i in range(n_sub)]
        npu = [st.parts["fc"] for st in subs]
        pim = [st.parts["attention"] + st.parts["kv_append"] for st in subs]
        chains = max(f + a for f, a in zip(npu, pim, strict=True))
        busy = max(sum(npu), sum(pim), chains)
        parts = {k: sum(st.parts[k] for st in subs) for k in subs[0].parts}
        parts["subbatch_overlap"] = busy - sum(npu) - sum(pim)
        cost = sum((st.cost for st in subs), KernelCost())
        return _Stage(sum(parts.values()), parts, cost, subs[0].channels)

    def _stage_one(
        self, lengths: list[int], layers: int, tp: int, last: bool, detail: bool
    ) -> _Stage:
        m, s = self.model, self.system
        b = len(lengths)
        ch = tp * s.channels
        parts = {"fc": 0.0, "attention": 0.0, "kv_append": 0.0, "other": 0.0}
        if s.sub_batches > 1:
            parts["subbatch_overlap"] = 0.0
        total = KernelCost()
        # FC
        if s.fc_on_pim:
            # busy time is linear in the work: b requests take b times one request's GEMVs
            fc_one, head_one = self._fc_layer(ch), self._lm_head(ch)
            parts["fc"] += layers * b * self._busy_s(fc_one)
            if last:
                parts["fc"] += b * self._busy_s(head_one)
            if detail:
                total = total + fc_one.scale(b * layers * ch)
                if last:
                    total = total + head_one.scale(b * ch / self.pp_now)
        else:
            flops = 2.0 * b * m.active_layer_params
            wbytes = m.layer_weight_bytes_read(b)
            per_layer = max(flops / (tp * s.npu_flops), wbytes / (tp * s.npu_bytes_per_s))
            parts["fc"] += layers * per_layer
            if last:
                hb = 2.0 * m.vocab * m.hidden
                parts["fc"] += max(b * hb / (tp * s.npu_flops), hb / (tp * s.npu_bytes_per_s))
        # attention: global layers see every token, sliding-window layers at most the window
        scores = 0.0
        for n, cap in ((1.0 - m.local_layers / m.layers, 0), (m.local_layers / m.layers, 1)):
            if n == 0:
                continue
            att = [min(t, m.sliding_window) for t in lengths] if cap else lengths
            read, with_app, cost, reduce_s = self._attention(att, tp, detail)
            k = layers * n
            parts["attention"] += k * (read + reduce_s)
            parts["kv_append"] += k * (with_app - read)
            if detail:
                total = total + cost.scale(k)
            scores += n * sum(att) * m.heads
        # softmax, vector ops, communication
        vec = SOFTMAX_FLOPS_PER_SCORE * scores + VECTOR_FLOPS_PER_HIDDEN * m.hidden * b
        other = layers * vec / (tp * s.nmu_flops)
        if tp > 1:
            msg = 2 * m.hidden * b
            other += layers * 2 * (s.link_latency_s + msg / s.link_bytes_per_s)
        other += s.link_latency_s + 2 * m.hidden * b / s.link_bytes_per_s  # stage hand-off
        parts["other"] += other
        return _Stage(sum(parts.values()), parts, total, ch)

    def round_stages(
        self, lengths: list[int], tp: int, pp: int, detail: bool = True
    ) -> tuple[float, list[_Stage]]:
        """One decode round of ``lengths`` (every request gets one token) at ``tp`` x ``pp``:
        its seconds and the stage of each micro-batch. The serving simulator steps with this
        (``detail`` False: times only)."""
        layers_s = -(-self.model.layers // pp)
        n_mb = min(pp, len(lengths))
        self.pp_now = pp  # the LM head runs on one stage: its commands count once per round
        stages = [
            self.stage(lengths[i::n_mb], layers_s, tp, last=True, detail=detail)
            for i in range(n_mb)
        ]
        busy = sum(st.seconds for st in stages)
        return max(busy, pp * max(st.seconds for st in stages)), stages

    # ------------------------------------------------------------------ one configuration

    def memory(self, finals: list[int], tp: int, pp: int, t_max: int) -> tuple[int, int]:
        """(bytes used on the fullest stage, that stage's capacity)."""
        m, s = self.model, self.system
        layers_s = -(-m.layers // pp)
        kv = sum(request_bytes(self.lay, self.tech.memory, f, t_max, m, layers_s) for f in finals)
        return self.stage_weight_bytes(pp) + kv, tp * s.module_bytes

    def stage_weight_bytes(self, pp: int) -> int:
        """Weights of the fullest stage (its layers and the LM head)."""
        m = self.model
        return 2 * -(-m.layers // pp) * m.layer_params + 2 * m.vocab * m.hidden

    def step(self, work: Workload, batch: int, tp: int, pp: int) -> StepResult:
        m, s = self.model, self.system
        lengths = work.lengths(batch)
        round_s, stages = self.round_stages(lengths, tp, pp)
        busy = sum(st.seconds for st in stages)
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
        live = m.weight_bytes + sum(m.kv_bytes(t) for t in lengths)
        commands = cost.commands
        energy = step_energy_j(commands, round_s, n_ch)
        return StepResult(
            model=m.name,
            workload=work.name,
            system=s.name,
            modules=s.modules,
            technique=self.tech.name,
            bundle=self.tech.label,
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

    def fits(self, work: Workload, batch: int, tp: int, pp: int) -> bool:
        used, cap = self.memory(work.finals(batch), tp, pp, self.t_max(work))
        return used <= cap

    def requests_per_module(self, batch: int, tp: int) -> int:
        """Requests whose streams one module of a stage holds: its round-robin share of the
        (request, KV head) pairs, each pair from a distinct request while pairs < requests."""
        return min(batch, -(-batch * self.model.kv_heads // tp))

    def max_batch(
        self, work: Workload, tp: int, pp: int, cap: int | None = None
    ) -> tuple[int, str]:
        """Largest batch whose weights + KV fit every stage (0: not even one request), within
        the DPA request table and ``cap``; and the limit that binds (:data:`LIMITS`)."""
        if not self.fits(work, 1, tp, pp):
            return 0, "capacity"
        hi = 1  # memory grows with the batch: double past the capacity, then bisect
        while self.fits(work, 2 * hi, tp, pp) and (cap is None or hi < cap):
            hi *= 2
        lo, hi = hi, 2 * hi - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(work, mid, tp, pp):
                lo = mid
            else:
                hi = mid - 1
        best, limit = lo, "capacity"
        if self.tech.memory == "dpa":
            table = self.cfg.dpa.max_requests
            while best > 0 and self.requests_per_module(best, tp) > table:
                best, limit = best - 1, "request-table"
        if cap is not None and cap < best:
            best, limit = cap, "max-batch"
        return best, limit

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

    def round_s(self, work: Workload, batch: int, tp: int, pp: int) -> float:
        """Seconds of one decode round at ``batch`` (times only: the batch scan)."""
        return self.round_stages(work.lengths(batch), tp, pp, detail=False)[0]

    def best(
        self, work: Workload, batch: int | None = None, max_batch: int | None = None
    ) -> StepResult:
        """The fastest (tp, pp) split and batch: every batch from 1 to the largest that fits
        (see the module docstring; ``max_batch`` caps it), or exactly ``batch``."""
        best: tuple[float, int, int, int, int, str] | None = None
        for tp, pp in self.splits():
            top, limit = self.max_batch(work, tp, pp, max_batch if batch is None else batch)
            if top == 0 or (batch is not None and top < batch):
                continue
            for b in [batch] if batch is not None else range(1, top + 1):
                tput = b / self.round_s(work, b, tp, pp)
                if best is None or tput > best[0]:
                    best = (tput, b, tp, pp, top, limit)
        if best is None:
            if batch is not None and self.max_batch(work, *self.splits()[0])[0] > 0:
                raise SimError(
                    f"batch {batch} does not fit {self.system.modules} {self.system.name} "
                    f"modules under {self.tech.memory} memory at any TP/PP split"
                )
            raise SimError(self.shortfall(work))
        _, b, tp, pp, top, limit = best
        res = self.step(work, b, tp, pp)
        res.max_batch, res.batch_limit = top, limit
        return res


def roofline_tokens_per_s(model: ModelSpec, system: PimSystem, lengths: list[int]) -> float:
    """Upper bound: every byte of weights and live KV read once per round at the system's peak
    internal bandwidth (PIM-only) — no schedule can beat it."""
    kv = sum(model.kv_bytes(t) for t in lengths)
    w = 2 * model.layers * model.active_layer_params + 2 * model.vocab * model.hidden
    bw = system.internal_bytes_per_s
    if system.fc_on_pim:
        secs = (w * len(lengths) + kv) / bw
    else:
        secs = kv / bw
    return len(lengths) / secs if secs else math.inf
