"""Mutation testing of the RTL: seeded, sampled, time-bounded single-token mutants of ``rtl/``.

    python tools/mutate.py [--sample 60] [--seed 1] [--budget-min 90] [--only FILE ...]
                           [--list] [--out build/mutate] [--doc docs/testing.md]

The mutants (``tools/mutate_gen.py``: flipped comparisons, literals one off, dropped ``&&``/``||``/
``+`` operands, inverted conditions, changed reset values) of every file of ``tools/mutate.toml``
are shuffled with the seed; the pinned ones (historic holes) run first, then the shuffled ones
until ``--sample`` mutants have run or the time budget is spent. Each mutant is first linted
(Verilator ``-Wall``, both passes of ``make lint``): one the lint rejects is counted as ``lint``
and replaced by the next. The rest run the focused bench tests mapped to their file in
``tools/mutate.toml``, in a private copy of the tree (the checkout is never written; the copy's
file is restored after every mutant, even on Ctrl-C), with a per-mutant timeout derived from the
unmutated run of the same tests. Outcomes: ``killed`` (a test failed), ``survived``,
``timeout`` (the bench hung: a bench defect, not counted as killed), ``equivalent`` (survived and
listed with a reason in ``tools/mutate.toml``). Score = killed / (killed + survived + timeout).

Writes ``<out>/report.json`` and ``<out>/report.md`` (every mutant, its outcome, the test that
killed it), per-mutant logs in ``<out>/logs/``, and with ``--doc`` the summary block
``mutation-results`` of that markdown file. Exit 0 when the score reaches ``--target`` (0.95),
1 when not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ helpers
import mdblock
from mutate_gen import Mutant, mutants

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tools" / "mutate.toml"
#: What the private copy needs to run the benches: the Python packages too, so that a commit
#: pulled into the checkout during a long run cannot change the benches under it (the copy goes
#: first on PYTHONPATH, ahead of the editable install).
COPY = ("rtl", "tb", "pymodel", "scoreboards", "conftest.py", "pyproject.toml")
PYTEST = (sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist")
MIN_TIMEOUT_S = 600.0
OUTCOMES = ("killed", "survived", "timeout", "equivalent", "lint")


class ConfigError(ValueError):
    """A malformed tools/mutate.toml or command line (exit 2)."""


@dataclass(frozen=True)
class Pattern:
    """A mutant named in the config: the file, a substring of its line, the span and its
    replacement (whitespace-insensitive), and for equivalents the reason."""

    file: str
    line: str
    old: str
    new: str
    reason: str = ""
    col: int = 0  # the span's column, when the same change fits several places of the line

    def matches(self, m: Mutant) -> bool:
        return (
            m.file == self.file
            and self.line in m.line_text
            and " ".join(m.old.split()) == " ".join(self.old.split())
            and m.new == self.new
            and self.col in (0, m.col)
        )


@dataclass
class Config:
    files: dict[str, list[str]]  # file -> test ids
    command: list[str]  # the test runner; the test ids are appended
    pinned: list[Pattern]
    equivalent: list[Pattern]
    lint: bool = True


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    groups = raw.get("tests", {})
    files: dict[str, list[str]] = {}
    for file, names in raw.get("files", {}).items():
        tests: list[str] = []
        for name in names:
            if name not in groups:
                raise ConfigError(f"{path}: files.{file}: unknown test group '{name}'")
            tests += [t for t in groups[name] if t not in tests]
        files[file] = tests

    def patterns(key: str) -> list[Pattern]:
        out = []
        for k, entry in enumerate(raw.get(key, [])):
            try:
                out.append(Pattern(**entry))
            except TypeError as exc:
                raise ConfigError(f"{path}: {key}[{k}]: {exc}") from None
            if key == "equivalent" and not out[-1].reason:
                raise ConfigError(f"{path}: equivalent[{k}]: a reason is required")
        return out

    command = list(raw.get("command", PYTEST))
    return Config(
        files, command, patterns("pinned"), patterns("equivalent"), bool(raw.get("lint", True))
    )


@dataclass
class Result:
    index: int  # order of selection (the log file number)
    id: str
    file: str
    line: int
    op: str
    old: str
    new: str
    line_text: str
    outcome: str
    seconds: float
    pinned: bool = False
    by: str = ""  # the failing test (and the RTL assertion that fired, if one did)
    reason: str = ""  # equivalents: why
    note: str = ""
    first: str = ""  # --rerun: the outcome in the first run (before the new tests)


@dataclass
class Run:
    seed: int
    sample: int
    results: list[Result] = field(default_factory=list)
    baseline_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    candidates: int = 0
    stopped: str = ""  # why the run stopped before the sample was complete

    def counts(self, file: str | None = None) -> Counter[str]:
        return Counter(r.outcome for r in self.results if file is None or r.file == file)

    def score(self, file: str | None = None) -> float | None:
        c = self.counts(file)
        n = c["killed"] + c["survived"] + c["timeout"]
        return c["killed"] / n if n else None


# ------------------------------------------------------------------------------------- running


def make_tree(src: Path, dst: Path, items: Sequence[str] = COPY) -> Path:
    """A private copy of the parts of ``src`` the benches need."""
    ignore = shutil.ignore_patterns("__pycache__", "sim_build", "*.pyc")
    for name in items:
        p = src / name
        if p.is_dir():
            shutil.copytree(p, dst / name, ignore=ignore)
        elif p.is_file():
            shutil.copy2(p, dst / name)
    return dst


_ACTIVE: set[subprocess.Popen[str]] = set()
_ACTIVE_LOCK = threading.Lock()


def kill_active() -> None:
    """Kill every running test (process group), e.g. on Ctrl-C."""
    with _ACTIVE_LOCK:
        for proc in _ACTIVE:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_tests(
    cmd: Sequence[str], tree: Path, env: dict[str, str], timeout: float, log: Path | None
) -> tuple[str, float, str]:
    """Run ``cmd`` in ``tree``: ('pass' | 'fail' | 'timeout', seconds, output). The whole
    process group is killed on timeout (the simulator included)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        list(cmd),
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    with _ACTIVE_LOCK:
        _ACTIVE.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
        # pytest: 0 all passed, 1 some failed; anything else (collection or usage error, no test
        # collected) is the harness, not the mutant
        status = {0: "pass", 1: "fail"}.get(proc.returncode, "error")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        status = "timeout"
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(proc)
    if log is not None:
        log.write_text(out)
    return status, time.monotonic() - t0, out


