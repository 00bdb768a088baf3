"""Bad input and unwritable outputs: one ``pimphony: error:`` line naming the file, field or
limit, exit code 2, no traceback — and a result that cannot be written is printed, not lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pymodel.cli import main
from pymodel.dse.spec import EXAMPLE
from pymodel.errors import OutputError
from pymodel.system import experiments
from pymodel.ui.outputs import write_or_print

NOT_UTF8 = b"\xff\xfe not utf-8\n"
SIM = ["simulate", "--system", "pim-only", "--modules", "8", "--kernel-cache", "none"]
MODEL = ["--model", "LLM-7B-32K"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("bad.toml", "bad.json", "bad.csv", "bad.trace"):
        (tmp_path / name).write_bytes(NOT_UTF8)
        out[name] = str(tmp_path / name)
    (tmp_path / "a-file").write_text("x")
    out["file"] = str(tmp_path / "a-file")
    out["dir"] = str(tmp_path)
    layer = Path(__file__).parents[1] / "pymodel/compiler/examples/tiny.mlir"
    out["layer"] = str(layer)
    (tmp_path / "spec.toml").write_text(EXAMPLE)
    (tmp_path / "badspec.toml").write_text(EXAMPLE.replace("modules = [4, 8]", "modules = [0]"))
    out["spec"], out["badspec"] = str(tmp_path / "spec.toml"), str(tmp_path / "badspec.toml")
    return out


CASES: list[tuple[str, list[str], str]] = [
    ("config not UTF-8", ["config", "show", "--config", "{bad.toml}"], "bad.toml:1: config is not"),
    ("model not UTF-8", SIM + ["--model", "{bad.json}", "--context", "100"], "not UTF-8 text"),
    ("CSV not UTF-8", SIM + MODEL + ["--trace", "{bad.csv}"], "bad.csv:1: trace is not UTF-8"),
    ("trace not UTF-8", ["trace", "check", "{bad.trace}"], "bad.trace:1: trace is not UTF-8"),
    ("timeline not UTF-8", ["timeline", "{bad.trace}", "-o", "{dir}/t.png"], "is not UTF-8"),
    ("seed -1 dataset", SIM + MODEL + ["--dataset", "qmsum", "--seed", "-1"], "--seed: -1 must"),
    ("seed -1 demo", ["demo", "--seed", "-1"], "demo: argument --seed: -1 must be at least 0"),
    ("seed -1 demo-system", ["demo-system", "--seed", "-1"], "--seed: -1 must be at least 0"),
    ("d-head 0", ["kernel", "--op", "qk", "--d-head", "0"], "kernel: --d-head = 0 must be"),
    (
        "hours of kernel",
        ["kernel", "--op", "qk", "--tokens", "250000", "--max-minutes", "0.1"],
        "limit --max-minutes 0.1",
    ),
    (
        "scores past the GPR",
        ["kernel", "--op", "qk", "--tokens", "1000000"],
        "results from GPR entry 8 exceed the GPR (16383 entries, module.gpr_bytes)",
    ),
    (
        "unwritable kernel cache",
        SIM[:-1] + ["{file}/sub"] + MODEL + ["--context", "100"],
        "--kernel-cache {file}/sub: {file} is a file",
    ),
    ("repro into a file", ["repro", "--out", "{file}"], "--out {file} exists and is a file"),
    ("compile over a file", ["compile", "{layer}", "-o", "{file}"], "-o {file} exists and is a"),
    (
        "hours of compile",
        ["compile", "{layer}", "--batch", "4096", "--max-minutes", "0.01", "-o", "{dir}/c"],
        "compile --batch 4096: about",
    ),
    ("compile batch 0", ["compile", "{layer}", "--batch", "0", "-o", "{dir}/c"], "--batch: 0"),
    ("compile unknown model", ["compile", "{layer}", "--model", "llm-9b"], "unknown model"),
    ("demo-system picture type", ["demo-system", "--out", "{dir}/x.txt"], "must end in .png"),
    ("demo trace into a dir", ["demo", "--trace", "{dir}"], "is a directory, not a file"),
    ("sweep without spec", ["sweep", "--out", "{dir}"], "SPEC.toml and --out DIR are required"),
    ("sweep spec not UTF-8", ["sweep", "{bad.toml}", "--out", "{dir}/s"], "sweep spec is not"),
    ("sweep into a file", ["sweep", "{spec}", "--out", "{file}"], "--out {file} exists and is"),
    ("sweep bad spec value", ["sweep", "{badspec}", "--out", "{dir}/s"], "grid.modules = 0"),
    ("unknown option", ["config", "show", "--jsn"], "unrecognized arguments: --jsn"),
    ("missing option", ["simulate", "--modles", "8"], "required: --model, --system, --modules"),
]


def _fill(text: str, files: dict[str, str]) -> str:
    for k, v in files.items():
        text = text.replace("{" + k + "}", v)
    return text


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pimphony: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2(
    name: str,
    argv: list[str],
    message: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([_fill(a, files) for a in argv]) == 2
    assert _fill(message, files) in _one_error_line(capsys)


def test_whole_program_exit_2_without_traceback(files: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pymodel.cli", "config", "show", "--config", files["bad.toml"]],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("pimphony: error: ") and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_missing_directories_are_created(files: dict[str, str], tmp_path: Path) -> None:
    trace = tmp_path / "new" / "deeper" / "gemv.trace"
    assert main(["demo", "--dim", "256", "--d-out", "32", "--trace", str(trace)]) == 0
    png = tmp_path / "other" / "t.png"
    assert main(["timeline", str(trace), "-o", str(png)]) == 0
    assert png.stat().st_size > 0 and not list(png.parent.glob(".*tmp*"))


@pytest.mark.slow
def test_model_names_any_case_in_every_command(tmp_path: Path) -> None:
    layer = Path(__file__).parents[1] / "pymodel/compiler/examples/tiny.mlir"
    for name in ("LLM-7B-128K-GQA", "llm-7b-128k-gqa"):
        assert main(["compile", str(layer), "--model", name, "--emit", "pim"]) == 0
        sim = SIM[:-2] + ["--model", name, "--context", "1000", "--json"]  # session cache
        assert main(sim) == 0


def test_unwritable_result_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"cannot write {blocker}/r.json"):
        write_or_print(blocker / "r.json", '{"result": 1}')
    assert json.loads(capsys.readouterr().out) == {"result": 1}


@pytest.mark.slow
def test_repro_prints_rows_when_its_directory_vanishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output directory is valid at the start and replaced by a file during the work: the
    rows are printed on stdout, then one error line and exit 2."""
    out = tmp_path / "out"
    real = experiments.kernel_utilization

    def run_then_break(cache: Any, show: bool) -> list[dict[str, Any]]:
        rows = real(cache, show)[:3]
        shutil.rmtree(out, ignore_errors=True)
        out.write_text("now a file")
        return rows

    monkeypatch.setattr(experiments, "kernel_utilization", run_then_break)
    rc = main(["repro", "--out", str(out), "--only", "kernel-utilization"])
    cap = capsys.readouterr()
    assert rc == 2
    assert len(json.loads(cap.out[: cap.out.rindex("]") + 1])) == 3
    assert cap.err.count("pimphony: error: cannot write") == 1 and "Traceback" not in cap.err
