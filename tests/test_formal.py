"""The CI subset of ``make formal`` (formal/proofs.toml entries with ``ci = true``): each proof
passes (at its ``ci_depth``), and fails with its planted bug. The whole table, at full depth,
runs with ``make formal``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import formal

PROOFS, CONFIGS = formal.load()


@pytest.mark.formal
@pytest.mark.parametrize("planted", [False, True], ids=["proof", "planted-bug"])
@pytest.mark.parametrize("proof", [p for p in PROOFS if p.ci], ids=lambda p: p.name)
def test_formal_ci(proof: formal.Proof, planted: bool) -> None:
    run = replace(proof, depth=proof.ci_depth)
    out = formal.run_one(run, CONFIGS, planted)
    print(f"{proof.name} planted={planted}: {out.status} in {out.seconds:.1f} s {out.detail}")
    want = "FAIL" if planted else "PASS"
    assert out.status == want, (
        f"{proof.name}: {out.status} (expected {want}) {out.detail}; log: "
        f"{formal.WORK / (formal.run_tag(run, planted) + '.log')}"
    )
    if planted:  # the counterexample violates one of the proof's own assertions
        assert any(a in out.detail for a in proof.asserts), out.detail


def test_table_rejects_bad_entries(tmp_path: Path) -> None:
    good = (formal.TABLE).read_text()
    (tmp_path / "ok.toml").write_text(good)
    assert formal.load(tmp_path / "ok.toml")[0]
    for bad, msg in (
        (good.replace('mode = "bmc"', 'mode = "sim"', 1), "mode"),
        (good.replace("ci = true", "ci = true\ncolour = 1", 1), "unknown key"),
        (good.replace('config = "dpa-formal"', 'config = "nope"', 1), "config"),
    ):
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(formal.TableError, match=msg):
            formal.load(tmp_path / "bad.toml")