_FAILED = re.compile(r"^FAILED (\S+)", re.M)
_ASSERTION = re.compile(r"Assertion failed in (\S+?):")


def killer(out: str) -> str:
    """The failing test and, if one fired, the first RTL assertion."""
    tests = _FAILED.findall(out)
    fired = _ASSERTION.findall(out)
    name = tests[0].split("::")[-1] if tests else "?"
    return f"{name} ({fired[0].rsplit('.', 1)[-1]})" if fired else name


def lint_ok(tree: Path, file: str) -> bool:
    """Both passes of ``make lint`` for the mutated module (its own top)."""
    rtl = tree / "rtl"
    env = {**os.environ}
    env.pop("VERILATOR_ROOT", None)
    vbin = ROOT / ".venv" / "verilator-bin"
    if vbin.is_dir():
        env["PATH"] = f"{vbin.resolve()}{os.pathsep}{env.get('PATH', '')}"
    libs = sorted(d for d in rtl.iterdir() if d.is_dir() and d.name not in ("pkg", "lint"))
    src = tree / file
    largs = re.findall(r"^// lint-args: *(.*)$", src.read_text(), re.M)
    base = [
        "verilator",
        "--lint-only",
        "--quiet",
        "-Wall",
        *(largs[0].split() if largs else []),
        *map(str, sorted((rtl / "lint").glob("*.vlt"))),
        *[a for d in libs for a in ("-y", str(d))],
        *map(str, sorted((rtl / "pkg").glob("*.sv"))),
        str(src),
        "--top-module",
        src.stem,
    ]
    for extra in ([], ["--public-flat-rw", "--assert", "+define+PIM_ASSERT"]):
        r = subprocess.run([*base, *extra], cwd=tree, env=env, capture_output=True, timeout=300)
        if r.returncode != 0:
            return False
    return True


