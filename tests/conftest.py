"""Shared fixtures of the full-system tests: one kernel-cost cache directory per test session, so
command-level calibration runs are made once (each test still sees real scheduler results), and
the per-user default cache is never touched by a test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kernel_cache_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernel-cache")


@pytest.fixture(autouse=True)
def _session_cache_dir(kernel_cache_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIMPHONY_CACHE_DIR", str(kernel_cache_file))
