"""Hardware systems: PIM-only (CENT-like) and xPU+PIM (NeuPIMs-like) modules built from the
channel config, and the A100 reference GPU (docs/system.md).

Numbers that are assumptions of this model, not of the paper, are named constants here and listed
in docs/system.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymodel.config import PimConfig
from pymodel.system.errors import SystemSimError

NMU_FLOPS = 3e12  # CENT near-memory unit (softmax, norms, SV reduction), per module
NPU_FLOPS = 256e12  # NeuPIMs NPU: 8 matrix units, per module
NPU_EFFICIENCY = 0.8  # achieved fraction of NPU peak on batched GEMM
LINK_BYTES_PER_S = 64e9  # inter-module link (CXL-class), per module
LINK_LATENCY_S = 1e-6  # per collective / pipeline hand-off
XPU_CHANNEL_FACTOR = 2  # an xPU+PIM module holds two PIM modules' channels (NeuPIMs: 32 GB)
NEUPIMS_SUB_BATCHES = 2  # NeuPIMs sub-batch interleaving (configs/system_configs/sub-batch-on)
SYSTEMS = ("pim-only", "xpu-pim", "gpu")


class SystemError_(SystemSimError):
    """Impossible system configuration."""


@dataclass(frozen=True)
class PimSystem:
    """``modules`` identical modules of ``channels`` PIM channels of ``cfg`` each."""

    name: str
    modules: int
    channels: int  # per module
    cfg: PimConfig
    fc_on_pim: bool  # PIM-only: FC on PIM; xPU+PIM: FC on the NPU
    nmu_flops: float = NMU_FLOPS
    npu_flops: float = 0.0
    link_bytes_per_s: float = LINK_BYTES_PER_S
    link_latency_s: float = LINK_LATENCY_S
    # NeuPIMs: dual row buffers let NPU weight reads and PIM attention use the channels at once,
    # which sub-batch interleaving (NPU FC of one sub-batch while PIM attends the other) needs.
    dual_row_buffers: bool = False
    sub_batches: int = 1

    def __post_init__(self) -> None:
        if self.modules < 1:
            raise SystemError_(f"--modules = {self.modules} must be at least 1")
        if self.sub_batches > 1 and not (self.dual_row_buffers and not self.fc_on_pim):
            raise SystemError_(
                "sub-batch interleaving needs an NPU for FC and dual row buffers on the PIM"
            )

    @property
    def module_bytes(self) -> int:
        return self.channels * self.cfg.geometry.channel_bytes

    @property
    def capacity_bytes(self) -> int:
        return self.modules * self.module_bytes

    @property
    def channel_bytes_per_s_external(self) -> float:
        """Host <-> channel bandwidth: one column per nBL."""
        g, t = self.cfg.geometry, self.cfg.timing
        return g.column_bytes / (t.nBL * self.cfg.tck_ns * 1e-9)

    @property
    def internal_bytes_per_s(self) -> float:
        """All-bank MAC bandwidth of the whole system (banks x column per nCCDL)."""
        g, t = self.cfg.geometry, self.cfg.timing
        per_ch = g.banks * g.column_bytes / (t.nCCDL * self.cfg.tck_ns * 1e-9)
        return per_ch * self.channels * self.modules

    @property
    def peak_macs_per_s(self) -> float:
        g, t = self.cfg.geometry, self.cfg.timing
        per_ch = g.banks * g.lanes / (t.nCCDL * self.cfg.tck_ns * 1e-9)
        return per_ch * self.channels * self.modules

    @property
    def npu_bytes_per_s(self) -> float:
        """Weight streaming bandwidth of one module's NPU: every channel's external bus."""
        return self.channels * self.channel_bytes_per_s_external


def pim_only(modules: int, cfg: PimConfig) -> PimSystem:
    """CENT-like: ``module.channels`` channels per module (32 aim-gddr6 channels = 16 GB,
    16 TB/s internal); FC and attention on PIM."""
    return PimSystem("pim-only", modules, cfg.module.channels, cfg, fc_on_pim=True)


def xpu_pim(modules: int, cfg: PimConfig) -> PimSystem:
    """NeuPIMs-like: NPU (256 TFLOPS) + 32 GB of PIM per module: twice ``module.channels``
    (64 aim-gddr6 channels of 512 MB = 32 GB, 32 TB/s internal); FC on the NPU, attention on
    PIM; dual row buffers and two interleaved sub-batches (NeuPIMs' memory type ``neupims``:
    "dual row buffered PIM"; ``sub_batch_mode``)."""
    return PimSystem(
        "xpu-pim",
        modules,
        XPU_CHANNEL_FACTOR * cfg.module.channels,
        cfg,
        fc_on_pim=False,
        npu_flops=NPU_FLOPS * NPU_EFFICIENCY,
        dual_row_buffers=True,
        sub_batches=NEUPIMS_SUB_BATCHES,
    )


@dataclass(frozen=True)
class GpuSystem:
    """A GPU reference (default A100-80GB SXM): bf16 roofline with flash-decoding and paged
    attention. Peak numbers are the vendors' public datasheet values (dense bf16, no sparsity;
    NVLink per direction)."""

    gpus: int
    name: str = "a100-80gb"
    flops: float = 312e12
    bytes_per_s: float = 2.039e12
    memory_bytes: int = 80 * 10**9
    bw_efficiency: float = 0.8  # achieved fraction of HBM bandwidth (flash-decoding)
    flops_efficiency: float = 0.7
    page_tokens: int = 16  # paged-attention block size
    nvlink_bytes_per_s: float = 300e9
    nvlink_latency_s: float = 5e-6
    reserve_bytes: int = 4 * 10**9  # activations, workspace, CUDA context per GPU

    def __post_init__(self) -> None:
        if self.gpus < 1:
            raise SystemError_(f"--modules = {self.gpus} must be at least 1 GPU")


# name -> (bf16 dense FLOPS, HBM bytes/s, HBM bytes, NVLink bytes/s per direction)
GPU_SPECS: dict[str, tuple[float, float, int, float]] = {
    "a100-80gb": (312e12, 2.039e12, 80 * 10**9, 300e9),  # A100 SXM4 80GB datasheet
    "h100-sxm": (989.4e12, 3.35e12, 80 * 10**9, 450e9),  # H100 SXM5 datasheet
    "h200": (989.4e12, 4.8e12, 141 * 10**9, 450e9),  # H200 SXM datasheet
}


def gpu_system(name: str, gpus: int) -> GpuSystem:
    if name not in GPU_SPECS:
        raise SystemError_(f"unknown GPU '{name}' (available: {', '.join(GPU_SPECS)})")
    flops, bw, mem, nvl = GPU_SPECS[name]
    return GpuSystem(gpus, name, flops, bw, mem, nvlink_bytes_per_s=nvl)
