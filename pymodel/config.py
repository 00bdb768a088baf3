"""One source of truth for PIM geometry, buffers, timing and module parameters.

Everything else (channel model, schedulers, generated RTL package) reads these frozen dataclasses.
Presets: ``aim-gddr6`` (SK hynix AiM GDDR6, docs/model.md) and ``hbm3-pim`` (AttAcc-like HBM3-PIM).
A config can be loaded from a TOML or JSON file that names a base preset and overrides fields per
section; unknown sections or keys are errors.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pymodel.errors import PimphonyError


class ConfigError(PimphonyError, ValueError):
    """Invalid configuration: the message names the field and the allowed range."""


def _check_range(
    section: str,
    obj: object,
    limits: Mapping[str, tuple[int, int]],
    only: list[str] | None = None,
) -> None:
    for f in fields(obj):  # type: ignore[arg-type]
        if only is not None and f.name not in only:
            continue
        value = getattr(obj, f.name)
        lo, hi = limits.get(f.name, (0, 1 << 30))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{section}.{f.name}: expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(f"{section}.{f.name} = {value} is out of range [{lo}, {hi}]")


def _check_pow2(section: str, name: str, value: int) -> None:
    if value & (value - 1):
        raise ConfigError(f"{section}.{name} = {value} must be a power of two")


def clog2(n: int) -> int:
    """Bits needed to index ``n`` items (at least 1, so every field has a width)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class Geometry:
    """Bank/row/column organisation of one PIM channel."""

    bank_groups: int = 4
    banks_per_group: int = 4
    rows_per_bank: int = 16384
    columns_per_row: int = 64
    column_bytes: int = 32

    def __post_init__(self) -> None:
        _check_range(
            "geometry",
            self,
            {
                "bank_groups": (1, 16),
                "banks_per_group": (1, 16),
                "rows_per_bank": (2, 1 << 20),
                "columns_per_row": (2, 1024),
                "column_bytes": (2, 256),
            },
        )
        for name in ("bank_groups", "banks_per_group", "rows_per_bank", "columns_per_row"):
            _check_pow2("geometry", name, getattr(self, name))
        if self.column_bytes % 2:
            raise ConfigError(f"geometry.column_bytes = {self.column_bytes} must be even (bf16)")

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def lanes(self) -> int:
        """bf16 elements per column = MAC lanes per bank."""
        return self.column_bytes // 2

    @property
    def row_bytes(self) -> int:
        return self.columns_per_row * self.column_bytes

    @property
    def channel_bytes(self) -> int:
        return self.banks * self.rows_per_bank * self.row_bytes

    def bank_group(self, bank: int) -> int:
        return bank // self.banks_per_group


@dataclass(frozen=True)
class Buffers:
    """Per-channel global buffer (GB) and per-bank output buffer (OBuf): PIMphony's I/O-aware
    buffering as hardware parameters.

    ``obuf_dual_port``: the OBuf has a second, read-out port on the HUB side besides the MAC
    units' accumulate port. An RDMAC/CLRMAC of one entry then does not use the banks' column
    path (no MAC16/RD <-> RDMAC column spacing, ``pymodel.timing.Rule.column_path``) and is
    decoded in either register-access mode (it needs no TMOD), while MACs accumulate into the
    other entries; the same entry stays exclusive (the ``out:`` rules) and the read data still
    uses the external bus (bus rules, turnarounds). False: AiM's single-ported accumulators.
    """

    gb_entries: int = 64  # entries of one column (32 B) each, shared by all banks
    obuf_entries: int = 8  # accumulators per bank (baseline AiM: 1)
    queue_depth: int = 8  # instructions each command-scheduler queue holds
    obuf_dual_port: bool = False

    def __post_init__(self) -> None:
        _check_range(
            "buffers",
            self,
            {"gb_entries": (1, 1024), "obuf_entries": (1, 256), "queue_depth": (2, 64)},
            only=["gb_entries", "obuf_entries", "queue_depth"],
        )
        if not isinstance(self.obuf_dual_port, bool):
            raise ConfigError(
                f"buffers.obuf_dual_port: expected true or false, got {self.obuf_dual_port!r}"
            )


#: Host <-> channel register-access mode policies (``timing.mode_switch``), see pymodel.timing.
MODE_SWITCH_POLICIES = ("aim-register", "pim-normal", "none")


