"""Decode workloads of the steady-state simulator: dataset context-length statistics (paper
Table II) sampled with a seed, or fixed lengths. Request traces over time are
:mod:`pymodel.system.traces` (served by :mod:`pymodel.system.serving`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pymodel.system.errors import SystemSimError


class WorkloadError(SystemSimError):
    """A workload that cannot be used: names the dataset, file, line or field."""


@dataclass(frozen=True)
class LengthStats:
    mean: float
    std: float
    max: int
    min: int


# Paper Table II (input tokens).
DATASETS: dict[str, LengthStats] = {
    "qmsum": LengthStats(13966, 6182, 30456, 2651),
    "musique": LengthStats(16362, 1651, 17917, 6820),
    "multifieldqa": LengthStats(60780, 31025, 119480, 20333),
    "loogle-sd": LengthStats(50693, 26506, 109221, 13347),
}
DEFAULT_OUTPUT_TOKENS = 256  # decode length per request when the workload does not give one
DEFAULT_REQUESTS = 512  # requests sampled from a length distribution


@dataclass(frozen=True)
class Workload:
    """A pool of requests; the simulator decodes the first ``batch`` of them concurrently."""

    name: str
    context: tuple[int, ...]
    output: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.context:
            raise WorkloadError(f"workload {self.name}: no requests")
        if len(self.context) != len(self.output):
            raise WorkloadError(f"workload {self.name}: context/output lengths differ")

    @property
    def max_tokens(self) -> int:
        """Longest final sequence (context + output) in the pool."""
        return max(c + o for c, o in zip(self.context, self.output, strict=True))

    def lengths(self, batch: int) -> list[int]:
        """Sequence lengths of ``batch`` concurrent requests at mid-decode (context + half the
        output), cycling through the pool when ``batch`` exceeds it."""
        n = len(self.context)
        return [self.context[i % n] + self.output[i % n] // 2 for i in range(batch)]

    def finals(self, batch: int) -> list[int]:
        n = len(self.context)
        return [self.context[i % n] + self.output[i % n] for i in range(batch)]


def truncated_normal(
    stats: LengthStats, n: int, seed: int, rng: np.random.Generator | None = None
) -> list[int]:
    """``n`` lengths ~ N(mean, std) restricted to [min, max] (rejection sampling)."""
    rng = rng or np.random.default_rng(seed)
    out: list[int] = []
    while len(out) < n:
        x = rng.normal(stats.mean, stats.std, size=2 * n)
        x = x[(x >= stats.min) & (x <= stats.max)]
        out.extend(int(round(v)) for v in x[: n - len(out)])
    return out


def dataset(
    name: str, n: int = DEFAULT_REQUESTS, seed: int = 0, output_tokens: int = DEFAULT_OUTPUT_TOKENS
) -> Workload:
    key = name.lower()
    if key not in DATASETS:
        raise WorkloadError(f"unknown dataset '{name}' (available: {', '.join(DATASETS)})")
    ctx = truncated_normal(DATASETS[key], n, seed)
    return Workload(key, tuple(ctx), (output_tokens,) * n)


def fixed(context: int, n: int = 1, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> Workload:
    if context <= 0:
        raise WorkloadError(f"--context = {context} must be positive")
    return Workload(f"ctx{context}", (context,) * n, (output_tokens,) * n)


def varied(
    context: int,
    sigmas: float = 3.0,
    rel_std: float = 0.1,
    n: int = DEFAULT_REQUESTS,
    seed: int = 0,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Workload:
    """Lengths around ``context`` with std ``rel_std * context``, clipped at +-``sigmas`` std
    (the paper's context-scaling study varies lengths within +-3 sigma)."""
    std = rel_std * context
    lo, hi = max(1, int(context - sigmas * std)), int(context + sigmas * std)
    stats = LengthStats(context, std, hi, lo)
    return Workload(f"ctx{context}", tuple(truncated_normal(stats, n, seed)), (output_tokens,) * n)


def read_trace(path: str) -> Workload:
    """A request trace (:func:`pymodel.system.traces.read_trace`, any format) as a steady-state
    pool: the batch cycles through its rows from the first; arrival times are ignored. Used by
    sweeps; ``simulate --trace`` serves the trace over time instead."""
    from pymodel.system.traces import read_trace as read

    reqs = read(path).requests
    for r in reqs:
        if r.context == 0 or r.output == 0:
            raise WorkloadError(f"{path}:{r.line}: a request of 0 context or output tokens")
    return Workload(Path(path).stem, tuple(r.context for r in reqs), tuple(r.output for r in reqs))