class Mutator:
    """Runs mutants in a private tree (``tree``); ``progress`` gets one line per mutant."""

    def __init__(
        self,
        cfg: Config,
        tree: Path,
        out: Path,
        *,
        timeout: float | None = None,
        progress: Callable[[str], None] = print,
        env: dict[str, str] | None = None,
        lint: Callable[[Path, str], bool] | None = None,
    ) -> None:
        self.cfg, self.tree, self.out = cfg, tree, out
        self.fixed_timeout = timeout
        self.progress = progress
        self.env = {**os.environ, **(env or {})}
        self.lint = lint if lint is not None else (lint_ok if cfg.lint else None)
        self.baseline: dict[str, float] = {}
        self._groups: dict[tuple[str, ...], float] = {}  # test ids -> unmutated run time
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def command(self, file: str) -> list[str]:
        return [*self.cfg.command, *self.cfg.files[file]]

    def timeout_for(self, file: str) -> float:
        if self.fixed_timeout is not None:
            return self.fixed_timeout
        # the unmutated run may have found its build warm, a mutant always rebuilds: on a
        # loaded 2-core machine that alone can take minutes, so never less than 10 min
        return max(3.0 * self.baseline[file] + 60.0, MIN_TIMEOUT_S)

    def run_baseline(self, files: Sequence[str]) -> None:
        """The unmutated tree must pass each file's tests (else every mutant would be 'killed');
        their time (a cold build included) sets the mutants' timeout."""
        for file in files:
            key = tuple(self.cfg.files[file])
            if key not in self._groups:
                self.progress(f"baseline ({self.tree.name}): {' '.join(key)}")
                log = self.out / "logs" / f"baseline-{self.tree.name}-{len(self._groups)}.log"
                status, secs, out = run_tests(
                    self.command(file), self.tree, self.env, self.fixed_timeout or 3600.0, log
                )
                if status != "pass":
                    raise RuntimeError(
                        f"the unmutated RTL fails {file}'s tests ({status}); "
                        f"see {log}\n{out[-2000:]}"
                    )
                self._groups[key] = secs
            self.baseline[file] = self._groups[key]

    def run_one(self, m: Mutant, n: int, pinned: bool = False) -> Result:
        if m.file not in self.baseline:  # first mutant of this file: its tests, unmutated
            self.run_baseline([m.file])
        path = self.tree / m.file
        original = path.read_text()
        t0 = time.monotonic()
        res = Result(n, m.id, m.file, m.line, m.op, m.old, m.new, m.line_text, "", 0.0, pinned)
        try:
            path.write_text(m.apply(original))
            if self.lint is not None and not self.lint(self.tree, m.file):
                res.outcome = "lint"
            else:
                status, _, out = run_tests(
                    self.command(m.file),
                    self.tree,
                    self.env,
                    self.timeout_for(m.file),
                    self.out / "logs" / f"{n:03d}.log",
                )
                if status == "error":
                    raise RuntimeError(
                        f"{m.id}: the tests did not run (pytest exit code not 0/1); "
                        f"see {self.out / 'logs' / f'{n:03d}.log'}\n{out[-2000:]}"
                    )
                res.outcome = {"pass": "survived", "fail": "killed", "timeout": "timeout"}[status]
                if status == "fail":
                    res.by = killer(out)
        finally:
            path.write_text(original)
        eq = next((p for p in self.cfg.equivalent if p.matches(m)), None)
        if eq is not None:
            if res.outcome == "survived":
                res.outcome, res.reason = "equivalent", eq.reason
            elif res.outcome != "lint":
                res.note = "listed as equivalent but " + res.outcome
        res.seconds = time.monotonic() - t0
        return res


