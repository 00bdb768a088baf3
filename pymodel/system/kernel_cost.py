"""Kernel costs from the command-level reference schedulers, cached and extrapolated.

Every cycle the full-system simulator charges to a PIM channel comes from
:func:`pymodel.sched.run_kernel` on a :mod:`pymodel.kernels` instruction stream. Long kernels are
not run in full: a kernel is periodic in its *unit* (QK^T: slots of 16 tokens, period one K row;
SV: 16-token score entries, period one 1024-token block; GEMV: input tiles, then OBuf blocks of
output groups), so

    cost(n) = exact(n0 + r) + (n - n0 - r) / P * (exact(n0 + P) - exact(n0))

with ``r = (n - n0) mod P`` (the ragged tail is part of an exact run). Refresh is not periodic in
the unit, so the calibration runs use a refresh-free copy of the config and the refresh cost is
added separately: a *penalty per refresh* (extra cycles one REF costs this kernel: PREA, nRFC, the
row re-open and the lost pipeline) measured once per kernel family from a run with refresh on, and
``refreshes = busy / nREFI`` at the channel level (see :meth:`KernelCost.with_refresh`).
``tests/test_system_kernel_cost.py`` checks the result against full command-level runs with
refresh on (the maximum error is in docs/system.md).

Convention (as ``pymodel.kernel_study``): STATIC models the AiM baseline with one accumulator per
bank; PINGPONG and DCS use every OBuf entry of the config.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pymodel.config import PimConfig
from pymodel.kernels import GemvKernel, QkKernel, SvKernel
from pymodel.sched import CAUSES, Mode, run_kernel

COMMANDS = ("ACT16", "PREA", "MAC16", "WRGB", "RDMAC", "CLRMAC", "REF")
FIELDS = ("cycles",) + tuple(f"cmd:{c}" for c in COMMANDS) + tuple(f"cause:{c}" for c in CAUSES)
NO_REFRESH_NREFI = 1 << 20  # largest legal nREFI: calibration runs are far shorter
PENALTY_NREFI = 1000  # refresh interval of the penalty-measurement run (many phases sampled)
PENALTY_REFRESHES = 6  # refreshes the penalty run should contain
SV_TOKEN_QUANTUM = 64  # SV tokens are charged rounded up to this (4 score entries)


@dataclass(frozen=True)
class KernelCost:
    """Cycles, command counts and cycles by cause of one channel's work (refresh-free), plus the
    cycles one refresh costs this work (``refresh_penalty``) and how many refreshes it contains."""

    values: tuple[float, ...] = (0.0,) * len(FIELDS)
    refresh_penalty_cycles: float = 0.0  # weighted by cycles when costs are added
    refreshes: float = 0.0

    @staticmethod
    def of(stats: dict[str, object]) -> KernelCost:
        cmds = stats["commands"]
        causes = stats["cycles_by_cause"]
        assert isinstance(cmds, dict) and isinstance(causes, dict)
        vals = [float(stats["cycles"])]  # type: ignore[arg-type]
        vals += [float(cmds.get(c, 0)) for c in COMMANDS]
        vals += [float(causes.get(c, 0)) for c in CAUSES]
        return KernelCost(tuple(vals))

    @property
    def cycles(self) -> float:
        """Refresh-free cycles."""
        return self.values[0]

    @property
    def busy_cycles(self) -> float:
        """Cycles including the refreshes (:attr:`refreshes` x penalty)."""
        return self.cycles + self.refreshes * self.refresh_penalty_cycles

    def command(self, name: str) -> float:
        return self.values[FIELDS.index(f"cmd:{name}")]

    def cause(self, name: str) -> float:
        return self.values[FIELDS.index(f"cause:{name}")]

    @property
    def commands(self) -> dict[str, float]:
        out = {c: self.command(c) for c in COMMANDS}
        out["REF"] = out["REF"] + self.refreshes
        return out

    @property
    def causes(self) -> dict[str, float]:
        out = {c: self.cause(c) for c in CAUSES}
        out["ref"] = out["ref"] + self.refreshes * self.refresh_penalty_cycles
        return out

    def __add__(self, other: KernelCost) -> KernelCost:
        c = self.cycles + other.cycles
        a, b = self.refresh_penalty_cycles, other.refresh_penalty_cycles
        pen = (a * self.cycles + b * other.cycles) / c if c else max(a, b)
        vals = tuple(a + b for a, b in zip(self.values, other.values, strict=True))
        return KernelCost(vals, pen, self.refreshes + other.refreshes)

    def scale(self, k: float) -> KernelCost:
        return KernelCost(
            tuple(v * k for v in self.values), self.refresh_penalty_cycles, self.refreshes * k
        )

    def with_refresh(self, n_refi: int, whole: bool = False) -> KernelCost:
        """Add the refreshes this much work meets: steady state ``busy / nREFI`` (``whole``: the
        integer count a single run starting at cycle 0 meets, for comparisons with one run)."""
        pen = self.refresh_penalty_cycles
        if not whole:
            frac = pen / n_refi
            refs = self.cycles / n_refi / (1.0 - frac) if frac < 1 else 0.0
            return KernelCost(self.values, pen, refs)
        k = 0
        while math.floor((self.cycles + (k + 1) * pen) / n_refi) > k:
            k += 1
        return KernelCost(self.values, pen, float(k))


def _lin(a: KernelCost, b: KernelCost, k: float) -> KernelCost:
    """``a + k * (b - a)`` field by field."""
    vals = tuple(x + k * (y - x) for x, y in zip(a.values, b.values, strict=True))
    return KernelCost(vals, a.refresh_penalty_cycles)


def obuf_for(mode: Mode, cfg: PimConfig) -> int:
    return 1 if mode is Mode.STATIC else cfg.buffers.obuf_entries


@dataclass
class KernelCache:
    """Costs of QK^T, SV and GEMV kernels on one channel of ``cfg``, by shape and mode.

    ``path``: optional JSON file keeping exact runs across processes (keyed by a hash of the
    config). ``exact_runs`` counts the command-level runs this cache has made.
    """

    cfg: PimConfig
    path: Path | None = None
    _runs: dict[str, KernelCost] = field(default_factory=dict)
    exact_runs: int = 0
    _dirty: bool = False

    def __post_init__(self) -> None:
        t = self.cfg.timing
        self._nr_cfg = self.cfg.with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})
        self._pen_cfg = self.cfg.with_overrides(
            {"timing": {"nREFI": max(PENALTY_NREFI, 4 * t.nRFC)}}
        )
        digest = json.dumps(self.cfg.to_dict(), sort_keys=True)
        self._cfg_key = hashlib.sha1(digest.encode()).hexdigest()[:12]
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
            for key, vals in data.get(self._cfg_key, {}).items():
                self._runs[key] = KernelCost(tuple(vals))

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        data: dict[str, dict[str, list[float]]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
        data[self._cfg_key] = {k: list(v.values) for k, v in self._runs.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)
        self._dirty = False

    # ------------------------------------------------------------------ exact runs

    def _exact(self, key: str, build: Callable[[PimConfig], object], refresh: bool) -> KernelCost:
        full = f"{key}|{'ref' if refresh else 'nr'}"
        hit = self._runs.get(full)
        if hit is None:
            cfg = self._pen_cfg if refresh else self._nr_cfg
            kernel = build(cfg)
            mode = Mode(key.split("|")[0])
            prog = kernel.program()  # type: ignore[attr-defined]
            hit = KernelCost.of(run_kernel(cfg, mode, prog).stats.as_dict())
            self._runs[full] = hit
            self.exact_runs += 1
            self._dirty = True
        return hit

    def _penalty(self, family: str, build: Callable[[PimConfig, int], object], unit: int) -> float:
        """Extra cycles per REF for a kernel family: a run with ``PENALTY_REFRESHES`` refreshes
        at a short nREFI against the same run refresh-free."""
        key = f"{family}|penalty"
        hit = self._runs.get(key)
        if hit is None:
            one = self._exact(f"{family}|n={unit}", lambda c: build(c, unit), False).cycles
            n = max(1, math.ceil(PENALTY_REFRESHES * self._pen_cfg.timing.nREFI / one)) * unit
            nr = self._exact(f"{family}|n={n}", lambda c: build(c, n), False)
            rf = self._exact(f"{family}|n={n}", lambda c: build(c, n), True)
            refs = rf.command("REF")
            pen = (rf.cycles - nr.cycles) / refs if refs else 0.0
            hit = KernelCost((pen,) + (0.0,) * (len(FIELDS) - 1))
            self._runs[key] = hit
            self._dirty = True
        return hit.values[0]

    def _periodic(
        self,
        family: str,
        n: int,
        n0: int,
        period: int,
        build: Callable[[PimConfig, int], object],
        penalty: float,
    ) -> KernelCost:
        """Cost of ``n`` units of a kernel periodic in ``period`` units after ``n0`` units."""

        def exact(m: int) -> KernelCost:
            return self._exact(f"{family}|n={m}", lambda c: build(c, m), False)

        if n <= n0 + period:
            base = exact(n)
        else:
            r = (n - n0) % period
            a, b = exact(n0 + r), exact(n0 + r + period)
            base = _lin(a, b, (n - n0 - r) / period)
        return KernelCost(base.values, penalty)

    # ------------------------------------------------------------------ kernels

    def qk(self, tokens: int, mode: Mode, d_head: int = 128, group: int = 1) -> KernelCost:
        """QK^T of ``group`` queries over ``tokens`` keys (token-major K)."""
        if tokens <= 0:
            return KernelCost()
        g = self.cfg.geometry
        obuf = obuf_for(mode, self.cfg)
        probe = QkKernel(g.banks, self.cfg, d_head=d_head, group=group, obuf=obuf)
        spr = probe.slots_per_row
        period = spr * (obuf // math.gcd(spr * group, obuf))
        slots = -(-tokens // g.banks)

        def build(cfg: PimConfig, m: int) -> QkKernel:
            return QkKernel(m * g.banks, cfg, d_head=d_head, group=group, obuf=obuf)

        fam = f"{mode.value}|qk|d={d_head}|g={group}"
        pen = self._penalty(fam, build, period)
        return self._periodic(fam, slots, 4 * period, period, build, pen)

    def sv(self, tokens: int, mode: Mode, d_head: int = 128) -> KernelCost:
        """SV of one query head over ``tokens`` values (dim-major V), tokens rounded up to
        ``SV_TOKEN_QUANTUM``."""
        if tokens <= 0:
            return KernelCost()
        obuf = obuf_for(mode, self.cfg)
        q = SV_TOKEN_QUANTUM
        probe = SvKernel(q, self.cfg, d_head=d_head, obuf=obuf)
        period = probe.block_cols * self.cfg.geometry.lanes // q  # units of q tokens per block
        units = -(-tokens // q)

        def build(cfg: PimConfig, m: int) -> SvKernel:
            return SvKernel(m * q, cfg, d_head=d_head, obuf=obuf)

        fam = f"{mode.value}|sv|d={d_head}"
        pen = self._penalty(fam, build, period)
        return self._periodic(fam, units, 2 * period, period, build, pen)

    def gemv(self, d_out: int, d_in: int, mode: Mode) -> KernelCost:
        """GEMV ``d_out x d_in`` (d_out rounded up to the bank count, d_in to the input tile)."""
        g = self.cfg.geometry
        obuf = obuf_for(mode, self.cfg)
        groups = -(-d_out // g.banks)
        tile = GemvKernel(g.banks, g.lanes, self.cfg).tile
        d_in = g.lanes * -(-d_in // g.lanes)
        if d_in > tile:
            d_in = tile * -(-d_in // tile)
        tiles = max(1, d_in // tile)
        seg = min(d_in, tile)

        def builder(grp: int) -> Callable[[PimConfig, int], GemvKernel]:
            return lambda cfg, m: GemvKernel(grp * g.banks, m * seg, cfg, obuf=obuf)

        def pen_build(cfg: PimConfig, m: int) -> GemvKernel:
            return GemvKernel(obuf * g.banks, m * tile, cfg, obuf=obuf)

        pen = self._penalty(f"{mode.value}|gemv|seg={tile}|groups={obuf}", pen_build, 1)

        def in_tiles(grp: int) -> KernelCost:
            fam = f"{mode.value}|gemv|seg={seg}|groups={grp}"
            return self._periodic(fam, tiles, 1, 1, builder(grp), pen)

        if d_in < tile or groups <= 2 * obuf:
            return in_tiles(groups)
        rem = groups % obuf
        a, b = in_tiles(obuf + rem), in_tiles(2 * obuf + rem)
        return KernelCost(_lin(a, b, (groups - obuf - rem) / obuf).values, a.refresh_penalty_cycles)
