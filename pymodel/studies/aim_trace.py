"""Replay of AiM ISR traces (aim_simulator / CENT) on golden channels under the AiM controller.

Trace format (arkhadem/aim_simulator ``test/*.trace``, the traces CENT generates): one ISR a
line, ``AiM <ISR> <operands>``; ``#`` starts a comment line; the ``ISR_`` prefix is optional.
Operands, in this order where the ISR has them: opsize, GPR address, channel mask, row.

========  =============================  ================================================
ISR       operands                       commands on every channel of the mask
========  =============================  ================================================
WR_GB     opsize GPR ch_mask             WRGB at GB entries 0 .. opsize-1
WR_BIAS   GPR ch_mask                    WRBIAS (the accumulators' initial values)
MAC_ABK   opsize ch_mask row             [PREA] [ACT16 row] MAC16 at columns 0 .. opsize-1
RD_MAC    GPR ch_mask                    RDMAC (blocking: see below)
SYNC      (none)                         barrier across all channels
EOC       (none)                         end of the trace (required, as in aim_simulator)
========  =============================  ================================================

Channel mask: bit 31 is channel 0 (aim_simulator's ``FindFirstChannelIndex``). ``opsize`` unrolls
at consecutive columns from column 0 (MAC_ABK reads GB entry = column). Host-side requests
(``W GPR``, ``R GPR``, ``W CFR``) move no channel command and are counted only; the other ISRs
(WR_SBK, WR_ABK, RD_SBK, RD_AF, COPY_*, MAC_SBK, AF, EWMUL, EWADD, WR_AFLUT) and conventional
``R/W MEM`` accesses are refused with the line.

Controller policy (aim_simulator's ``AiM_dram_controller``): each channel serves its ISRs
strictly in order, each command at its earliest legal cycle (:class:`InOrderIssuer`); a TMOD on
every change of register-access mode, issued in the cycle the command it precedes would be ready;
MAC_ABK opens its row with ACT16, closing a different open row with PREA first. RD_MAC, SYNC and
EOC are DMA-blocking: the next ISR (on any channel) starts no earlier than one cycle after the
read data has returned (``nCLREG + nBL``) on every channel of the blocking ISR. Departures: REF is
issued when due (``timing.refresh``; the AiM model never refreshes), and every rule of
:mod:`pymodel.timing` applies (nFAW included). Timing only (``Channel(cfg, data=False)``): the
trace carries no data; AiM names no accumulator, so every WR_BIAS / MAC_ABK / RD_MAC uses OBuf
entry 0 (one accumulator per bank, as the AiM device model).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodel.config import PimConfig, add_config_argument, resolve
from pymodel.golden.channel import Channel
from pymodel.golden.inorder import InOrderIssuer
from pymodel.isa import Command, IsaError, Op

MASK_BITS = 32  # aim_simulator: 32 channels, bit 31 = channel 0
# ISR -> operand names in trace order (aim_simulator's field order, the ISRs modeled here).
OPERANDS: dict[str, tuple[str, ...]] = {
    "WR_GB": ("opsize", "gpr", "ch_mask"),
    "WR_BIAS": ("gpr", "ch_mask"),
    "MAC_ABK": ("opsize", "ch_mask", "row"),
    "RD_MAC": ("gpr", "ch_mask"),
    "SYNC": (),
    "EOC": (),
}
NOT_MODELED = (
    "WR_SBK",
    "WR_ABK",
    "WR_AFLUT",
    "RD_AF",
    "RD_SBK",
    "COPY_BKGB",
    "COPY_GBBK",
    "MAC_SBK",
    "AF",
    "EWMUL",
    "EWADD",
)
BLOCKING = frozenset({"RD_MAC", "SYNC", "EOC"})
HOST_REGIONS = ("GPR", "CFR")


class AimTraceError(IsaError):
    """A trace line that cannot be replayed: the message names ``file:line`` and the limit."""


@dataclass(frozen=True)
class Isr:
    name: str
    line: int
    channels: tuple[int, ...] = ()
    opsize: int = 1
    row: int = 0


@dataclass
class ChannelResult:
    channel: int
    first: int | None = None
    last: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    def __call__(self, cycle: int, cmd: Command, result: Any) -> None:
        if self.first is None:
            self.first = cycle
        self.last = cycle
        self.commands[cmd.op.name] += 1

    @property
    def span_cycles(self) -> int:
        return 0 if self.first is None else self.last - self.first + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "span_cycles": self.span_cycles,
            "commands": dict(sorted(self.commands.items())),
            "refs": self.commands.get("REF", 0),
        }


def _int(tok: str, where: str, name: str) -> int:
    try:
        return int(tok, 16) if tok.lower().startswith("0x") else int(tok)
    except ValueError:
        raise AimTraceError(f"{where}: {name} = '{tok}' is not an integer") from None


def _channels(mask: int, where: str, cfg: PimConfig) -> tuple[int, ...]:
    if not 0 < mask < 1 << MASK_BITS:
        raise AimTraceError(
            f"{where}: ch_mask = {mask:#x} must name 1 to {MASK_BITS} channels "
            f"(a nonzero {MASK_BITS}-bit mask, bit 31 = channel 0)"
        )
    chans = tuple(MASK_BITS - 1 - i for i in range(MASK_BITS) if mask >> i & 1)
    limit = cfg.module.channels
    if max(chans) >= limit:
        raise AimTraceError(
            f"{where}: ch_mask = {mask:#x} names channel {max(chans)}, the module has "
            f"{limit} (module.channels)"
        )
    return tuple(sorted(chans))


def parse(text: str, cfg: PimConfig, source: str = "<trace>") -> tuple[list[Isr], int]:
    """The ISRs of a trace up to EOC and the number of host-side (GPR/CFR) requests."""
    g, b = cfg.geometry, cfg.buffers
    isrs: list[Isr] = []
    host = 0
    ended = False
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.replace(",", " ").split()
        if not tokens or tokens[0].startswith("#"):
            continue
        where = f"{source}:{lineno}"
        if ended:
            raise AimTraceError(f"{where}: '{line.strip()}' after EOC (the trace ends at EOC)")
        kind = tokens[0]
        if kind in ("R", "W"):
            region = tokens[1] if len(tokens) > 1 else ""
            if region not in HOST_REGIONS:
                raise AimTraceError(
                    f"{where}: conventional '{kind} {region}' access is not modeled "
                    f"(only host-side {'/'.join(HOST_REGIONS)} requests)"
                )
            host += 1
            continue
        if kind != "AiM":
            raise AimTraceError(f"{where}: expected 'AiM', 'R' or 'W', got '{kind}'")
        if len(tokens) < 2:
            raise AimTraceError(f"{where}: 'AiM' needs an ISR")
        name = tokens[1].upper().removeprefix("ISR_")
        if name in NOT_MODELED:
            raise AimTraceError(f"{where}: ISR {name} is not modeled (supported: {_supported()})")
        if name not in OPERANDS:
            raise AimTraceError(f"{where}: unknown ISR '{tokens[1]}' (supported: {_supported()})")
        names, ops = OPERANDS[name], tokens[2:]
        if len(ops) != len(names):
            want = " ".join(f"<{n}>" for n in names) or "no operands"
            raise AimTraceError(
                f"{where}: {name} takes {len(names)} operand(s) ({want}), got {len(ops)}"
            )
        v = {n: _int(t, where, n) for n, t in zip(names, ops, strict=True)}
        if name in ("SYNC", "EOC"):
            isrs.append(Isr(name, lineno))
            ended = name == "EOC"
            continue
        chans = _channels(v["ch_mask"], where, cfg)
        size = v.get("opsize", 1)
        limit = b.gb_entries if name == "WR_GB" else g.columns_per_row
        if name in ("WR_GB", "MAC_ABK") and not 1 <= size <= limit:
            what = "GB entries (buffers.gb_entries)" if name == "WR_GB" else "columns in a row"
            raise AimTraceError(f"{where}: opsize = {size} out of range [1, {limit}] ({what})")
        row = v.get("row", 0)
        if not 0 <= row < g.rows_per_bank:
            raise AimTraceError(f"{where}: row = {row} out of range [0, {g.rows_per_bank - 1}]")
        gpr_limit = cfg.module.gpr_bytes // g.column_bytes
        if "gpr" in v and not 0 <= v["gpr"] < gpr_limit:
            raise AimTraceError(f"{where}: GPR = {v['gpr']} out of range [0, {gpr_limit - 1}]")
        isrs.append(Isr(name, lineno, chans, size, row))
    if not ended:
        raise AimTraceError(f"{source}: no EOC (aim_simulator requires the trace to end with EOC)")
    return isrs, host


def _supported() -> str:
    return ", ".join(OPERANDS)


def _commands(isr: Isr, ch: Channel, zero: tuple[int, ...]) -> list[Command]:
    if isr.name == "WR_GB":
        return [Command(Op.WRGB, gb=i, data=zero) for i in range(isr.opsize)]
    if isr.name == "WR_BIAS":
        return [Command(Op.WRBIAS, out=0, data=zero)]
    if isr.name == "RD_MAC":
        return [Command(Op.RDMAC, out=0)]
    cmds = []
    if ch.open_row != [isr.row] * ch.n_banks:
        if any(r is not None for r in ch.open_row):
            cmds.append(Command(Op.PREA))
        cmds.append(Command(Op.ACT16, row=isr.row))
    return cmds + [Command(Op.MAC16, col=i, gb=i, out=0) for i in range(isr.opsize)]


def replay(isrs: list[Isr], cfg: PimConfig) -> list[ChannelResult]:
    """Run the ISRs on one golden channel per channel the trace touches (see module doc)."""
    used = sorted({c for isr in isrs for c in isr.channels})
    channels = {c: Channel(cfg, data=False) for c in used}  # the trace carries no data
    issuers = {c: InOrderIssuer(ch) for c, ch in channels.items()}
    results = {c: ChannelResult(c) for c in used}
    for c, ch in channels.items():
        ch.observe(results[c])
    zero = (0,) * cfg.geometry.lanes
    t = cfg.timing
    barrier = 0  # DMA-blocking ISRs: no channel starts the next ISR before this cycle
    for isr in isrs:
        targets = isr.channels or tuple(used)  # SYNC/EOC: every channel
        ready = barrier
        for c in isr.channels:
            iss = issuers[c]
            iss.cycle = max(iss.cycle, barrier)
            for cmd in _commands(isr, channels[c], zero):
                iss.issue(cmd)
            if isr.name in BLOCKING:
                ready = max(ready, iss.cycle - 1 + t.nCLREG + t.nBL + 1)
        if isr.name in ("SYNC", "EOC"):
            ready = max([barrier] + [issuers[c].cycle for c in targets])
        if isr.name in BLOCKING:
            barrier = ready
    return [results[c] for c in used]


def run_file(path: str | Path, cfg: PimConfig) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise AimTraceError(f"cannot read trace {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise AimTraceError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    isrs, host = parse(text, cfg, str(p))
    return {
        "trace": str(p),
        "config": cfg.name,
        "policy": "aim-controller",
        "mode_switch": cfg.timing.mode_switch,
        "refresh": cfg.timing.refresh,
        "accumulator": "one per bank (OBuf entry 0)",
        "data": "timing only",
        "isrs": len(isrs),
        "host_requests": host,
        "channels": [r.as_dict() for r in replay(isrs, cfg)],
    }


def cmd_trace_replay(args: argparse.Namespace) -> int:
    """Replay an AiM ISR trace (aim_simulator / CENT format) on golden channels under the AiM
    controller policy: in order, TMOD on every mode switch, blocking RD_MAC."""
    cfg = resolve(args.config)
    if args.no_refresh:
        cfg = cfg.with_overrides({"timing": {"refresh": False}})
    out = run_file(args.trace, cfg)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{out['trace']}: {out['isrs']} ISRs on {len(out['channels'])} channel(s), {cfg.name}, "
        f"mode switch {cfg.timing.mode_switch}, refresh {'on' if cfg.timing.refresh else 'off'}"
    )
    for ch in out["channels"]:
        cmds = ", ".join(f"{k} {v}" for k, v in ch["commands"].items())
        print(f"  channel {ch['channel']:>2}: {ch['span_cycles']:>10,} cycles  ({cmds})")
    return 0


def add_replay_parser(tsub: Any) -> None:
    replay_p = tsub.add_parser(
        "replay",
        help="replay an AiM ISR trace (aim_simulator/CENT) under the AiM controller policy",
        description=cmd_trace_replay.__doc__,
    )
    replay_p.add_argument("trace", metavar="TRACE", help="ISR trace ('AiM <ISR> ...' lines)")
    replay_p.add_argument(
        "--format", choices=["aim"], default="aim", help="trace format (aim: aim_simulator ISRs)"
    )
    replay_p.add_argument(
        "--no-refresh", action="store_true", help="turn refresh off (as the AiM simulator)"
    )
    replay_p.add_argument("--json", action="store_true", help="print the per-channel result")
    add_config_argument(replay_p)
    replay_p.set_defaults(func=cmd_trace_replay)


# ---------------------------------------------------------------------------- example traces
# CENT-style kernels on channel 0 (our layouts in CENT's ISR structure; see docs/model.md).

CH0 = 0x80000000
GB_INPUTS = 1024  # one GB load: 64 entries x 16 bf16


def mac_stream(rows: int) -> str:
    """A full-row MAC stream: MAC_ABK over all 64 columns of rows 0 .. rows-1."""
    return "".join(f"AiM MAC_ABK 64 {CH0:#x} {r}\n" for r in range(rows)) + "AiM EOC\n"


def _groups(chunks: int, groups: int, cols: int, load: int) -> str:
    """Per chunk: WR_GB of ``load`` entries; per (chunk, group): WR_BIAS, MAC_ABK, RD_MAC."""
    lines = []
    for c in range(chunks):
        lines.append(f"AiM WR_GB {load} {c * 64} {CH0:#x}")
        for g in range(groups):
            row = c * groups + g
            lines += [
                f"AiM WR_BIAS 0 {CH0:#x}",
                f"AiM MAC_ABK {cols} {CH0:#x} {row}",
                f"AiM RD_MAC {row} {CH0:#x}",
            ]
    return "\n".join(lines + ["AiM EOC"]) + "\n"


def gemv(d: int) -> str:
    """GEMV d x d: WR_GB per 1024-input chunk, per output group of 16 WR_BIAS/MAC_ABK/RD_MAC."""
    cols = min(d, GB_INPUTS) // 16
    return _groups(-(-d // GB_INPUTS), d // 16, cols, cols)


def qk(tokens: int) -> str:
    """QK^T, 8 heads per row: a row holds 16 tokens x 8 heads x 128 dims (64 columns); the 8
    queries fill the GB once; per row WR_BIAS / MAC_ABK 64 / RD_MAC."""
    return _groups(1, tokens // 16, 64, 64)


def sv(tokens: int, d_head: int = 128) -> str:
    """SV, V dim-major: a row holds 1024 tokens of 16 dims; per 1024-token block WR_GB 64 (the
    scores), per (block, 16-dim slot) WR_BIAS / MAC_ABK 64 / RD_MAC (host adds the partials)."""
    return _groups(-(-tokens // GB_INPUTS), d_head // 16, 64, 64)


EXAMPLES = {
    "mac-stream-4096": lambda: mac_stream(4096),
    "gemv-128": lambda: gemv(128),
    "gemv-1024": lambda: gemv(1024),
    "gemv-4096": lambda: gemv(4096),
    "qk-4096-8heads": lambda: qk(4096),
    "sv-32k": lambda: sv(32768),
}


def main() -> None:
    """Print the replay of the example traces (docs/model.md) under the AiM policy, refresh off."""
    cfg = resolve("aim-gddr6").with_overrides({"timing": {"refresh": False}})
    print("| trace | ISRs | span cycles | TMOD | MAC16 | MAC utilization |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, make in EXAMPLES.items():
        isrs, _ = parse(make(), cfg, name)
        (res,) = replay(isrs, cfg)
        util = res.commands["MAC16"] * cfg.timing.nCCDL / res.span_cycles
        print(
            f"| {name} | {len(isrs):,} | {res.span_cycles:,} | {res.commands['TMOD']:,} | "
            f"{res.commands['MAC16']:,} | {100 * util:.1f}% |"
        )


if __name__ == "__main__":
    main()
