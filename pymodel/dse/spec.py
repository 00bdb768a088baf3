"""Sweep specs: a TOML grid over models, systems, module counts, techniques, workloads, presets
and any configuration field, expanded into points (every combination).

::

    name = "buffers"
    [grid]
    model = ["LLM-7B-128K-GQA"]          # Table-I names (any case) or config.json paths
    system = ["pim-only"]                # pim-only, xpu-pim, gpu
    modules = [4, 8]
    technique = ["+tcp+dcs", "pimphony"]
    workload = ["ctx16384", "qmsum"]     # dataset (seeded sample), ctx<N>, or a CSV trace path
    preset = ["aim-gddr6"]
    "buffers.obuf_entries" = [4, 8]      # "section.field": any configuration field

``mode = ["serve"]`` makes a point a serving simulation (``pimphony serve``: continuous
batching over a request trace) instead of one decode step: its workload is a dataset (a
synthetic trace of ``requests`` prompts, default 200) or a trace file, arriving as a Poisson
process at ``rate`` requests/s (default: all at once, or the file's arrival times), served with at
most ``max_batch`` requests at once.

Every point is checked before anything runs (unknown names, out-of-range config fields), each
error naming the spec file and the grid key. Combinations that give the same point (serve axes
on step points) are run once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodel.config import ConfigError, PimConfig, preset
from pymodel.errors import PimphonyError, read_text
from pymodel.system import traces, workloads
from pymodel.system.errors import SystemSimError
from pymodel.system.models import TABLE_I, resolve_model
from pymodel.system.simulate import MAX_BATCH
from pymodel.system.systems import SYSTEMS
from pymodel.system.techniques import BUNDLE_NAMES as BUNDLES

Point = dict[str, Any]
AXES = (
    "model", "system", "modules", "technique", "workload", "preset", "seed", "batch",
    "mode", "rate", "requests", "max_batch",
)  # fmt: skip
DEFAULTS: Point = {
    "system": "pim-only", "preset": "aim-gddr6", "seed": 0, "batch": None, "mode": "step",
}  # fmt: skip
SERVE_DEFAULTS: Point = {"rate": None, "requests": 200, "max_batch": MAX_BATCH}
MODES = ("step", "serve")
REQUIRED = ("model", "modules", "technique", "workload")

EXAMPLE = """\
# pimphony sweep spec: every combination of the [grid] lists is one point.
name = "example"