@dataclass(frozen=True)
class Timing:
    """DRAM/PIM timing in command-clock cycles (tCK) and the channel's mode-switch policy.

    Sources (docs/model.md lists them per rule): the public AiM simulator used by CENT
    (arkhadem/aim_simulator 0f28a07, ``GDDR6_AiM_timing``) for every AiM value, incl. nWTRS/nWTRL,
    nWPRE, nCWLREG and the fixed 3 cycles of its read-to-write rule (``nRTW_PAD``). Refresh:
    tREFI = 32 ms / 16k REF commands = 1.953 us (Micron 8Gb GDDR6 MT61K256M32 datasheet, "auto
    refresh 32 ms, 16k cycles") = 3906 cycles at 0.5 ns (rounded down: never refresh late);
    tRFC = 105 ns = 210 cycles (AiM simulator's GDDR6_AiM_timing nRFC).
    """

    nRCD_MAC: int = 56
    nRCD_RD: int = 36
    nRCD_WR: int = 28
    nRP: int = 32
    nRAS: int = 54
    nRC: int = 89
    nRTP: int = 12
    nWR: int = 33
    nCL: int = 50
    nCWL: int = 6
    nBL: int = 2
    nCCDS: int = 2
    nCCDL: int = 2
    nRRDS: int = 5
    nRRDL: int = 6
    nFAW: int = 28
    nRFC: int = 210
    nREFI: int = 3906
    nCLREG: int = 0
    nCLGB: int = 1
    nCWLGB: int = 1
    nCWLREG: int = 1
    nMODCH: int = 32
    nWTRS: int = 9  # write data end -> read, other bank group (AiM GDDR6 table)
    nWTRL: int = 11  # write data end -> read, same bank group / register read-out
    nWPRE: int = 1  # write preamble on a read -> write turnaround
    nRTW_PAD: int = 3  # fixed cycles of the read -> write rule nCL + nBL + 3 - nCWL + nWPRE
    max_postponed_refs: int = 8  # JEDEC: up to 8 REF may be postponed past nREFI
    mode_switch: str = "aim-register"  # one of MODE_SWITCH_POLICIES
    refresh: bool = True  # False: no REF is ever due (comparisons with refresh-free models)

    def __post_init__(self) -> None:
        ints = [f for f in fields(self) if f.name not in ("mode_switch", "refresh")]
        limits = {f.name: (1, 1 << 16) for f in ints}
        for name in ("nCLREG", "nCLGB", "nCWLGB", "nCWLREG", "nWPRE", "nRTW_PAD"):
            limits[name] = (0, 255)
        limits.update({"max_postponed_refs": (0, 8), "nREFI": (1, 1 << 20)})
        _check_range("timing", self, limits, only=[f.name for f in ints])
        if self.mode_switch not in MODE_SWITCH_POLICIES:
            raise ConfigError(
                f"timing.mode_switch = {self.mode_switch!r} is not one of "
                f"{', '.join(MODE_SWITCH_POLICIES)}"
            )
        if not isinstance(self.refresh, bool):
            raise ConfigError(f"timing.refresh: expected true or false, got {self.refresh!r}")
        if self.nRC < self.nRAS + self.nRP:
            raise ConfigError(
                f"timing.nRC = {self.nRC} must be >= nRAS + nRP = {self.nRAS + self.nRP}"
            )
        # A refresh interval must leave room for work: tRFC, one row cycle (ACT -> REF needs nRC)
        # and a mode switch; with less, refresh alone fills the channel and nothing progresses.
        switch = self.nMODCH + 1 if self.mode_switch != "none" else 0
        least = self.nRFC + self.nRC + switch
        if self.refresh and self.nREFI <= least:
            raise ConfigError(
                f"timing.nREFI = {self.nREFI} must be > nRFC + nRC"
                f"{' + nMODCH + 1' if switch else ''} = {least} (set timing.refresh = false to "
                "turn refresh off)"
            )


@dataclass(frozen=True)
class Module:
    """A PIM module: channels behind one HUB, plus clock and HUB buffers."""

    channels: int = 32
    tck_ps: int = 500
    gpr_bytes: int = 512 * 1024
    max_op_size: int = 256  # repetitions one HUB instruction may unroll

    def __post_init__(self) -> None:
        _check_range(
            "module",
            self,
            {
                "channels": (1, 64),
                "tck_ps": (100, 10_000),
                "gpr_bytes": (32, 1 << 24),
                "max_op_size": (1, 1 << 16),
            },
        )


@dataclass(frozen=True)
class Dpa:
    """DPA dispatcher table sizes (see pymodel.golden.dpa)."""

    max_requests: int = 64
    max_chunks_per_request: int = 1024
    chunk_rows: int = 32  # all-bank rows per chunk; 32 x 32 KB = 1 MB on aim-gddr6
    max_body_len: int = 16  # instructions in one DYN_LOOP body

    def __post_init__(self) -> None:
        _check_range(
            "dpa",
            self,
            {
                "max_requests": (1, 4096),
                "max_chunks_per_request": (1, 1 << 16),
                "chunk_rows": (1, 1 << 16),
                "max_body_len": (1, 255),
            },
        )


@dataclass(frozen=True)
class Sched:
    """Controller policy of the command scheduler (not device timing)."""

    # STATIC (the AiM controller): after an RDMAC nothing issues until its data has returned and
    # one cycle more (aim_simulator: RD_MAC is DMA-blocking, the next ISR is decoded after the
    # read's callback).
    blocking_rd_mac: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.blocking_rd_mac, bool):
            raise ConfigError(
                f"sched.blocking_rd_mac: expected true or false, got {self.blocking_rd_mac!r}"
            )


SECTIONS = ("geometry", "buffers", "timing", "module", "dpa", "sched")


