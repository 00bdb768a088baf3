"""Discrete-event serving simulation of one decode instance over a request trace.

* Arrivals from the trace (or all at 0, or Poisson: :meth:`Trace.with_arrivals`); a FCFS
  queue; iteration-level continuous batching: every decode step gives each running request one
  token, requests join and leave between steps (at most ``max_batch`` at once).
* Step time: :meth:`StepModel.round_stages` on the running requests' lengths — the same
  command-level kernel costs, TP/PP split and pipeline as the steady-state simulator. The
  kernels' costs depend on whole 16-token slots per channel, so the engine advances over
  *segments* of steps in which no request's slot count, KV chunk count or membership changes
  (step time constant; the near-memory softmax term, linear in length, is taken at the
  segment's middle).
* Prefill is disaggregated: a prefill instance (not modeled) computes the prompt's KV, which
  arrives over a link of ``link_bytes_per_s`` (one transfer at a time, Mooncake-style). On
  xPU+PIM it can instead run on the NPU (``prefill="npu"``): 2 FLOPs per weight per prompt token
  plus the attention FLOPs, at the NPUs' rate, and the decode batch waits meanwhile.
* KV admission at the fullest pipeline stage: STATIC reserves the window (or the longest
  request) per request at admission; DPA takes the prompt's chunks at admission and one chunk
  at a time as a request grows. When a DPA request needs a chunk and none is free, the most
  recently admitted request is preempted: its KV is dropped, it goes back to the head of the
  queue and, when admitted again, its context and the tokens it already produced are
  recomputed by the prefill instance and sent again over the link (vLLM's recompute policy).
* Every request is accounted for: ``completed`` or ``rejected`` with its reason (empty, beyond
  the model's window, beyond DPA's per-request table, larger than the whole KV capacity).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pymodel.system.errors import SystemSimError
from pymodel.system.memory import request_bytes, unit_tokens
from pymodel.system.simulate import MAX_BATCH, SimError, StepModel
from pymodel.system.traces import Request, Trace
from pymodel.system.workloads import Workload

PREFILL_LINK_BYTES_PER_S = 64e9  # prefill -> decode KV link (CXL-class, as the module link)
NEVER = math.inf


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = MAX_BATCH
    prefill: str = "link"  # "link": disaggregated prefill; "npu": on the xPU+PIM NPU
    link_bytes_per_s: float = PREFILL_LINK_BYTES_PER_S
    allow_beyond_window: bool = False


@dataclass
class Outcome:
    """What happened to one request of the trace."""

    req: Request
    status: str = "waiting"  # completed / rejected
    reason: str = ""
    admitted_s: float = math.nan  # first admission
    first_token_s: float = math.nan
    last_token_s: float = math.nan
    tokens: int = 0
    preemptions: int = 0

    @property
    def queue_s(self) -> float:
        return self.admitted_s - self.req.arrival_s

    @property
    def tpot_s(self) -> float:
        """Mean time between this request's output tokens (NaN with fewer than two)."""
        if self.tokens < 2:
            return math.nan
        return (self.last_token_s - self.first_token_s) / (self.tokens - 1)


@dataclass
class _Live:
    out: Outcome
    length: int  # tokens whose KV is held (context + produced)
    kv: int  # bytes held on the fullest stage
    ready_s: float  # its KV has arrived; it decodes from then on
    order: int  # admission order (the newest is preempted first)


@dataclass
class ServeResult:
    outcomes: list[Outcome]
    timeline: dict[str, list[float]]  # t_s, batch, kv_bytes at each segment start
    summary: dict[str, Any] = field(default_factory=dict)


