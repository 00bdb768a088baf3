"""Run the `make bench` kernels on the RTL scheduler (tb/cmd_sched, run_bench, Verilator) and
write their cycles as JSON for `python -m pymodel.studies.kernel_study --rtl-results`.

Every kernel runs in lockstep with pymodel.golden.sched and bit-exact against the kernel's data, so
a cycle count only lands in the table when the RTL agrees with the reference.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tb" / "common"), str(ROOT / "tb" / "cmd_sched"), str(ROOT)]

from test_cmd_sched import _config_sources  # noqa: E402

import simlib  # noqa: E402


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: tools/bench_rtl.py OUT.json", file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    sources, spec = _config_sources("aim-gddr6")
    with tempfile.TemporaryDirectory() as tmp:
        simlib.run(
            toplevel="pim_sched",
            sources=sources,
            test_file=ROOT / "tb" / "cmd_sched" / "test_cmd_sched.py",
            test_dir=Path(tmp) / "sim",
            testcase="run_bench",
            extra_env={"PIMPHONY_CONFIG": spec, "SCHED_RESULTS": str(out)},
        )
    print(f"bench_rtl: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
