"""Refresh at small legal nREFI: refused when it leaves no time for work, never a hang or a
silently wrong REF count (these were 0 REFs at nREFI 211-280 and a hang of `pimphony demo`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymodel.cli import main
from pymodel.config import preset
from pymodel.system.errors import SystemSimError
from pymodel.system.kernel_cost import FIELDS, KernelCost


@pytest.mark.parametrize("n_refi", [211, 280, 332])
def test_demo_refuses_refresh_that_fills_the_channel(
    n_refi: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[timing]\nnREFI = {n_refi}\n")
    assert main(["demo", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"timing.nREFI = {n_refi} must be > nRFC + nRC" in err[0]


def test_long_run_refresh_rate_refuses_a_penalty_of_a_whole_interval() -> None:
    work = KernelCost((1000.0,) + (0.0,) * (len(FIELDS) - 1), refresh_penalty_cycles=400.0)
    assert work.with_refresh(4000).refreshes == pytest.approx(1000 / 4000 / (1 - 0.1))
    with pytest.raises(SystemSimError, match="one refresh costs this work 400 cycles"):
        work.with_refresh(400)


def test_small_legal_nrefi_makes_progress() -> None:
    """Just above the bound the schedulers still finish, REFs on time."""
    from pymodel.golden.kernels import GemvKernel
    from pymodel.golden.sched import Mode, run_kernel

    cfg = preset("aim-gddr6").with_overrides({"timing": {"nREFI": 340}})
    for mode in Mode:
        res = run_kernel(cfg, mode, GemvKernel(256, 1024, cfg).program())
        refs = sum(1 for e in res.trace if e.cmd.op.name == "REF")
        assert refs >= res.trace[-1].cycle // 340 - 1 > 0