class ServingSim:
    """Serve ``trace`` with ``sm`` (model, system, techniques, kernel cache)."""

    def __init__(self, sm: StepModel, opts: ServeOptions) -> None:
        self.sm, self.opts = sm, opts
        self.m = sm.model
        if opts.max_batch < 1:
            raise SystemSimError(f"--max-batch = {opts.max_batch} must be at least 1")
        if not opts.link_bytes_per_s > 0:
            raise SystemSimError(f"--link-gbps must be positive (got {opts.link_bytes_per_s})")
        if opts.prefill == "npu" and sm.system.fc_on_pim:
            raise SystemSimError("--prefill npu needs an NPU: use --system xpu-pim")
        if opts.prefill not in ("link", "npu"):
            raise SystemSimError(f"unknown --prefill '{opts.prefill}' (link, npu)")

    # ------------------------------------------------------------------ admission rules

    def _reason(self, r: Request) -> str:
        """Why ``r`` can never be served ('' when it can be tried)."""
        final = r.context + r.output
        if r.context == 0 or r.output == 0:
            return "empty: context or output is 0 tokens"
        if final > self.m.context_window and not self.opts.allow_beyond_window:
            return f"beyond_window: {final} tokens > context window {self.m.context_window}"
        lay = self.sm.lay
        if final > lay.max_tokens:
            return (
                f"too_long: {final} tokens > {lay.max_tokens} per request "
                "(dpa.max_chunks_per_request)"
            )
        return ""

    def _split(self, reqs: list[Request]) -> tuple[int, int, int]:
        """(tp, pp, t_max): the steady-state simulator's best split for these requests, or the
        split with the most KV room when not even the longest one fits beside the weights."""
        sm = self.sm
        work = Workload("trace", tuple(r.context for r in reqs), tuple(r.output for r in reqs))
        t_max = sm.t_max(work)
        try:
            best = sm.best(work)
            return best.tp, best.pp, t_max
        except SimError:
            room = [
                (tp * sm.system.module_bytes - sm.stage_weight_bytes(pp), tp, pp)
                for tp, pp in sm.splits()
            ]
            _, tp, pp = max(room)
            return tp, pp, t_max

    # ------------------------------------------------------------------ the simulation

    def run(self, trace: Trace, on_done: Callable[[int], None] | None = None) -> ServeResult:
        outs = [Outcome(r) for r in trace.requests]
        finish = _Finish(on_done)
        ok = []
        for o in outs:
            why = self._reason(o.req)
            if why:
                finish(o, "rejected", why)
            else:
                ok.append(o.req)
        tl: dict[str, list[float]] = {"t_s": [], "batch": [], "kv_bytes": []}
        if not ok:
            return ServeResult(outs, tl, self._summary(outs, tl, trace, 0, 0, 0, 0, 0))
        tp, pp, t_max = self._split(ok)
        run = _Run(self, tp, pp, t_max, finish, tl)
        run.arrivals.extend(o for o in outs if o.status == "waiting")
        run.loop()
        tl["t_s"].append(run.t)
        tl["batch"].append(0)
        tl["kv_bytes"].append(run.used)
        summary = self._summary(outs, tl, trace, tp, pp, run.preemptions, run.peak, run.cap)
        summary |= {"steps": run.steps, "segments": run.segments}
        return ServeResult(outs, tl, summary)

    def _npu_prefill_s(self, tokens: int, npu_flops: float) -> float:
        m = self.m
        fc = 2.0 * tokens * (m.layers * m.active_layer_params + m.vocab * m.hidden)
        attn = 2.0 * m.heads * m.d_head * sum(n * t * t for n, t in m.attended(tokens))
        return (fc + attn) / npu_flops

    def _summary(
        self,
        outs: list[Outcome],
        tl: dict[str, list[float]],
        trace: Trace,
        tp: int,
        pp: int,
        preemptions: int,
        peak: int,
        cap: int,
    ) -> dict[str, Any]:
        comp = [o for o in outs if o.status == "completed"]
        rej = [o for o in outs if o.status == "rejected"]
        reasons: dict[str, int] = {}
        for o in rej:
            key = o.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        tokens = sum(o.tokens for o in comp)
        start = min((o.req.arrival_s for o in comp), default=0.0)
        end = max((o.last_token_s for o in comp), default=0.0)
        span = end - start

        def pct(vals: list[float], q: float) -> float:
            v = [x for x in vals if not math.isnan(x)]
            return float(np.percentile(v, q)) if v else math.nan

        tpot = [1e3 * o.tpot_s for o in comp]
        queue = [1e3 * o.queue_s for o in comp]
        ttft = [1e3 * (o.first_token_s - o.req.arrival_s) for o in comp]
        batch = tl["batch"]
        durations = np.diff(tl["t_s"]) if len(tl["t_s"]) > 1 else np.zeros(0)
        mean_batch = (
            float(np.dot(batch[:-1], durations) / durations.sum()) if durations.sum() else 0.0
        )
        sm = self.sm
        return {
            "trace": trace.name,
            "trace_format": trace.fmt,
            "trace_sorted_rows": trace.sorted_rows,
            "model": self.m.name,
            "system": sm.system.name,
            "modules": sm.system.modules,
            "technique": sm.tech.name,
            "tp": tp,
            "pp": pp,
            "requests": len(outs),
            "completed": len(comp),
            "rejected": len(rej),
            "rejected_by_reason": reasons,
            "output_tokens": tokens,
            "makespan_s": span,
            "throughput_tokens_per_s": tokens / span if span > 0 else 0.0,
            "tpot_ms_p50": pct(tpot, 50),
            "tpot_ms_p90": pct(tpot, 90),
            "tpot_ms_p99": pct(tpot, 99),
            "queue_ms_p50": pct(queue, 50),
            "queue_ms_p99": pct(queue, 99),
            "ttft_ms_p50": pct(ttft, 50),
            "ttft_ms_p99": pct(ttft, 99),
            "preemptions": preemptions,
            "peak_kv_bytes": peak,
            "kv_capacity_bytes": cap,
            "peak_batch": max(batch, default=0),
            "mean_batch": mean_batch,
            "prefill": self.opts.prefill,
            "memory_policy": sm.tech.memory,
        }


