"""Unit tests of the simulation helper (no simulator is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

import simlib


def test_env_flag_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, want in [("1", True), ("on", True), ("0", False), ("", False), ("false", False)]:
        monkeypatch.setenv("PIMPHONY_TEST_FLAG", raw)
        assert simlib.env_flag("PIMPHONY_TEST_FLAG") is want
    monkeypatch.setenv("PIMPHONY_TEST_FLAG", "maybe")
    with pytest.raises(ValueError):
        simlib.env_flag("PIMPHONY_TEST_FLAG")
    monkeypatch.delenv("PIMPHONY_TEST_FLAG")
    assert simlib.env_flag("PIMPHONY_TEST_FLAG") is False


def test_build_dirs_differ_per_key() -> None:
    src = [Path("/x/a.sv")]
    base = simlib.build_dir_for("icarus", "top", src, {"N": 2}, [], False)
    assert base == simlib.build_dir_for("icarus", "top", src, {"N": 2}, [], False)
    others = [
        simlib.build_dir_for("verilator", "top", src, {"N": 2}, [], False),
        simlib.build_dir_for("icarus", "top", src, {"N": 4}, [], False),
        simlib.build_dir_for("icarus", "top", [*src, Path("/x/b.sv")], {"N": 2}, [], False),
        simlib.build_dir_for("icarus", "top", src, {"N": 2}, ["-DX"], False),
        simlib.build_dir_for("icarus", "top", src, {"N": 2}, [], True),
    ]
    assert len({base, *others}) == 6


def test_rtl_sources_puts_packages_first() -> None:
    srcs = simlib.rtl_sources()
    assert all(p.parent == simlib.RTL / "pkg" for p in srcs)
    with pytest.raises(FileNotFoundError):
        simlib.rtl_sources("no_such_module_xyz")


def test_tool_path_is_set_up() -> None:
    import os
    import shutil

    vl = shutil.which("verilator")
    assert vl is not None and "site-packages" in vl, vl
    assert "VERILATOR_ROOT" not in os.environ
