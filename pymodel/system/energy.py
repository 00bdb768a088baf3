"""Energy of a decode step from PIM command counts (per-command energies below) plus background.

The per-command energies are assumptions of this model for an AiM-class GDDR6-PIM channel (16
banks, 2 KB rows, 32 B columns), derived from public GDDR6/HBM2 figures of ~1 nJ per single-bank
ACT+PRE of a 2 KB row, ~1.5 pJ/bit for an array column access without the external I/O, ~5 pJ/bit
for the external GDDR6 interface, and ~1 pJ per bf16 MAC. They are listed in docs/system.md.
"""

from __future__ import annotations

PJ_PER_COMMAND: dict[str, float] = {
    "ACT16": 16 * 1000.0,  # all-bank activate + its precharge (charged on ACT16)
    "PREA": 0.0,  # included in ACT16
    "MAC16": 16 * 256 * 1.5 + 256 * 1.0,  # 16 banks x 32 B column read + 256 bf16 MACs
    "WRGB": 256 * 5.0,  # 32 B over the external bus into the global buffer
    "RDMAC": 256 * 5.0,  # 32 B of results over the external bus
    "CLRMAC": 16.0,  # clear one accumulator in 16 banks
    "REF": 16 * 1500.0,  # all-bank refresh
    "ACT": 1000.0,  # single-bank activate + its precharge (KV append)
    "WR": 256 * 1.5 + 256 * 5.0,  # 32 B over the external bus into one bank's row (KV append)
}
BACKGROUND_W_PER_CHANNEL = 0.15  # peripheral + standby power of one PIM channel


def step_energy_j(commands: dict[str, float], seconds: float, channels: int) -> float:
    """Energy of one decode round: commands plus background of ``channels`` channels."""
    dynamic = sum(PJ_PER_COMMAND.get(op, 0.0) * n for op, n in commands.items()) * 1e-12
    return dynamic + BACKGROUND_W_PER_CHANNEL * channels * seconds
