"""The experiment set of ``pimphony repro`` (paper setups, see docs/system.md) and its outputs:
per experiment ``NAME.json`` (list of rows), ``NAME.csv`` and ``NAME.png``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymodel.config import PimConfig
from pymodel.golden.sched import Mode
from pymodel.system import dcs_study, workloads
from pymodel.system.gpu import gpu_best
from pymodel.system.kernel_cost import KernelCache
from pymodel.system.models import TABLE_I, ModelSpec
from pymodel.system.simulate import SimError, StepModel, StepResult
from pymodel.system.systems import GPU_SPECS, PimSystem, gpu_system, pim_only, xpu_pim
from pymodel.system.techniques import BUNDLE_NAMES, bundle
from pymodel.ui.outputs import write_or_print, write_text, write_with
from pymodel.ui.progress import progress

# Models with the datasets the paper evaluates them on.
MODEL_DATASETS: dict[str, tuple[str, str]] = {
    "LLM-7B-32K": ("qmsum", "musique"),
    "LLM-7B-128K-GQA": ("multifieldqa", "loogle-sd"),
    "LLM-72B-32K": ("qmsum", "musique"),
    "LLM-72B-128K-GQA": ("multifieldqa", "loogle-sd"),
}
PIM_MODULES = {"7B": 8, "72B": 32}
XPU_MODULES = {"7B": 4, "72B": 16}
GPU_COUNT = {"7B": 2, "72B": 8}
CONTEXTS = (4096, 16384, 65536, 262144, 1048576)
CAPACITIES_GB = (128, 256, 512, 1024)
SCALING_MODEL = "LLM-7B-128K-GQA"
SYSTEM_BUILDERS: dict[str, Callable[[int, PimConfig], PimSystem]] = {
    "pim-only": pim_only,
    "xpu-pim": xpu_pim,
}

Row = dict[str, Any]


def _size(model: str) -> str:
    return "72B" if "72B" in model else "7B"


@dataclass(frozen=True)
class Case:
    """One simulation: model x workload x system x technique."""

    model: str
    workload: str  # dataset name or ``ctx<N>``
    system: str
    modules: int
    technique: str
    group: str  # rows with the same group share a baseline

    def build_workload(self) -> workloads.Workload:
        if self.workload.startswith("ctx"):
            return workloads.varied(int(self.workload[3:]))
        return workloads.dataset(self.workload)


def _technique_cases(model: str, wl: str, system: str, modules: int, group: str) -> Iterator[Case]:
    for t in BUNDLE_NAMES:
        yield Case(model, wl, system, modules, t, group)


def cases(name: str) -> list[Case]:
    out: list[Case] = []
    if name in ("pim-only", "xpu-pim"):
        counts = PIM_MODULES if name == "pim-only" else XPU_MODULES
        for model, dsets in MODEL_DATASETS.items():
            for d in dsets:
                n = counts[_size(model)]
                out += _technique_cases(model, d, name, n, f"{model}/{d}")
    elif name == "context-scaling":
        for system, per_mod in (("pim-only", 16), ("xpu-pim", 32)):
            for ctx in CONTEXTS:
                n = 512 // per_mod
                out += _technique_cases(SCALING_MODEL, f"ctx{ctx}", system, n, f"{system}/{ctx}")
    elif name == "capacity-scaling":
        for system, per_mod in (("pim-only", 16), ("xpu-pim", 32)):
            for gb in CAPACITIES_GB:
                n = gb // per_mod
                out += _technique_cases(SCALING_MODEL, "ctx65536", system, n, f"{system}/{gb}GB")
    elif name == "capacity-utilization":
        for model, dsets in (
            ("LLM-7B-32K", MODEL_DATASETS["LLM-7B-32K"]),
            ("LLM-7B-128K-GQA", MODEL_DATASETS["LLM-7B-128K-GQA"]),
        ):
            for d in dsets:
                for t in ("+tcp+dcs", "pimphony"):
                    out.append(Case(model, d, "pim-only", 8, t, f"{model}/{d}"))
    elif name == "gpu":
        for model, dsets in MODEL_DATASETS.items():
            d = dsets[0]
            s = _size(model)
            grp = f"{model}/{d}"
            for gpu in GPU_SPECS:
                tech = f"{gpu}:flash-decoding+paged"
                out.append(Case(model, d, "gpu", GPU_COUNT[s], tech, grp))
            out.append(Case(model, d, "pim-only", PIM_MODULES[s], "pimphony", grp))
            out.append(Case(model, d, "xpu-pim", XPU_MODULES[s], "pimphony", grp))
    return out


EXPERIMENTS = (
    "pim-only",
    "xpu-pim",
    "context-scaling",
    "capacity-scaling",
    "capacity-utilization",
    "kernel-utilization",
    "gpu",
    "dcs-study",
)


def run_case(case: Case, cache: KernelCache) -> StepResult | str:
    """The best split of one case, or the reason it cannot run."""
    model: ModelSpec = TABLE_I[case.model]
    work = case.build_workload()
    try:
        if case.system == "gpu":
            return gpu_best(
                model, gpu_system(case.technique.split(":")[0], case.modules), work, None
            )
        system = SYSTEM_BUILDERS[case.system](case.modules, cache.cfg)
        tech = bundle(case.technique, case.system)
        return StepModel(model, system, tech, cache).best(work)
    except SimError as exc:
        return str(exc)


def _row(case: Case, res: StepResult | str) -> Row:
    row: Row = {
        "model": case.model,
        "dataset": case.workload,
        "system": case.system,
        "modules": case.modules,
        "technique": case.technique,
    }
    if case.system in SYSTEM_BUILDERS:
        row["bundle"] = bundle(case.technique, case.system).label
    if isinstance(res, str):
        return row | {"throughput_tokens_per_s": 0.0, "error": res}
    return row | {
        "throughput_tokens_per_s": res.throughput_tokens_per_s,
        "token_latency_ms": 1e3 * res.token_latency_s,
        "batch": res.batch,
        "max_batch": res.max_batch,
        "batch_limit": res.batch_limit,
        "tp": res.tp,
        "pp": res.pp,
        "mac_utilization": res.mac_utilization,
        "capacity_utilization": res.capacity_utilization,
        "energy_mj_per_token": 1e3 * res.energy_j_per_token,
        "fc_share": res.time_s.get("fc", 0.0) / res.step_s,
        "attention_share": res.time_s.get("attention", 0.0) / res.step_s,
    }


def run_experiment(name: str, cache: KernelCache, show: bool = True) -> list[Row]:
    if name == "kernel-utilization":
        return kernel_utilization(cache, show)
    if name == "dcs-study":
        return dcs_study.dcs_study(cache, show)
    cs = cases(name)
    rows: list[Row] = []
    base: dict[str, float] = {}
    for case in progress(cs, len(cs), f"{name:>20}", "cases") if show else cs:
        res = run_case(case, cache)
        row = _row(case, res)
        if case.group not in base:
            base[case.group] = row["throughput_tokens_per_s"]
        b = base[case.group]
        row["speedup_vs_baseline"] = row["throughput_tokens_per_s"] / b if b else 0.0
        rows.append(row)
        cache.save()
    return rows


KERNEL_DIMS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)


def kernel_utilization(cache: KernelCache, show: bool) -> list[Row]:
    """MAC utilization of one channel's GEMV (d x 4096), QK^T and SV (d tokens) per mode, each
    mode on its hardware (:func:`pymodel.system.dcs_study.mode_cache`)."""
    rows: list[Row] = []
    combos = [(k, d, m) for k in ("gemv", "qk", "sv") for d in KERNEL_DIMS for m in Mode]
    it = progress(combos, len(combos), f"{'kernel-utilization':>20}") if show else combos
    nccdl = cache.cfg.timing.nCCDL
    for kind, d, mode in it:
        kc = dcs_study.mode_cache(cache, mode)
        if kind == "gemv":
            c = kc.gemv(d, 4096, mode)
        elif kind == "qk":
            c = kc.qk(d, mode)
        else:
            c = kc.sv(d, mode)
        c = c.with_refresh(cache.cfg.timing.nREFI)
        util = c.command("MAC16") * nccdl / c.busy_cycles
        rows.append({"kernel": kind, "dimension": d, "mode": mode.value, "mac_utilization": util})
    cache.save()
    return rows


# ---------------------------------------------------------------------------- outputs


def write_outputs(name: str, rows: list[Row], out: Path) -> list[Path]:
    """``NAME.json``, ``NAME.csv``, ``NAME.png`` in ``out``, each written atomically; if the JSON
    cannot be written the rows go to stdout first (the work is never lost)."""
    paths = [out / f"{name}.json", out / f"{name}.csv", out / f"{name}.png"]
    write_or_print(paths[0], json.dumps(rows, indent=1))
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    write_text(paths[1], buf.getvalue())
    draw = dcs_study.plot if name == "dcs-study" else (lambda r, p: plot(name, r, p))
    write_with(paths[2], lambda tmp: draw(rows, tmp))
    return paths


def plot(name: str, rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    if name == "kernel-utilization":
        for kind in ("gemv", "qk", "sv"):
            for mode in Mode:
                pts = [
                    (r["dimension"], r["mac_utilization"])
                    for r in rows
                    if r["kernel"] == kind and r["mode"] == mode.value
                ]
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{kind} {mode.value}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("dimension (GEMV d_out, QK/SV tokens)")
        ax.set_ylabel("MAC utilization")
        ax.legend(ncol=3, fontsize=8)
    else:
        metric = (
            "capacity_utilization"
            if name == "capacity-utilization"
            else ("throughput_tokens_per_s" if name == "gpu" else "speedup_vs_baseline")
        )

        def group_of(r: Row) -> str:
            g = r["model"] + "\n" + r["dataset"]
            return str(g) if name == "gpu" else g + "\n" + r["system"] + f" x{r['modules']}"

        def series_of(r: Row) -> str:
            if name != "gpu":
                return str(r["technique"])
            if r["system"] == "gpu":
                return f"{r['technique'].split(':')[0]} x{r['modules']}"
            return f"{r['system']} x{r['modules']}"

        groups = list(dict.fromkeys(group_of(r) for r in rows))
        series = list(dict.fromkeys(series_of(r) for r in rows))
        width = 0.8 / max(1, len(series))
        for i, s in enumerate(series):
            ys = []
            for g in groups:
                v = [r.get(metric, 0.0) for r in rows if group_of(r) == g and series_of(r) == s]
                ys.append(v[0] if v else 0.0)
            ax.bar([x + i * width for x in range(len(groups))], ys, width, label=s)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))])
        ax.set_xticklabels(groups, fontsize=6)
        ax.set_ylabel(metric.replace("_", " "))
        if name == "gpu":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_title(f"pimphony repro: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
