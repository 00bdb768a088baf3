"""The kernel-cost cache cannot go stale: its key covers the resolved configuration and the
source of every module that produces kernel cycles. A copy of the package with one timing rule
changed must miss the cache (and produce different cycles); an unchanged copy must hit it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pymodel
from pymodel.codehash import source_closure
from pymodel.config import PRESETS
from pymodel.system.kernel_cost import cache_key, default_cache_dir

# Run in a fresh interpreter on the package copy: one QK^T cost (command-level runs, cached).
PROBE = """
import json, sys
from pathlib import Path
from pymodel.config import PRESETS
from pymodel.golden.sched import Mode
from pymodel.system.kernel_cost import KernelCache
kc = KernelCache(PRESETS["aim-gddr6"], Path(sys.argv[1]))
cost = kc.qk(512, Mode.DCS)
kc.save()
print(json.dumps({"key": kc.key, "runs": kc.exact_runs, "cycles": cost.cycles}))
"""

# Appended to the copy's timing.py: ACT -> MAC (nRCD_MAC) takes 7 cycles more.
PLANT = """
import dataclasses as _dc
RULES = tuple(
    _dc.replace(r, latency=lambda t, _f=r.latency: _f(t) + 7) if r.name == "nRCD_MAC" else r
    for r in RULES
)
"""


def _probe(pkg_root: Path, cache: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(pkg_root))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=pkg_root,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_timing_rule_change_misses_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "src"
    shutil.copytree(
        Path(pymodel.__file__).parent,
        root / "pymodel",
        ignore=shutil.ignore_patterns("__pycache__", "compiler"),
    )
    cache = tmp_path / "cache"
    cold = _probe(root, cache)
    assert cold["runs"] > 0
    warm = _probe(root, cache)
    assert warm == cold | {"runs": 0}  # same code: every run comes from the cache
    timing = root / "pymodel" / "timing.py"
    timing.write_text(timing.read_text() + PLANT)
    changed = _probe(root, cache)
    assert changed["key"] != cold["key"]
    assert changed["runs"] > 0  # the old entries were not used...
    assert changed["cycles"] != cold["cycles"]  # ...and would have been wrong


def test_key_covers_the_cycle_code_and_the_config() -> None:
    names = {m for m, _ in source_closure("pymodel.system.kernel_cost")}
    assert {
        "pymodel.timing",
        "pymodel.golden.sched",
        "pymodel.golden.channel",
        "pymodel.golden.kernels",
        "pymodel.config",
        "pymodel.isa",
    } <= names
    cfg = PRESETS["aim-gddr6"]
    other = cfg.with_overrides({"timing": {"nRCD_MAC": cfg.timing.nRCD_MAC + 1}})
    assert cache_key(cfg) != cache_key(other)
    assert cache_key(cfg) == cache_key(PRESETS["aim-gddr6"].with_overrides({}))


def test_default_location_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PIMPHONY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    assert default_cache_dir() == tmp_path / "xdg" / "pimphony" / "kernel-costs"
    monkeypatch.setenv("PIMPHONY_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