def select(
    cfg: Config, root: Path, only: Sequence[str], seed: int
) -> tuple[list[Mutant], list[Mutant]]:
    """(pinned mutants, the other candidates shuffled with ``seed``)."""
    pool: list[Mutant] = []
    for file in cfg.files:
        if only and file not in only:
            continue
        pool += mutants((root / file).read_text(), file)
    pinned = []
    for p in cfg.pinned:
        hits = [m for m in pool if p.matches(m)]
        if len(hits) != 1 and (not only or p.file in only):
            raise ConfigError(
                f"pinned mutant {p.file}: '{p.line}' {p.old!r}->{p.new!r}: "
                f"{len(hits)} matches (the source changed? update mutate.toml)"
            )
        pinned += hits
    rest = [m for m in pool if m not in pinned]
    random.Random(seed).shuffle(rest)
    return pinned, rest


def mutate(
    cfg: Config,
    root: Path,
    out: Path,
    *,
    sample: int,
    seed: int,
    budget_s: float,
    only: Sequence[str] = (),
    timeout: float | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
    lint: Callable[[Path, str], bool] | None = None,
    keep: bool = False,
    exactly: Sequence[Mutant] | None = None,
) -> Run:
    """The whole run, in ``jobs`` private copies of ``root`` (deleted afterwards unless
    ``keep``), one mutant at a time in each. ``exactly``: run these mutants and nothing else."""
    t_start = time.monotonic()
    pinned, rest = (list(exactly), []) if exactly is not None else select(cfg, root, only, seed)
    run = Run(seed, sample, candidates=len(pinned) + len(rest))
    queue = deque([(m, True) for m in pinned] + [(m, False) for m in rest])
    target = sample + len(pinned)
    lock, stop = threading.Lock(), threading.Event()
    count = {"ran": 0, "inflight": 0, "next": 0}
    errors: list[BaseException] = []
    tmp = Path(tempfile.mkdtemp(prefix="pimphony-mutate-"))
    # Every mutant rebuilds its DUT: C++ at -O0 compiles several times faster than the default
    # -Os, and the focused tests are short enough that the slower model does not matter (same
    # semantics: only the C++ optimisation level differs).
    makeflags = f"{os.environ.get('MAKEFLAGS', '')} OPT_FAST=-O0 OPT_GLOBAL=-O0".strip()
    files = sorted({m.file for m in pinned + rest})

    def take() -> tuple[int, Mutant, bool] | None:
        with lock:
            if stop.is_set() or not queue or count["ran"] + count["inflight"] >= target:
                return None
            if time.monotonic() - t_start > budget_s:
                run.stopped = f"time budget of {budget_s / 60:.0f} min spent"
                return None
            count["inflight"] += 1
            count["next"] += 1
            m, is_pinned = queue.popleft()
            return count["next"] - 1, m, is_pinned

    def work(mut: Mutator) -> None:
        try:
            while (item := take()) is not None:
                n, m, is_pinned = item
                try:
                    res = mut.run_one(m, n, is_pinned)
                finally:
                    with lock:
                        count["inflight"] -= 1
                if stop.is_set():  # killed by the interrupt, not by a test
                    return
                with lock:
                    run.results.append(res)
                    count["ran"] += res.outcome != "lint"
                    progress(
                        f"[{count['ran']}/{target}] {res.outcome:<10} {res.id} "
                        f"({res.seconds:.0f} s{', ' + res.by if res.by else ''})"
                    )
        except BaseException as exc:  # noqa: B036 - re-raised by the main thread
            errors.append(exc)
            stop.set()
            kill_active()

    try:
        muts = []
        for w in range(jobs):
            tree = make_tree(root, tmp / f"tree{w}")
            pypath = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)
            envs = {
                "SIM_BUILD_ROOT": str(tmp / f"sim_build{w}"),
                "SEED": str(seed),
                "MAKEFLAGS": makeflags,
                "PYTHONPATH": pypath,
                **(env or {}),
            }
            muts.append(
                Mutator(cfg, tree, out, timeout=timeout, progress=progress, env=envs, lint=lint)
            )
        threads = [threading.Thread(target=work, args=(m,), daemon=True) for m in muts]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
        except KeyboardInterrupt:
            run.stopped = "interrupted"
            stop.set()
            kill_active()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        run.baseline_s = {
            f: round(max(m.baseline.get(f, 0.0) for m in muts), 1)
            for f in files
            if any(f in m.baseline for m in muts)
        }
        if not run.stopped and count["ran"] < target:
            run.stopped = f"only {count['ran']} mutants could run"
    finally:
        run.results.sort(key=lambda r: r.index)
        run.seconds = time.monotonic() - t_start
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return run


