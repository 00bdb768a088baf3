"""The directed programs of the pim_sched bench against the reference alone (no simulator): each
binds the timing rules ``directed_targets`` names for it (the RTL run, ``run_directed``, checks
the same on the bus), and a program that cannot bind its rule is caught."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tb" / "common"), str(ROOT / "tb" / "cmd_sched")]

from sched_stimulus import directed_data, directed_programs, directed_targets  # noqa: E402
from test_cmd_sched import SIM_CONFIGS  # noqa: E402

from pymodel.config import PimConfig, resolve  # noqa: E402
from pymodel.golden.channel import Channel  # noqa: E402
from pymodel.golden.sched import Mode, Scheduler  # noqa: E402
from pymodel.isa import Instruction, encode  # noqa: E402
from scoreboards.cmd_sched import BusChannel, lanes_to_int  # noqa: E402

CONFIGS = ["aim-gddr6", "pim-normal", "no-mode", "rtw"]


def _config(name: str, tmp_path: Path) -> PimConfig:
    toml = SIM_CONFIGS[name]
    if toml is None:
        return resolve(name)
    path = tmp_path / f"{name}.toml"
    path.write_text(toml)
    return resolve(path)


def _bindings(cfg: PimConfig, program: list[Instruction]) -> Counter[str]:
    """Rules binding some command of ``program``'s reference schedule, over all modes (replayed
    on the bench's BusChannel, which counts a rule when it set a command's cycle, ties too)."""
    rows, gpr = directed_data(cfg, 1)
    seen: Counter[str] = Counter()
    for mode in Mode:
        ch = Channel(cfg)
        for r, v in rows.items():
            ch.load_row(r, v)
        res = Scheduler(cfg, mode, ch).run(program, dict(gpr))
        bus = BusChannel(cfg, rows)
        for e in res.trace:
            data = e.cmd.data if e.cmd.data is not None else (0,) * cfg.geometry.lanes
            bus.command(e.cycle, encode(e.cmd, cfg), lanes_to_int(data))
        seen.update(bus.binding)
    return seen


@pytest.mark.parametrize("config", CONFIGS)
def test_directed_programs_bind_their_targets(config: str, tmp_path: Path) -> None:
    cfg = _config(config, tmp_path)
    progs = directed_programs(cfg)
    targets = directed_targets(cfg)
    for name, rules in targets.items():
        missing = rules - set(_bindings(cfg, progs[name]))
        assert not missing, f"{config}: {name} never binds {sorted(missing)}"


def test_targets_follow_the_mode_policy(tmp_path: Path) -> None:
    """aim-register hides the mode-crossing pairs behind a TMOD (two WRs cross no mode);
    RDMAC -> WR binds only where it lasts."""
    aim = directed_targets(_config("aim-gddr6", tmp_path))
    assert aim.pop("wrbank_pair_in_group") == {"nCCDL_WR"} and not any(aim.values())
    assert directed_targets(_config("pim-normal", tmp_path))["mac_then_bias"]
    nomode = directed_targets(_config("no-mode", tmp_path))
    assert nomode["bias_then_wrbank"] and not nomode["rdmac_then_wrbank"]
    assert directed_targets(_config("rtw", tmp_path))["rdmac_then_wrbank"] == {"bus:RDMAC->WR"}


def test_a_program_missing_its_bin_is_caught(tmp_path: Path) -> None:
    """Planted: the bias into another accumulator than the MACs', bias and read-out trains too
    short to outlast ACT -> WR, the second WR_BANK in another bank group: none binds its
    rule."""
    cfg = _config("rtw", tmp_path)
    progs = directed_programs(cfg)
    mac, bias, pair = (
        progs["mac_then_bias"],
        progs["bias_then_wrbank"],
        progs["wrbank_pair_in_group"],
    )
    other_group = cfg.geometry.banks_per_group
    planted = {
        "out:MAC16->CLRMAC": mac[:2] + [replace(mac[2], out=1)],
        "nCCDL_BIAS_WR": [bias[0], replace(bias[1], op_size=1), *bias[-2:]],
        "nCCDL_WR": [*pair[:3], replace(pair[3], bank=other_group), pair[4]],
        "bus:RDMAC->WR": progs["rdmac_then_wrbank"][:2] + progs["rdmac_then_wrbank"][-1:],
    }
    for rule, prog in planted.items():
        assert rule not in _bindings(cfg, prog), f"planted program still binds {rule}"
