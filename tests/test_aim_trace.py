"""AiM ISR trace replay: cycles derived by hand from the timing rules, the CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pymodel.cli import main
from pymodel.config import preset
from pymodel.studies import aim_trace

CFG = preset("aim-gddr6").with_overrides({"timing": {"refresh": False}})
T = CFG.timing


def _replay(text: str, cfg=CFG):  # type: ignore[no-untyped-def]
    isrs, _ = aim_trace.parse(text, cfg, "t.trace")
    return aim_trace.replay(isrs, cfg)


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_full_row_mac_stream(rows: int) -> None:
    """ACT16, 64 MAC16 (nCCDL apart after nRCD_MAC), PREA at max(nRAS, last MAC + nRTP), next
    ACT16 nRP later (and >= nRC); no TMOD (MAC_ABK is a normal-mode ISR); no trailing PREA."""
    (res,) = _replay(aim_trace.mac_stream(rows))
    last_mac = T.nRCD_MAC + 63 * T.nCCDL
    pre = max(T.nRAS, last_mac + T.nRTP)
    period = max(T.nRC, pre + T.nRP)
    assert res.span_cycles == (rows - 1) * period + last_mac + 1
    pre_cmds = {"PREA": rows - 1} if rows > 1 else {}
    assert res.commands == {"ACT16": rows, "MAC16": 64 * rows, **pre_cmds}


def test_gemv_two_groups_by_hand() -> None:
    """GEMV 32x32: WR_GB 2, then per group WR_BIAS / MAC_ABK 2 / RD_MAC, each mode change a
    TMOD (WRGB, ACT16, RDMAC, PREA, RDMAC: five)."""
    (res,) = _replay(aim_trace.gemv(32))
    m, bl = T.nMODCH, T.nBL
    wrgb_last = m + bl  # TMOD at 0, WRGB at m, m + 2 (2 entries: d = 32)
    bias = wrgb_last + T.nCCDS  # write burst spacing
    act = bias + 1 + m  # TMOD when ACT16 is ready (next cycle), ACT16 nMODCH later
    mac_last = act + T.nRCD_MAC + T.nCCDL  # 2 MAC16
    rd = mac_last + T.nCCDL + m  # TMOD when RDMAC is ready (nCCDL_MAC), RDMAC nMODCH later
    # group 2: WR_BIAS after the blocking RD_MAC and the RDMAC -> WRBIAS turnaround, then
    # TMOD (PREA ready at once: nRAS and nRTP have passed), PREA, ACT16 nRP later
    rtw = T.nCLREG + bl + T.nRTW_PAD - T.nCWLREG + T.nWPRE
    bias2 = max(rd + T.nCLREG + bl + 1, rd + rtw)
    pre = max(bias2 + 1, act + T.nRAS, mac_last + T.nRTP) + m
    act2 = pre + T.nRP
    rd2 = act2 + T.nRCD_MAC + T.nCCDL + T.nCCDL + m
    assert res.span_cycles == rd2 + 1
    assert res.commands["TMOD"] == 5 and res.commands["WRBIAS"] == 2


def test_blocking_rd_mac_holds_every_channel() -> None:
    text = (
        "AiM RD_MAC 0 0x80000000\n"  # channel 0
        "AiM WR_BIAS 0 0x40000000\n"  # channel 1 waits for channel 0's read
        "AiM EOC\n"
    )
    ch0, ch1 = _replay(text)
    assert (ch0.channel, ch1.channel) == (0, 1)
    # both start with a TMOD at 0; RDMAC at nMODCH; channel 1's TMOD waits for the read + 1
    rd = T.nMODCH
    assert ch1.first == rd + T.nCLREG + T.nBL + 1


def test_refresh_is_issued_when_on() -> None:
    cfg = preset("aim-gddr6")
    (res,) = _replay(aim_trace.mac_stream(40), cfg)
    assert res.commands["REF"] == res.span_cycles // cfg.timing.nREFI > 0


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "g.trace"
    trace.write_text("# comment\n\nW GPR 0\n" + aim_trace.gemv(128))
    assert main(["trace", "replay", "--format", "aim", str(trace), "--json", "--no-refresh"]) == 0
    out = json.loads(capsys.readouterr().out)
    (ch,) = out["channels"]
    assert ch["channel"] == 0 and ch["refs"] == 0 and out["host_requests"] == 1
    assert ch["span_cycles"] == _replay(aim_trace.gemv(128))[0].span_cycles
    assert ch["commands"]["MAC16"] == 64 and ch["commands"]["RDMAC"] == 8
    assert main(["trace", "replay", str(trace)]) == 0
    assert "channel  0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line, message",
    [
        ("AiM FOO 1 2", "t.trace:2: unknown ISR 'FOO'"),
        ("AiM EWMUL 4 0x80000000 3", "t.trace:2: ISR EWMUL is not modeled"),
        ("AiM WR_GB 4 0x80000000", "t.trace:2: WR_GB takes 3 operand(s)"),
        ("AiM WR_BIAS 0 0", "t.trace:2: ch_mask = 0x0 must name 1 to 32 channels"),
        ("AiM WR_BIAS 0 0x100000000", "t.trace:2: ch_mask = 0x100000000 must name 1 to 32"),
        ("AiM MAC_ABK 0 0x80000000 1", "t.trace:2: opsize = 0 out of range [1, 64]"),
        ("AiM MAC_ABK 65 0x80000000 1", "t.trace:2: opsize = 65 out of range [1, 64]"),
        ("AiM MAC_ABK 8 0x80000000 16384", "t.trace:2: row = 16384 out of range [0, 16383]"),
        ("AiM MAC_ABK x 0x80000000 1", "t.trace:2: opsize = 'x' is not an integer"),
        ("W MEM 0 1 2", "t.trace:2: conventional 'W MEM' access is not modeled"),
        ("AiM", "t.trace:2: 'AiM' needs an ISR"),
    ],
)
def test_bad_lines(
    line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.trace"
    trace.write_text(f"# header\n{line}\nAiM EOC\n")
    with pytest.raises(aim_trace.AimTraceError, match=message.split(": ", 1)[1][:20]):
        aim_trace.parse(trace.read_text(), CFG, "t.trace")
    assert main(["trace", "replay", str(trace)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pimphony: error: ")
    assert message.split(": ", 1)[1] in err[0] and f"{trace}:2" in err[0]


def test_channel_beyond_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[module]\nchannels = 4\n")
    trace = tmp_path / "t.trace"
    trace.write_text("AiM WR_BIAS 0 0x00000001\nAiM EOC\n")  # bit 0 = channel 31
    assert main(["trace", "replay", str(trace), "--config", str(cfg)]) == 2
    assert "names channel 31, the module has 4" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"AiM WR_BIAS 0 0x80000000\n", "no EOC"),
        (b"AiM EOC\nAiM WR_BIAS 0 0x80000000\n", "t.trace:2: 'AiM WR_BIAS 0 0x80000000' after EOC"),
        (b"AiM EOC \xff\n", "not UTF-8"),
    ],
)
def test_bad_files(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.trace"
    trace.write_bytes(content)
    assert main(["trace", "replay", str(trace)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.replace("t.trace", str(trace)) in err[0]