def _flush_print(line: str) -> None:
    print(line, flush=True)


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a killed run (or `timeout`) cleans up like Ctrl-C


# ------------------------------------------------------------------------------------- reports


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def summary_md(run: Run) -> str:
    c = run.counts()
    ran = sum(c[o] for o in OUTCOMES if o != "lint")
    lines = [
        f"Seed {run.seed}, {ran} mutants run ({sum(r.pinned for r in run.results)} pinned) of "
        f"{run.candidates} candidates, {c['lint']} more rejected by the lint; "
        f"{run.seconds / 60:.1f} min. **Score {_pct(run.score())}** "
        f"(killed / (killed + survived + timeout)).",
        *([f"Stopped early: {run.stopped}."] if run.stopped else []),
        *([first_pass(run)] if any(r.first for r in run.results) else []),
        "",
        "| file | run | killed | survived | timeout | equivalent | lint-rejected | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for file in sorted({r.file for r in run.results}):
        f = run.counts(file)
        n = sum(f[o] for o in OUTCOMES if o != "lint")
        lines.append(
            f"| `{file}` | {n} | {f['killed']} | {f['survived']} | {f['timeout']} | "
            f"{f['equivalent']} | {f['lint']} | {_pct(run.score(file))} |"
        )
    lines.append(
        f"| **all** | {ran} | {c['killed']} | {c['survived']} | {c['timeout']} | "
        f"{c['equivalent']} | {c['lint']} | {_pct(run.score())} |"
    )
    notable = [
        r
        for r in run.results
        if r.outcome in ("survived", "timeout", "equivalent") or r.pinned or r.note or r.first
    ]
    if notable:
        lines += ["", "| mutant | first run | outcome | killed by / reason |", "|---|---|---|---|"]
        for r in notable:
            why = (r.by or r.reason or r.note).replace("|", "\\|")
            mid = r.id.replace("|", "\\|")
            lines.append(
                f"| `{mid}`{' (pinned)' if r.pinned else ''} | {r.first or r.outcome} "
                f"| {r.outcome} | {why} |"
            )
    return "\n".join(lines)


def first_pass(run: Run) -> str:
    """The score before the survivors were re-run against new tests (``--rerun``)."""
    c = Counter(r.first or r.outcome for r in run.results)
    n = c["killed"] + c["survived"] + c["timeout"]
    return (
        f"First pass: {c['killed']} killed of {n} ({_pct(c['killed'] / n if n else None)}); "
        f"its survivors were then re-run against new tests (`--rerun`) or reviewed as "
        f"equivalent."
    )


def report_md(run: Run) -> str:
    lines = [
        "# Mutation run",
        "",
        summary_md(run),
        "",
        "## Every mutant",
        "",
        "| # | mutant | source line | outcome | s | killed by |",
        "|---:|---|---|---|---:|---|",
    ]
    for k, r in enumerate(run.results):
        src, mid = r.line_text.replace("|", "\\|"), r.id.replace("|", "\\|")
        lines.append(f"| {k} | `{mid}` | `{src}` | {r.outcome} | {r.seconds:.0f} | {r.by} |")
    return "\n".join(lines) + "\n"


def write_reports(run: Run, out: Path, doc: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(run).items() if k != "results"}
    data |= {
        "counts": dict(run.counts()),
        "score": run.score(),
        "results": [asdict(r) for r in run.results],
    }
    (out / "report.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "report.md").write_text(report_md(run))
    if doc is not None:
        mdblock.put_block(doc, "mutation-results", summary_md(run))


def _key(m: Mutant | Result) -> tuple[str, int, str, str, str]:
    return m.file, m.line, m.op, m.old, m.new


def rerun(cfg: Config, root: Path, out: Path, old: Run, **kw: Any) -> Run:
    """Run the survivors and timeouts of ``old`` again (after new tests) and merge: each keeps
    its first outcome in ``first``, the score is that of the merged run."""
    again = [r for r in old.results if r.outcome in ("survived", "timeout")]
    pinned, rest = select(cfg, root, (), old.seed)
    order = pinned + rest  # the first run's order (same seed, same files): its indices
    todo: list[Mutant] = []
    for r in again:
        key = (r.file, r.line, r.op, r.old, r.new)
        if r.index < len(order) and _key(order[r.index]) == key:
            todo.append(order[r.index])
            continue
        hits = [m for m in order if _key(m) == key]
        if len(hits) != 1:
            raise ConfigError(f"--rerun: {r.id}: {len(hits)} matches in the current source")
        todo.append(hits[0])
    new = mutate(
        cfg, root, out, sample=0, seed=old.seed, budget_s=kw.pop("budget_s"), exactly=todo, **kw
    )
    return merge(old, new)


def merge(old: Run, new: Run) -> Run:
    """``old`` with each mutant that ``new`` ran again replaced by its new result (which keeps
    the old outcome in ``first``)."""
    by_key = {_key(r): r for r in new.results}
    merged = Run(
        old.seed,
        old.sample,
        baseline_s=old.baseline_s,
        candidates=old.candidates,
        stopped=old.stopped or new.stopped,
        seconds=old.seconds + new.seconds,
    )
    for r in old.results:
        n = by_key.get(_key(r))
        if n is not None:
            n.index, n.pinned, n.first = r.index, r.pinned, r.first or r.outcome
            r = n
        merged.results.append(r)
    return merged


def apply_equivalents(run: Run, cfg: Config) -> None:
    """Survivors of a saved run that the (since reviewed) equivalence list names: equivalent."""
    for r in run.results:
        if r.outcome != "survived":
            continue
        col = int(r.id.split(":")[2]) if r.id.count(":") >= 4 else 0
        m = Mutant(r.file, r.op, 0, 0, r.old, r.new, r.line, r.line_text, col)
        eq = next((p for p in cfg.equivalent if p.matches(m)), None)
        if eq is not None:
            r.first = r.first or "survived"
            r.outcome, r.reason = "equivalent", eq.reason


def load_report(path: Path) -> Run:
    try:
        data = json.loads(path.read_text())
        results = [Result(**r) for r in data["results"]]
        return Run(
            data["seed"],
            data["sample"],
            results,
            data["baseline_s"],
            data["seconds"],
            data["candidates"],
            data["stopped"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a mutation report ({exc})") from None


# ------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mutate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=60, help="mutants to run besides the pinned")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget-min", type=float, default=120.0, help="stop after this many minutes")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="per-mutant timeout in s (default: 3 x the unmutated run + 60 s, at least 600 s)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (private trees)")
    ap.add_argument("--only", nargs="*", default=[], metavar="FILE", help="only these rtl files")
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--list", action="store_true", help="print the candidates per file and exit")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "mutate")
    ap.add_argument("--doc", type=Path, default=None, help="markdown file for the summary block")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--keep", action="store_true", help="keep the private tree (debugging)")
    ap.add_argument(
        "--rerun",
        type=Path,
        default=None,
        metavar="REPORT",
        help="run the survivors and timeouts of a report.json again and merge",
    )
    ap.add_argument(
        "--ids",
        nargs="+",
        default=None,
        metavar="ID",
        help="run exactly these mutants (ids as in a report) and nothing else",
    )
    ap.add_argument(
        "--merge",
        nargs=2,
        type=Path,
        default=None,
        metavar=("FIRST", "AGAIN"),
        help="merge two report.json (AGAIN re-ran some mutants of FIRST), run nothing",
    )
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="REPORT",
        help="re-write the reports (and --doc) from a report.json, run nothing; "
        "survivors now listed as equivalent become equivalent",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        if args.sample < 1 or args.budget_min <= 0 or args.jobs < 1:
            raise ConfigError("--sample and --jobs must be >= 1, --budget-min > 0")
        cfg = load_config(args.config)
        for f in args.only:
            if f not in cfg.files:
                raise ConfigError(
                    f"--only {f}: not a file of {args.config} ({', '.join(cfg.files)})"
                )
        for f in cfg.files:
            if not (ROOT / f).is_file():
                raise ConfigError(f"{args.config}: files.{f}: no such file")
        if args.merge is not None:
            run = merge(load_report(args.merge[0]), load_report(args.merge[1]))
            apply_equivalents(run, cfg)
            write_reports(run, args.out, args.doc)
            print(summary_md(run))
            return 0
        if args.from_json is not None:
            run = load_report(args.from_json)
            apply_equivalents(run, cfg)
            write_reports(run, args.out, args.doc)
            print(summary_md(run))
            return 0
        if args.list:
            pinned, rest = select(cfg, ROOT, args.only, args.seed)
            per = Counter(m.file for m in pinned + rest)
            for f, n in sorted(per.items()):
                print(f"{n:5d}  {f}  ({', '.join(cfg.files[f])})")
            print(f"{sum(per.values()):5d}  candidates, {len(pinned)} pinned")
            return 0
        if args.rerun is not None:
            run = rerun(
                cfg,
                ROOT,
                args.out,
                load_report(args.rerun),
                budget_s=60 * args.budget_min,
                timeout=args.timeout,
                jobs=args.jobs,
                keep=args.keep,
                progress=_flush_print,
            )
            write_reports(run, args.out, args.doc)
            print(summary_md(run))
            score = run.score()
            return 0 if score is not None and score >= args.target else 1
        exactly = None
        if args.ids is not None:
            pool = {m.id: m for f in cfg.files for m in mutants((ROOT / f).read_text(), f)}
            missing = [i for i in args.ids if i not in pool]
            if missing:
                raise ConfigError(f"--ids: no such mutant in the current source: {missing[0]}")
            exactly = [pool[i] for i in args.ids]
        run = mutate(
            cfg,
            ROOT,
            args.out,
            sample=0 if exactly else args.sample,
            seed=args.seed,
            budget_s=60 * args.budget_min,
            only=args.only,
            timeout=args.timeout,
            jobs=args.jobs,
            keep=args.keep,
            progress=_flush_print,
            exactly=exactly,
        )
    except ConfigError as exc:
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the unmutated RTL fails its own tests
        print(f"pimphony: error: {exc}", file=sys.stderr)
        return 1
    write_reports(run, args.out, args.doc)
    print(summary_md(run))
    print(f"report: {args.out / 'report.md'}")
    score = run.score()
    return 0 if score is not None and score >= args.target and not run.stopped else 1


if __name__ == "__main__":
    sys.exit(main())