[grid]
model = ["LLM-7B-128K-GQA"]
system = ["pim-only"]
modules = [4, 8]
technique = ["+tcp+dcs", "pimphony"]
workload = ["ctx16384"]
preset = ["aim-gddr6"]
"buffers.obuf_entries" = [2, 4, 8]
"buffers.gb_entries" = [32, 64]
"""


class SpecError(PimphonyError):
    """A sweep spec that cannot run: names the file and the key."""


@dataclass(frozen=True)
class Spec:
    name: str
    points: list[Point]
    source: str


def point_key(p: Point) -> str:
    """Stable id of a point (its parameters, canonical JSON)."""
    return hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:16]


def point_config(p: Point) -> PimConfig:
    """The resolved configuration of a point: its preset plus its ``section.field`` values."""
    overrides: dict[str, dict[str, Any]] = {}
    for dotted, value in p["config"].items():
        section, _, name = dotted.partition(".")
        overrides.setdefault(section, {})[name] = value
    return preset(p["preset"]).with_overrides(overrides)


def config_hash(cfg: PimConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _values(src: str, key: str, raw: Any) -> list[Any]:
    vals = raw if isinstance(raw, list) else [raw]
    if not vals:
        raise SpecError(f"{src}: grid.{key} is an empty list")
    return vals


def _check(src: str, p: Point) -> None:
    """Raise :class:`SpecError` naming the grid key of the first bad value of ``p``."""

    def bad(key: str, why: str) -> SpecError:
        return SpecError(f"{src}: grid.{key} = {p[key] if key in p else '?'!r}: {why}")

    try:
        resolve_model(str(p["model"]))
    except SystemSimError as exc:
        raise bad("model", str(exc)) from None
    if p["system"] not in SYSTEMS:
        raise bad("system", f"one of {', '.join(SYSTEMS)}")
    if p["technique"] not in BUNDLES:
        raise bad("technique", f"one of {', '.join(BUNDLES)}")
    for key, lo in (("modules", 1), ("seed", 0)):
        if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < lo:
            raise bad(key, f"must be an integer >= {lo}")
    if p["batch"] is not None and (not isinstance(p["batch"], int) or p["batch"] < 1):
        raise bad("batch", "must be a positive integer")
    wl = p["workload"]
    if not isinstance(wl, str):
        raise bad("workload", "must be a string")
    if not (wl.lower() in workloads.DATASETS or _context(wl) or Path(wl).is_file()):
        raise bad("workload", f"a dataset ({', '.join(workloads.DATASETS)}), ctx<N> or a file")
    if p["mode"] not in MODES:
        raise bad("mode", f"one of {', '.join(MODES)}")
    if p["mode"] == "serve":
        _check_serve(p, bad)
    try:
        point_config(p)
    except ConfigError as exc:
        raise SpecError(f"{src}: grid: {exc}") from None


def _check_serve(p: Point, bad: Callable[[str, str], SpecError]) -> None:
    if p["system"] == "gpu":
        raise bad("system", "serving is simulated on PIM systems only (pim-only, xpu-pim)")
    if _context(p["workload"]) is not None:
        raise bad("workload", "a serve point needs a dataset or a trace file, not ctx<N>")
    if p["batch"] is not None:
        raise bad("batch", "serving batches continuously: use max_batch")
    rate = p["rate"]
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0
    ):
        raise bad("rate", "must be a positive number (requests/s)")
    for key in ("requests", "max_batch"):
        if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1:
            raise bad(key, "must be a positive integer")


def _context(wl: str) -> int | None:
    digits = wl[3:] if wl.lower().startswith("ctx") else ""
    return int(digits) if digits.isdigit() and int(digits) > 0 else None


def build_trace(p: Point) -> traces.Trace:
    """The request trace of a serve point: synthetic from a dataset, or read from a file."""
    wl = p["workload"]
    if wl.lower() in workloads.DATASETS:
        tr = traces.synthetic(wl, p["requests"], p["seed"], workloads.DEFAULT_OUTPUT_TOKENS)
        arrivals = "zero"
    else:
        tr, arrivals = traces.read_trace(wl), "trace"
    return tr.with_arrivals("poisson" if p["rate"] else arrivals, p["rate"], p["seed"])


def build_workload(p: Point) -> workloads.Workload:
    """The workload of a point (on a worker: a CSV path must be readable there too)."""
    wl = p["workload"]
    ctx = _context(wl)
    if ctx is not None:
        return workloads.fixed(ctx, n=1)
    if wl.lower() in workloads.DATASETS:
        return workloads.dataset(wl, seed=p["seed"])
    return workloads.read_trace(wl)


def _canonical_model(name: str) -> str:
    for m in TABLE_I:
        if m.lower() == name.lower():
            return m
    return str(Path(name).resolve())


def parse_spec(text: str, src: str = "<spec>") -> Spec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{src}: not valid TOML: {exc}") from None
    grid = data.get("grid")
    if not isinstance(grid, dict):
        raise SpecError(f"{src}: needs a [grid] table (see pimphony sweep --example)")
    unknown = [k for k in data if k not in ("name", "grid")]
    if unknown:
        raise SpecError(f"{src}: unknown top-level key '{unknown[0]}' (name, grid)")
    for k in grid:
        if k not in AXES and "." not in k:
            raise SpecError(
                f"{src}: grid.{k}: unknown axis (axes: {', '.join(AXES)}, or 'section.field')"
            )
    missing = [k for k in REQUIRED if k not in grid]
    if missing:
        raise SpecError(f"{src}: grid.{missing[0]} is required ({', '.join(REQUIRED)})")
    keys = list(grid)
    lists = [_values(src, k, grid[k]) for k in keys]
    points: dict[str, Point] = {}
    for combo in itertools.product(*lists):
        p: Point = dict(DEFAULTS) | dict(SERVE_DEFAULTS) | {"config": {}}
        for k, v in zip(keys, combo, strict=True):
            if "." in k:
                p["config"][k] = v
            else:
                p[k] = v
        _check(src, p)
        if p["mode"] == "step":  # the serve axes do not apply: equal points collapse
            p = {k: v for k, v in p.items() if k not in SERVE_DEFAULTS}
        p["model"] = _canonical_model(str(p["model"]))
        if _context(p["workload"]) is None and p["workload"].lower() not in workloads.DATASETS:
            p["workload"] = str(Path(p["workload"]).resolve())
        points.setdefault(point_key(p), p)
    return Spec(str(data.get("name", Path(src).stem)), list(points.values()), src)


def load_spec(path: str | Path) -> Spec:
    return parse_spec(read_text(path, "sweep spec"), str(path))
