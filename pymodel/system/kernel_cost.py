"""Kernel costs from the command-level reference schedulers, cached and extrapolated.

Every cycle the full-system simulator charges to a PIM channel comes from
:func:`pymodel.golden.sched.run_kernel` on a :mod:`pymodel.golden.kernels` instruction stream. Long
kernels are not run in full: a kernel is periodic in its *unit* (QK^T: slots of 16 tokens, period
one K row; SV: 16-token score entries, period one 1024-token block; GEMV: input tiles, then OBuf
blocks of output groups), so

    cost(n) = exact(n0 + r) + (n - n0 - r) / P * (exact(n0 + P) - exact(n0))

with ``r = (n - n0) mod P`` (the ragged tail is part of an exact run). Refresh is not periodic in
the unit, so the calibration runs use a refresh-free copy of the config and the refresh cost is
added separately: a *penalty per refresh* (extra cycles one REF costs this kernel: PREA, nRFC, the
row re-open and the lost pipeline) measured once per kernel family from a run with refresh on, and
``refreshes = busy / nREFI`` at the channel level (see :meth:`KernelCost.with_refresh`).
``tests/test_system_kernel_cost.py`` checks the result against full command-level runs with
refresh on (the maximum error is in docs/system.md).

Convention (as ``pymodel.studies.kernel_study``): STATIC models the AiM baseline with one
accumulator per bank; PINGPONG and DCS use every OBuf entry of the config, PINGPONG in two
alternating halves of the GB and the OBuf (:func:`pymodel.golden.kernels.buffer_args`). Accumulators
are initialized as the cache's ``acc_init`` says (``"bias"``: AiM WR_BIAS + RD_MAC; ``"clear"``:
PIMphony's RD_OUT).

Exact runs persist in a cache directory (one JSON file per key). The key is a hash of the resolved
configuration and of the source of every module that produces kernel cycles
(:func:`pymodel.codehash.code_hash` of this module: timing rules, channel, schedulers, kernels,
ISA, config, this calibration), so a change to any of them starts a fresh file instead of
reusing stale cycles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodel.codehash import code_hash
from pymodel.config import PimConfig
from pymodel.golden.kernels import GemvKernel, QkKernel, SvKernel, buffer_args
from pymodel.golden.sched import CAUSES, Mode, run_kernel
from pymodel.isa import InstOp, Instruction
from pymodel.system.errors import SystemSimError
from pymodel.ui.outputs import write_text

COMMANDS = ("ACT16", "PREA", "MAC16", "WRGB", "RDMAC", "CLRMAC", "REF", "ACT", "WR")
FIELDS = ("cycles",) + tuple(f"cmd:{c}" for c in COMMANDS) + tuple(f"cause:{c}" for c in CAUSES)
NO_REFRESH_NREFI = 1 << 20  # largest legal nREFI: calibration runs are far shorter
SETTLE_CYCLES = 1000  # a REF's disturbance has settled this long after it (> nRFC + reopen)
REF_SAMPLES = 2  # REFs (at spread phases of the period) the mean-penalty run contains
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

    def with_refresh(self, n_refi: int) -> KernelCost:
        """Add the refreshes this much work meets at the long-run rate: ``busy / nREFI``."""
        pen = self.refresh_penalty_cycles
        frac = pen / n_refi
        if frac >= 1 and self.cycles > 0:
            raise SystemSimError(
                f"timing.nREFI = {n_refi}: one refresh costs this work {pen:.0f} cycles, the whole "
                "interval; no work would progress (raise nREFI or set timing.refresh = false)"
            )
        refs = self.cycles / n_refi / (1.0 - frac) if self.cycles > 0 else 0.0
        return KernelCost(self.values, pen, refs)


def _lin(a: KernelCost, b: KernelCost, k: float) -> KernelCost:
    """``a + k * (b - a)`` field by field."""
    vals = tuple(x + k * (y - x) for x, y in zip(a.values, b.values, strict=True))
    return KernelCost(vals, a.refresh_penalty_cycles)


Build = Callable[[PimConfig, int], Any]


@dataclass(frozen=True)
class KvAppendKernel:
    """The per-step KV append of one token of one (request, KV head) as :mod:`pymodel.golden.decode`
    issues it: K (token-major) is one ``WR_BANK`` of ``d_head / lanes`` columns in bank
    ``token % banks`` of the block's K row; V (dim-major) is a one-column ``WR_BANK`` per (bank,
    dim slot) of the block's V row (the HUB rewrites each 16-token column whole)."""

    cfg: PimConfig
    d_head: int = 128
    token: int = 0  # position of the appended token in its KV block
    k_row: int = 0
    v_row: int = 1

    def program(self) -> list[Instruction]:
        g = self.cfg.geometry
        lanes, banks, d = g.lanes, g.banks, self.d_head
        head_cols = d // lanes
        block_tokens = (g.columns_per_row // head_cols) * banks
        pos = self.token % block_tokens
        prog = [
            Instruction(
                InstOp.WR_BANK,
                ch_mask=1,
                op_size=head_cols,
                gpr=0,
                bank=pos % banks,
                row=self.k_row,
                col=(pos // banks) * head_cols,
            )
        ]
        cols_per_slot = block_tokens // lanes
        for bank in range(banks):
            for j in range(d // banks):
                prog.append(
                    Instruction(
                        InstOp.WR_BANK,
                        ch_mask=1,
                        op_size=1,
                        gpr=head_cols + bank * (d // banks) + j,
                        bank=bank,
                        row=self.v_row,
                        col=j * cols_per_slot + pos // lanes,
                    )
                )
        return prog


@dataclass(frozen=True)
class _Spec:
    """A kernel of ``n`` units, periodic in ``period`` units after ``n0``: ``build(cfg, m)`` makes
    the kernel of ``m`` units, ``cost(m)`` its refresh-free cost (exact or extrapolated)."""

    family: str
    mode: Mode
    n: int
    n0: int
    period: int
    build: Build
    cost: Callable[[int], KernelCost] | None = None  # default: extrapolated from runs


def default_cache_dir() -> Path:
    """Per-user cache: ``$PIMPHONY_CACHE_DIR``, else ``$XDG_CACHE_HOME/pimphony/kernel-costs``,
    else ``~/.cache/pimphony/kernel-costs`` (the same whatever the working directory)."""
    if os.environ.get("PIMPHONY_CACHE_DIR"):
        return Path(os.environ["PIMPHONY_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pimphony" / "kernel-costs"


def cache_key(cfg: PimConfig, acc_init: str = "bias") -> str:
    """Hash of the resolved configuration, the accumulator init, the cost fields and the
    kernel-cycle code."""
    parts: list[Any] = [FIELDS, cfg.to_dict(), code_hash(__name__)]
    if acc_init != "bias":  # keeps the key of the AiM-initialized kernels unchanged
        parts.append(acc_init)
    digest = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(digest.encode()).hexdigest()[:16]


@dataclass
class KernelCache:
    """Costs of QK^T, SV and GEMV kernels on one channel of ``cfg``, by shape and mode.

    ``path``: optional directory keeping exact runs across processes, in ``<key>.json`` with the
    key of :func:`cache_key`. ``exact_runs`` counts the command-level runs this cache has made;
    ``on_run`` (if set) is called after each one (progress). ``acc_init``: how every kernel
    initializes its accumulators. :meth:`variant` gives the cache of a technique bundle's own
    configuration (shared file directory, progress and run count).
    """

    cfg: PimConfig
    path: Path | None = None
    on_run: Callable[[], None] | None = None
    acc_init: str = "bias"
    _runs: dict[str, KernelCost] = field(default_factory=dict)
    _exact_runs: int = 0
    _dirty: bool = False
    _variants: dict[str, KernelCache] = field(default_factory=dict)
    _root: KernelCache | None = None

    def __post_init__(self) -> None:
        self._nr_cfg = self.cfg.with_overrides({"timing": {"nREFI": NO_REFRESH_NREFI}})
        self.key = cache_key(self.cfg, self.acc_init)
        self._runs.update(self._load())

    @property
    def exact_runs(self) -> int:
        """Command-level runs made by this cache and every variant of it."""
        root = self._root or self
        return root._exact_runs + sum(v._exact_runs for v in root._variants.values())

    def variant(self, overrides: dict[str, Any], acc_init: str) -> KernelCache:
        """The cache of ``cfg`` with ``overrides`` (``PimConfig.with_overrides``) and kernels
        initialized by ``acc_init``; ``self`` when nothing differs. Variants are kept by the
        root cache and saved with it."""
        root = self._root or self
        cfg = root.cfg.with_overrides(overrides) if overrides else root.cfg
        if cfg == root.cfg and acc_init == root.acc_init:
            return root
        key = cache_key(cfg, acc_init)
        hit = root._variants.get(key)
        if hit is None:
            hit = KernelCache(cfg, root.path, root.on_run, acc_init, _root=root)
            root._variants[key] = hit
        return hit

    def kernel_args(self, mode: Mode) -> dict[str, Any]:
        """Keyword arguments of every kernel this cache builds under ``mode``."""
        return buffer_args(mode, self.cfg) | {"acc_init": self.acc_init}

    @property
    def file(self) -> Path | None:
        return None if self.path is None else self.path / f"{self.key}.json"

    def _load(self) -> dict[str, KernelCost]:
        """The runs stored under this key (an unreadable or corrupt file counts as empty)."""
        f = self.file
        if f is None or not f.exists():
            return {}
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            return {k: KernelCost(tuple(float(x) for x in v)) for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def save(self) -> None:
        """Merge this cache's runs into its file (other processes may have added theirs) and
        write it atomically; :class:`~pymodel.errors.OutputError` if it cannot be written."""
        for v in self._variants.values():
            v.save()
        f = self.file
        if f is None or not self._dirty:
            return
        merged = self._load() | self._runs
        write_text(f, json.dumps({k: list(v.values) for k, v in merged.items()}))
        self._dirty = False

    # ------------------------------------------------------------------ exact runs

    def _run(
        self, key: str, mode: Mode, build: Callable[[PimConfig], Any], n_refi: int
    ) -> KernelCost:
        """One command-level run (cached): the kernel ``build`` makes, refresh every ``n_refi``."""
        full = f"{key}|nr" if n_refi == NO_REFRESH_NREFI else f"{key}|refi={n_refi}"
        hit = self._runs.get(full)
        if hit is None:
            cfg = self._nr_cfg
            if n_refi != NO_REFRESH_NREFI:
                cfg = self.cfg.with_overrides({"timing": {"nREFI": n_refi}})
            prog = build(cfg).program()
            hit = KernelCost.of(run_kernel(cfg, mode, prog).stats.as_dict())
            self._runs[full] = hit
            self._exact_runs += 1
            self._dirty = True
            if self.on_run is not None:
                self.on_run()
        return hit

    def _exact(self, spec: _Spec, m: int, n_refi: int = NO_REFRESH_NREFI) -> KernelCost:
        return self._run(f"{spec.family}|n={m}", spec.mode, lambda c: spec.build(c, m), n_refi)

    def _c(self, spec: _Spec, m: int) -> KernelCost:
        return spec.cost(m) if spec.cost is not None else self._periodic(spec, m)

    def _periodic(self, spec: _Spec, m: int) -> KernelCost:
        """Refresh-free cost of ``m`` units of ``spec``'s kernel (exact up to ``n0 + period``)."""
        n0, p = spec.n0, spec.period
        if m <= n0 + p:
            return self._exact(spec, m)
        r = (m - n0) % p
        a, b = self._exact(spec, n0 + r), self._exact(spec, n0 + r + p)
        return _lin(a, b, (m - n0 - r) / p)

    # ------------------------------------------------------------------ refresh

    def _shape(self, spec: _Spec) -> tuple[float, float, float]:
        """(warm-up cycles W0, cycles per period Pc, horizon H a REF needs to settle)."""
        w0 = self._c(spec, spec.n0).cycles
        pc = self._c(spec, spec.n0 + spec.period).cycles - w0
        return w0, pc, pc + SETTLE_CYCLES

    def _fits_one_ref(self, spec: _Spec, m: int, t: int) -> bool:
        """A run of ``m`` units with nREFI = t can meet only one REF (the next is due at 2t)."""
        return t > self.cfg.timing.nRFC and 2 * t > self._c(spec, m).cycles + SETTLE_CYCLES

    def _penalty_at(self, spec: _Spec, tau: int) -> float | None:
        """Extra cycles of a REF due at refresh-free cycle ``tau`` of ``spec``'s kernel (0: the
        kernel ends before it). Measured by one short run whose nREFI puts its single REF at the
        same point: a prefix of the kernel when the REF is far from the end (at the same phase of
        the period), else a kernel with the same tail and fewer periods. None when no such run
        exists (the REF falls in the warm-up of a kernel too short to isolate it)."""
        n, n0, p = spec.n, spec.n0, spec.period
        w0, pc, horizon = self._shape(spec)
        d = self._c(spec, n).cycles - tau
        periodic = n > n0 + 4 * p and pc > 0
        m, t = n, tau
        if d >= horizon:  # far from the end: the prefix decides
            if periodic and t >= w0 + 2 * pc:
                t = int(w0 + pc + (t - w0 - pc) % pc)
            m = min(n, n0 + p)
            while self._c(spec, m).cycles - t < horizon and (m < n or t >= w0 + pc):
                m += p
        elif periodic:  # in the tail: same ragged remainder, fewer periods
            m = n0 + (n - n0) % p + p
            t = int(self._c(spec, m).cycles - d)
            while t < w0 + pc:
                m, t = m + p, int(t + pc)
        steady = periodic and t >= w0 + pc
        while steady and not self._fits_one_ref(spec, m, t):
            m, t = m + p, int(t + pc)
        if not self._fits_one_ref(spec, m, t) or t >= NO_REFRESH_NREFI:
            return None
        run = self._exact(spec, m, t)
        refs = run.command("REF")
        if refs > 1:
            return None
        return run.cycles - self._c(spec, m).cycles if refs else 0.0

    def _mean_penalty(self, spec: _Spec) -> float:
        """Mean extra cycles per REF of the kernel family: one run with REFs spaced so that each
        settles before the next and they fall at ``REF_SAMPLES`` spread phases of the period (at
        the real nREFI, REFs land at every phase)."""
        key = f"{spec.family}|penalty"
        hit = self._runs.get(key)
        if hit is None:
            w0, pc, horizon = self._shape(spec)
            spacing = max(int(w0 + pc), int(pc * (1 + 1 / REF_SAMPLES) + SETTLE_CYCLES))
            spacing = max(spacing, self.cfg.timing.nRFC + 1)
            m = spec.n0 + spec.period
            while self._c(spec, m).cycles < REF_SAMPLES * spacing + horizon:
                m += spec.period
            run = self._exact(spec, m, spacing)
            refs = run.command("REF")
            mean = (run.cycles - self._c(spec, m).cycles) / refs if refs else 0.0
            hit = KernelCost((mean,) + (0.0,) * (len(FIELDS) - 1))
            self._runs[key] = hit
            self._dirty = True
        return hit.values[0]

    def _cost(self, spec: _Spec, start: int | None, pen_spec: _Spec | None = None) -> KernelCost:
        """Refresh-free cost with the family's mean penalty per REF (``start`` None: REFs are added
        at the long-run rate by :meth:`KernelCost.with_refresh`), or one run from cycle ``start``
        with every REF it meets (REF k due at k * nREFI) charged its own measured penalty."""
        base = self._c(spec, spec.n)
        mean = self._mean_penalty(pen_spec or spec)
        if start is None:
            return KernelCost(base.values, mean)
        # One run from cycle ``start``: REF k is due at k * nREFI; each one found at its phase.
        n_refi = self.cfg.timing.nREFI
        extra, refs = 0.0, 0
        k = start // n_refi + 1
        while True:
            tau = k * n_refi - start - int(extra)
            if tau >= base.cycles:
                break
            pen = self._penalty_at(spec, tau)
            if pen == 0.0:
                break
            extra += mean if pen is None else pen
            refs, k = refs + 1, k + 1
        return KernelCost(base.values, extra / refs if refs else mean, float(refs))

    # ------------------------------------------------------------------ kernels

    def qk(
        self,
        tokens: int,
        mode: Mode,
        d_head: int = 128,
        group: int = 1,
        start: int | None = None,
    ) -> KernelCost:
        """QK^T of ``group`` queries over ``tokens`` keys (token-major K)."""
        if tokens <= 0:
            return KernelCost()
        g = self.cfg.geometry
        kw = self.kernel_args(mode)
        obuf = kw["obuf"]
        spr = QkKernel(g.banks, self.cfg, d_head=d_head, group=group, **kw).slots_per_row
        period = spr * (obuf // math.gcd(spr * group, obuf))  # a multiple of the OBuf cycle

        def build(cfg: PimConfig, m: int) -> QkKernel:
            return QkKernel(m * g.banks, cfg, d_head=d_head, group=group, **kw)

        fam = f"{mode.value}|qk|d={d_head}|g={group}"
        spec = _Spec(fam, mode, -(-tokens // g.banks), period, period, build)
        return self._cost(spec, start)

    def qk_group(self, tokens: int, mode: Mode, d_head: int, group: int) -> KernelCost:
        """QK^T of a GQA group of ``group`` queries sharing the open K row, as few kernels as
        the GB holds queries for (``buffers.gb_entries``)."""
        cols = d_head // self.cfg.geometry.lanes
        most = max(1, self.cfg.buffers.gb_entries // cols)
        full, rest = divmod(group, most)
        cost = self.qk(tokens, mode, d_head, most).scale(full) if full else KernelCost()
        return cost + self.qk(tokens, mode, d_head, rest) if rest else cost

    def sv(
        self, tokens: int, mode: Mode, d_head: int = 128, start: int | None = None
    ) -> KernelCost:
        """SV of one query head over ``tokens`` values (dim-major V), tokens rounded up to
        ``SV_TOKEN_QUANTUM``."""
        if tokens <= 0:
            return KernelCost()
        kw = self.kernel_args(mode)
        q = SV_TOKEN_QUANTUM
        probe = SvKernel(q, self.cfg, d_head=d_head, **kw)
        period = probe.block_cols * self.cfg.geometry.lanes // q  # units of q tokens per block
        if kw["halves"]:
            period *= 2  # blocks alternate between the GB halves

        def build(cfg: PimConfig, m: int) -> SvKernel:
            return SvKernel(m * q, cfg, d_head=d_head, **kw)

        spec = _Spec(f"{mode.value}|sv|d={d_head}", mode, -(-tokens // q), period, period, build)
        return self._cost(spec, start)

    def gemv(self, d_out: int, d_in: int, mode: Mode, start: int | None = None) -> KernelCost:
        """GEMV ``d_out x d_in`` (d_out rounded up to the bank count, d_in to the input tile).

        Periodic in input tiles (after one) within a block of ``obuf`` output groups and in
        blocks (after one) beyond; one mean REF penalty for every GEMV shape of a mode."""
        g = self.cfg.geometry
        kw = self.kernel_args(mode)
        obuf = kw["obuf"]
        groups = -(-d_out // g.banks)
        tile = GemvKernel(g.banks, g.lanes, self.cfg, halves=kw["halves"]).tile
        tile_period = 2 if kw["halves"] else 1  # tiles alternate between the GB halves
        d_in = g.lanes * -(-d_in // g.lanes)
        if d_in > tile:
            d_in = tile * -(-d_in // tile)
        tiles = max(1, d_in // tile)
        seg = min(d_in, tile)

        def tiles_spec(grp: int, seg: int, n: int) -> _Spec:
            def build(cfg: PimConfig, m: int) -> GemvKernel:
                return GemvKernel(grp * g.banks, m * seg, cfg, **kw)

            fam = f"{mode.value}|gemv|seg={seg}|groups={grp}"
            return _Spec(fam, mode, n, tile_period, tile_period, build)

        pen_spec = tiles_spec(obuf, tile, 2)
        if d_in < tile or groups <= 2 * obuf:
            return self._cost(tiles_spec(groups, seg, tiles), start, pen_spec)

        def cost(m: int) -> KernelCost:
            if m <= 2 * obuf:
                return self._c(tiles_spec(m, seg, tiles), tiles)
            rem = m % obuf
            a = self._c(tiles_spec(obuf + rem, seg, tiles), tiles)
            b = self._c(tiles_spec(2 * obuf + rem, seg, tiles), tiles)
            return _lin(a, b, (m - obuf - rem) / obuf)

        def build(cfg: PimConfig, m: int) -> GemvKernel:
            return GemvKernel(m * g.banks, d_in, cfg, **kw)

        fam = f"{mode.value}|gemv|d_in={d_in}|blocks"
        spec = _Spec(fam, mode, groups, obuf, obuf, build, cost)
        return self._cost(spec, start, pen_spec)

    def kv_append(self, mode: Mode, d_head: int = 128) -> KernelCost:
        """Appending one token's K and V (:class:`KvAppendKernel`) on a fresh channel; the cost
        does not depend on the token's position in its block (checked over all positions)."""
        fam = f"{mode.value}|kv_append|d={d_head}"
        spec = _Spec(fam, mode, 1, 1, 1, lambda cfg, m: KvAppendKernel(cfg, d_head))
        return self._exact(spec, 1)  # no REF penalty measured: ~2K cycles, REFs rarely land