@dataclass(frozen=True)
class PimConfig:
    """The full device configuration; build one with :func:`preset` or :func:`load_config`."""

    name: str = "aim-gddr6"
    geometry: Geometry = field(default_factory=Geometry)
    buffers: Buffers = field(default_factory=Buffers)
    timing: Timing = field(default_factory=Timing)
    module: Module = field(default_factory=Module)
    dpa: Dpa = field(default_factory=Dpa)
    sched: Sched = field(default_factory=Sched)

    def __post_init__(self) -> None:
        if self.buffers.gb_entries > self.geometry.columns_per_row * 16:
            raise ConfigError("buffers.gb_entries is implausibly large for the row size")
        if self.dpa.chunk_rows > self.geometry.rows_per_bank:
            raise ConfigError(
                f"dpa.chunk_rows = {self.dpa.chunk_rows} is out of range "
                f"[1, {self.geometry.rows_per_bank}] (geometry.rows_per_bank)"
            )

    @property
    def tck_ns(self) -> float:
        return self.module.tck_ps / 1000.0

    @property
    def chunk_bytes(self) -> int:
        return self.dpa.chunk_rows * self.geometry.row_bytes * self.geometry.banks

    def with_overrides(self, overrides: Mapping[str, Any]) -> PimConfig:
        """Return a copy with ``{"section": {"key": value}}`` overrides applied and validated."""
        updates: dict[str, Any] = {}
        for section, values in overrides.items():
            if section == "name":
                if not isinstance(values, str):
                    raise ConfigError(f"name: expected a string, got {values!r}")
                updates["name"] = values
                continue
            if section not in SECTIONS:
                raise ConfigError(
                    f"unknown config section '{section}' (allowed: {', '.join(SECTIONS)})"
                )
            if not isinstance(values, Mapping):
                raise ConfigError(f"{section}: expected a table of key = value")
            current = getattr(self, section)
            known = {f.name for f in fields(current)}
            for key in values:
                if key not in known:
                    raise ConfigError(
                        f"unknown key '{section}.{key}' (allowed: {', '.join(sorted(known))})"
                    )
            updates[section] = replace(current, **dict(values))
        return replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, PimConfig] = {
    "aim-gddr6": PimConfig(),
    # AttAcc-like HBM3-PIM pseudo-channel: 1 KB rows, 1.6 GHz command clock, HBM3 timings (ns
    # values from JEDEC-class HBM3 parts rounded to cycles). Proves nothing is hard-wired to AiM.
    # nWTRS/nWTRL from the AttAcc simulator's HBM3_6.4Gbps preset (scale-snu/attacc_simulator,
    # HBM3-PIM.cpp); mode_switch "none": its HBM3-PIM command set has no mode-switch command.
    "hbm3-pim": PimConfig(
        name="hbm3-pim",
        geometry=Geometry(
            bank_groups=4,
            banks_per_group=4,
            rows_per_bank=16384,
            columns_per_row=32,
            column_bytes=32,
        ),
        buffers=Buffers(gb_entries=32, obuf_entries=8),
        timing=Timing(
            nRCD_MAC=24,
            nRCD_RD=24,
            nRCD_WR=20,
            nRP=24,
            nRAS=53,
            nRC=77,
            nRTP=8,
            nWR=27,
            nCL=24,
            nCWL=8,
            nBL=2,
            nCCDS=2,
            nCCDL=4,
            nRRDS=4,
            nRRDL=6,
            nFAW=24,
            nRFC=560,
            nREFI=6240,
            nCLREG=2,
            nCLGB=1,
            nCWLGB=1,
            nMODCH=16,
            nWTRS=10,
            nWTRL=13,
            mode_switch="none",
        ),
        module=Module(channels=32, tck_ps=625),
    ),
}


def preset(name: str) -> PimConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset '{name}' (available: {', '.join(sorted(PRESETS))})"
        ) from None


def load_config(path: str | Path) -> PimConfig:
    """Load a TOML or JSON config: optional ``preset = "..."`` plus per-section overrides."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a table/object")
    base = data.pop("preset", "aim-gddr6")
    if not isinstance(base, str):
        raise ConfigError(f"{p}: preset must be a string")
    try:
        return preset(base).with_overrides(data)
    except TypeError as exc:  # pragma: no cover - replace() with bad kwargs is caught above
        raise ConfigError(f"{p}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def add_config_argument(parser: Any) -> None:
    """The ``--config PRESET|FILE`` option every CLI command shares (read with :func:`resolve`)."""
    parser.add_argument(
        "--config",
        metavar="PRESET|FILE",
        default=None,
        help=f"preset name ({', '.join(PRESETS)}) or a TOML/JSON config file (default: aim-gddr6)",
    )


def resolve(spec: str | Path | None) -> PimConfig:
    """A preset name or a path to a config file (``None`` = aim-gddr6)."""
    if spec is None:
        return PRESETS["aim-gddr6"]
    s = str(spec)
    if s in PRESETS:
        return PRESETS[s]
    if s.endswith((".toml", ".json")) or Path(s).exists():
        return load_config(s)
    return preset(s)
