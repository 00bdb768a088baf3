"""Shared fixtures of the full-system tests: one kernel-cost cache file per test session, so
command-level calibration runs are made once (each test still sees real scheduler results)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kernel_cache_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernel-cache") / "kernels.json"
