"""Technique bundles compared incrementally: baseline -> +TCP -> +DCS -> +DPA (= pimphony).

Each system has its own baseline, modeled after the system its authors built, and the pimphony
bundles of a system build on that system's baseline (docs/system.md, "Baselines"):

* PIM-only: ``cent-like`` (CENT: AiM GDDR6 PIM modules, github Yufeng98/CENT and the AiM
  simulator it uses, arkhadem/aim_simulator). The AiM controller policy (in order, fixed gaps
  between instructions, a TMOD at every register-mode change, DMA-blocking RD_MAC), one
  accumulator per bank initialized by WR_BIAS, head-first partitioning, KV reserved for the
  maximum sequence length, GQA K/V re-streamed once per query head, FC and attention both on
  PIM, softmax and norms on the near-memory unit. Leaves out: CENT's pipeline of PIM and
  near-memory work across modules (the step model adds their times) and its CXL switch model.
* xPU+PIM: ``neupims-like`` (NeuPIMs, ASPLOS'24, github casys-kaist/NeuPIMs). The system (dual
  row buffers, sub-batch interleaving of NPU FC and PIM attention) is :func:`xpu_pim`'s; the
  bundle gives its PIM side: a per-channel free-row KV allocator (``KVCacheAlloc``: a FIFO of
  free rows per channel, a row popped when a stream outgrows its rows: memory ``"rows"``),
  head-first partitioning (a request's heads pinned to channels), its in-order PIM command
  queue (``NeuPIMSCommandQueue::GetReadyInPIMQueue`` issues only the queue head) without AiM's
  DMA-blocking RD_MAC. Left open by NeuPIMs and chosen here: one accumulator per bank and
  WR_BIAS init (AiM's; its Newton-derived PIM model gave us no count), GQA K/V re-streamed per
  query head (its configs are MHA only), AiM's fixed gaps and mode switch (we keep aim-gddr6
  channels, so the device rules are AiM's).

The DCS bundles use PIMphony's I/O-aware buffering: every OBuf entry, a dual-ported OBuf
(``buffers.obuf_dual_port``) and clear-on-read RD_OUT (``acc_init = "clear"``), and GQA row reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymodel.golden.sched import Mode
from pymodel.system.errors import SystemSimError

#: Names of the bundles in comparison order (``baseline`` = the system's own baseline).
BUNDLE_NAMES = ("baseline", "+tcp", "+tcp+dcs", "pimphony")
IO_AWARE = {"buffers": {"obuf_dual_port": True}}  # PIMphony's I/O-aware buffering
NEUPIMS_QUEUE = {"sched": {"blocking_rd_mac": False}}  # its PIM queue waits for timing only


@dataclass(frozen=True)
class Techniques:
    name: str  # one of BUNDLE_NAMES
    partition: str  # "hfp" (head-first) or "tcp" (token-centric)
    sched: Mode  # command scheduling of every PIM channel
    memory: str  # "static" (T_max reserved), "rows" (NeuPIMs free rows), "dpa" (1 MB chunks)
    gqa_row_reuse: bool  # QK^T of a GQA group's queries while the K row is open
    acc_init: str = "bias"  # accumulator init of every kernel (pymodel.golden.kernels.ACC_INITS)
    overrides: dict[str, Any] = field(default_factory=dict)  # PimConfig.with_overrides
    label: str = ""  # what the bundle is (baselines: the system it models)

    def __hash__(self) -> int:
        return hash((self.name, self.label))


def _dcs_bundles(memory: str) -> tuple[Techniques, ...]:
    return (
        Techniques("+tcp+dcs", "tcp", Mode.DCS, memory, True, "clear", IO_AWARE, "+tcp+dcs"),
        Techniques("pimphony", "tcp", Mode.DCS, "dpa", True, "clear", IO_AWARE, "pimphony"),
    )


SYSTEM_BUNDLES: dict[str, dict[str, Techniques]] = {
    "pim-only": {
        t.name: t
        for t in (
            Techniques("baseline", "hfp", Mode.STATIC, "static", False, label="cent-like"),
            Techniques("+tcp", "tcp", Mode.STATIC, "static", False, label="+tcp"),
            *_dcs_bundles("static"),
        )
    },
    "xpu-pim": {
        t.name: t
        for t in (
            Techniques(
                "baseline", "hfp", Mode.STATIC, "rows", False, "bias", NEUPIMS_QUEUE, "neupims-like"
            ),
            Techniques("+tcp", "tcp", Mode.STATIC, "rows", False, "bias", NEUPIMS_QUEUE, "+tcp"),
            *_dcs_bundles("rows"),
        )
    },
}
#: The PIM-only bundles by name (the default system's).
BUNDLES = SYSTEM_BUNDLES["pim-only"]
BASELINE_LABELS = {s: b["baseline"].label for s, b in SYSTEM_BUNDLES.items()}


class TechniqueError(SystemSimError):
    pass


def bundle(name: str, system: str = "pim-only") -> Techniques:
    """Bundle ``name`` of ``system`` (``baseline`` or its label, e.g. ``cent-like``)."""
    bundles = SYSTEM_BUNDLES.get(system, BUNDLES)
    if name == BASELINE_LABELS.get(system):
        name = "baseline"
    try:
        return bundles[name]
    except KeyError:
        names = ", ".join([*bundles, BASELINE_LABELS.get(system, "")]).rstrip(", ")
        raise TechniqueError(
            f"unknown technique bundle '{name}' for {system} (available: {names})"
        ) from None