class _Finish:
    """Marks an outcome final and reports the running count of final outcomes."""

    def __init__(self, on_done: Callable[[int], None] | None) -> None:
        self.on_done, self.done = on_done, 0

    def __call__(self, o: Outcome, status: str, reason: str = "") -> None:
        o.status, o.reason = status, reason
        self.done += 1
        if self.on_done is not None:
            self.on_done(self.done)


class _Run:
    """One run's event loop over the admitted trace, at split ``tp`` x ``pp``: arrivals, FCFS
    admission, DPA growth with preemption, and segments of equal-cost decode steps."""

    def __init__(
        self,
        sim: ServingSim,
        tp: int,
        pp: int,
        t_max: int,
        finish: _Finish,
        tl: dict[str, list[float]],
    ) -> None:
        sm, m = sim.sm, sim.m
        self.sm, self.opts, self.tp, self.pp, self.t_max = sm, sim.opts, tp, pp, t_max
        self.sim, self.finish, self.tl = sim, finish, tl
        self.policy = sm.tech.memory
        self.layers_s = -(-m.layers // pp)
        self.cap = tp * sm.system.module_bytes - sm.stage_weight_bytes(pp)
        self.link_per_token = m.kv_bytes_per_token() / sim.opts.link_bytes_per_s
        self.npu_flops = sm.system.modules * sm.system.npu_flops
        self.arrivals: deque[Outcome] = deque()
        self.waiting: deque[tuple[Outcome, int]] = deque()  # (outcome, tokens to restore)
        self.live: list[_Live] = []
        self.used = self.peak = self.order = 0
        self.t = self.link_free = 0.0
        self.preemptions = self.steps = self.segments = 0

    def kv(self, tokens: int) -> int:
        return request_bytes(
            self.sm.lay, self.policy, tokens, self.t_max, self.sim.m, self.layers_s
        )

    def loop(self) -> None:
        while self.arrivals or self.waiting or self.live:
            self.arrive()
            self.admit()
            running = [x for x in self.live if x.ready_s <= self.t]
            next_event = min(
                self.arrivals[0].req.arrival_s if self.arrivals else NEVER,
                min((x.ready_s for x in self.live if x.ready_s > self.t), default=NEVER),
            )
            if not running:
                if next_event == NEVER:
                    # nothing to wait for: the loop ends unless a request could never start
                    assert not self.waiting, "a waiting request fits no empty instance"
                    continue
                self.t = next_event
                continue
            if self.policy != "static":
                self.grow(running)
                running = [x for x in self.live if x.ready_s <= self.t]
                if not running:
                    continue
            self.segment(running, next_event)

    def arrive(self) -> None:
        """Queue the requests that have arrived; reject those whose KV can never fit."""
        while self.arrivals and self.arrivals[0].req.arrival_s <= self.t:
            o = self.arrivals.popleft()
            if self.kv(o.req.context + o.req.output) > self.cap:
                self.finish(
                    o,
                    "rejected",
                    f"exceeds_capacity: its KV alone needs more than the "
                    f"{self.cap / 2**30:.1f} GiB left beside the weights",
                )
            else:
                self.waiting.append((o, o.req.context))

    def admit(self) -> None:
        """Admit FCFS while the head of the queue fits; its KV arrives over the link (or the
        NPU computes it while the batch waits)."""
        while self.waiting and len(self.live) < self.opts.max_batch:
            o, length = self.waiting[0]
            need = self.kv(length + 1)
            if self.used + need > self.cap:
                break
            self.waiting.popleft()
            if math.isnan(o.admitted_s):
                o.admitted_s = self.t
            self.used += need
            self.peak = max(self.peak, self.used)
            if self.opts.prefill == "npu":
                self.t += self.sim._npu_prefill_s(length, self.npu_flops)
                ready = self.t
            else:
                self.link_free = max(self.t, self.link_free) + length * self.link_per_token
                ready = self.link_free
            self.live.append(_Live(o, length, need, ready, self.order))
            self.order += 1

    def grow(self, running: list[_Live]) -> None:
        """DPA (NeuPIMs rows alike): a request whose next token needs a new chunk (row) takes
        it or preempts the newest admitted request."""
        live = self.live
        for x in sorted(running, key=lambda x: x.order):
            if x not in live:
                continue
            grow = self.kv(x.length + 1) - x.kv
            while grow > 0 and self.used + grow > self.cap:
                self.preempt(max(live, key=lambda y: y.order))
                if x not in live:
                    break
            if x in live and grow > 0:
                x.kv += grow
                self.used += grow
                self.peak = max(self.peak, self.used)

    def preempt(self, victim: _Live) -> None:
        self.live.remove(victim)
        self.used -= victim.kv
        victim.out.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft((victim.out, victim.length))

    def segment(self, running: list[_Live], next_event: float) -> None:
        """The longest run of steps at one cost (no slot, chunk or membership change, none past
        the next event), at the step time of its middle step."""
        sm, t = self.sm, self.t
        split = sm.attention_split(len(running), self.tp)
        k = min(x.out.req.output - x.out.tokens for x in running)
        for x in running:
            k = min(k, sm.steps_same_cost(x.length, split))
            if self.policy != "static":
                unit = unit_tokens(sm.lay, self.policy)
                k = min(k, unit * -(-(x.length + 1) // unit) - x.length)
        mid = (k - 1) // 2
        step_s, _ = sm.round_stages(
            [x.length + mid for x in running], self.tp, self.pp, detail=False
        )
        if next_event < NEVER:
            k = max(1, min(k, math.ceil((next_event - t) / step_s)))
        self.tl["t_s"].append(t)
        self.tl["batch"].append(len(running))
        self.tl["kv_bytes"].append(self.used)
        for x in running:
            o = x.out
            if o.tokens == 0:
                o.first_token_s = t + step_s
            o.tokens += k
            o.last_token_s = t + k * step_s
            x.length += k
        self.t = t + k * step_s
        self.steps += k
        self.segments += 1
        for x in running:
            if x.out.tokens >= x.out.req.output:
                self.live.remove(x)
                self.used -= x.kv
                self.finish(x.out, "completed")
