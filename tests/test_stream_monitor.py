"""tb/common/stream.py without a simulator: the monitor's rules on scripted pin values (one-bit
and multi-bit signals, a payload of several signals); the RTL unit bench is tb/stream."""

from __future__ import annotations

from typing import Any

import pytest
from cocotb.types import Logic, LogicArray
from stream import StreamDriver, StreamMonitor, StreamPort, StreamProtocolError


class Pin:
    """A stand-in for a cocotb handle: ``value`` as cocotb 2 returns it, ``len()``."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._v: Any = Logic(0) if width == 1 else LogicArray(0, width)

    @property
    def value(self) -> Any:
        return self._v

    @value.setter
    def value(self, v: int) -> None:
        self._v = Logic(v) if self.width == 1 else LogicArray(v, self.width)

    def __len__(self) -> int:
        return self.width


def _port(ready: bool = True) -> tuple[StreamPort, dict[str, Pin]]:
    pins = {"valid": Pin(1), "data": Pin(8), "flag": Pin(1), "ready": Pin(1)}
    port = StreamPort(
        "p", pins["valid"], [pins["data"], pins["flag"]], pins["ready"] if ready else None
    )
    return port, pins


def _run(mon: StreamMonitor, pins: dict[str, Pin], trace: list[tuple[int, int, int, int]]) -> list:
    """Drive (valid, data, flag, ready) per cycle; the transfers seen."""
    out = []
    for c, (v, d, f, r) in enumerate(trace):
        pins["valid"].value, pins["data"].value, pins["flag"].value = v, d, f
        pins["ready"].value = r
        got = mon.sample(c)
        if got is not None:
            out.append(got)
    return out


def test_transfers_and_stalls() -> None:
    port, pins = _port()
    mon = StreamMonitor(port, quiet=True)
    got = _run(mon, pins, [(1, 5, 1, 0), (1, 5, 1, 0), (1, 5, 1, 1), (0, 0, 0, 1), (1, 7, 0, 1)])
    assert got == [(5, 1), (7, 0)] and mon.stalls == 2 and mon.transfers == 2


@pytest.mark.parametrize(
    "rule, trace",
    [
        ("hold", [(1, 5, 0, 0), (0, 5, 0, 0)]),
        ("stable", [(1, 5, 0, 0), (1, 6, 0, 1)]),
        ("stable", [(1, 5, 0, 0), (1, 5, 1, 1)]),  # the one-bit part of the payload changed
        ("quiet", [(1, 5, 0, 1), (0, 0, 1, 1)]),
    ],
)
def test_each_rule_fires(rule: str, trace: list[tuple[int, int, int, int]]) -> None:
    port, pins = _port()
    with pytest.raises(StreamProtocolError) as exc:
        _run(StreamMonitor(port, quiet=True), pins, trace)
    assert exc.value.rule == rule and exc.value.port == "p" and exc.value.cycle == 1


def test_quiet_is_opt_in_and_no_ready_means_always_taken() -> None:
    port, pins = _port(ready=False)
    mon = StreamMonitor(port)
    assert _run(mon, pins, [(0, 9, 1, 0), (1, 3, 0, 0)]) == [(3, 0)]


def test_driver_holds_until_taken_and_its_violations_are_caught() -> None:
    port, pins = _port()
    drv = StreamDriver(port)
    drv.send((4, 1), idle=1)
    seen = []
    for c, ready in enumerate([1, 0, 0, 1, 1]):
        drv.drive()
        seen.append((int(pins["valid"].value), int(pins["data"].value)))
        pins["ready"].value = ready
        if drv.sample(c) is not None:
            seen.append("taken")
    assert seen == [(0, 0), (1, 4), (1, 4), (1, 4), "taken", (0, 4)] and not drv.busy
    for violate, rule in (("withdraw", "hold"), ("change", "stable")):
        drv = StreamDriver(port, violate=violate)
        drv.send((4, 1))
        pins["ready"].value = 0
        with pytest.raises(StreamProtocolError, match=rule):
            for c in range(3):
                drv.drive()
                drv.sample(c)
