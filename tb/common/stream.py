"""Valid/ready stream driver and monitor: the pin-level protocol checks, written once.

A stream transfers its payload on a clock edge where ``valid && ready``. The rules every bench
checks on every stream (both directions) are those of the RTL headers:

* **hold**: once ``valid`` is high without ``ready``, it stays high until the transfer;
* **stable**: the payload does not change while a transfer is pending (valid and not ready);
* **quiet** (opt-in, for ports whose RTL promises it, e.g. the scheduler's command bus): the
  payload is 0 on every cycle ``valid`` is low (no data without valid).

A port without ``ready`` (no backpressure, e.g. a command bus) transfers on every valid cycle.

Timing convention of every bench here: inputs are driven just after the rising edge, everything is
sampled at the falling edge. The classes are plain objects with synchronous ``drive`` /
``sample`` methods, so a bench's cycle loop (one coroutine owning all pins, which keeps the
same-cycle order of inputs and outputs deterministic) calls them in its own order; ``run``
coroutines exist for a port that stands alone. pyuvm components wrap them:
:class:`StreamSeqDriver` (a ``uvm_driver`` feeding a :class:`StreamDriver` from a sequencer) and
:class:`StreamApMonitor` (a ``uvm_monitor`` publishing transfers on an analysis port).

Payload: the integer value of one signal, or a tuple of the values of several signals (in the
order given).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from cocotb.triggers import FallingEdge, RisingEdge
from pyuvm import ConfigDB, uvm_analysis_port, uvm_driver, uvm_monitor

Payload = Any  # int (one signal) or tuple[int, ...] (several)


class StreamProtocolError(AssertionError):
    """A stream rule broken: names the port, the cycle and the rule (``hold`` / ``stable`` /
    ``quiet``)."""

    def __init__(self, port: str, cycle: int, rule: str, detail: str) -> None:
        super().__init__(f"{port}: cycle {cycle}: {rule} rule broken: {detail}")
        self.port, self.cycle, self.rule = port, cycle, rule


class StreamPort:
    """The pins of one stream: ``valid``, ``payload`` (one handle or several) and ``ready``
    (None: no backpressure)."""

    def __init__(
        self, name: str, valid: Any, payload: Any | Sequence[Any], ready: Any | None = None
    ) -> None:
        self.name, self.valid, self.ready = name, valid, ready
        self.multi = isinstance(payload, (list, tuple))
        self.payload: list[Any] = list(payload) if self.multi else [payload]

    def read(self) -> Payload:
        vals = tuple(int(s.value) for s in self.payload)  # (int(): 1-bit signals too)
        return vals if self.multi else vals[0]

    def write(self, value: Payload) -> None:
        for s, v in zip(self.payload, value if self.multi else (value,), strict=True):
            s.value = v

    def is_valid(self) -> bool:
        return bool(self.valid.value)

    def is_ready(self) -> bool:
        return self.ready is None or bool(self.ready.value)

    def widths(self) -> list[int]:
        return [len(s) for s in self.payload]


def _is_zero(p: Payload) -> bool:
    return all(v == 0 for v in p) if isinstance(p, tuple) else p == 0


class StreamMonitor:
    """Checks the stream rules on one port and reports its transfers; :meth:`sample` once per
    cycle (at the falling edge). ``quiet=True`` adds the quiet-bus rule.

    ``stalls`` counts cycles with valid and not ready, ``transfers`` the transfers."""

    def __init__(self, port: StreamPort, quiet: bool = False) -> None:
        self.port, self.quiet = port, quiet
        self.pending: Payload | None = None  # offered, not yet taken
        self.stalls = 0
        self.transfers = 0

    def reset(self) -> None:
        """Forget a pending offer (the DUT or the driver was reset)."""
        self.pending = None

    def sample(self, cycle: int) -> Payload | None:
        """The payload if it transferred this cycle, else None; raises
        :class:`StreamProtocolError` if a rule is broken."""
        port = self.port
        if not port.is_valid():
            if self.pending is not None:
                self.pending = None
                raise StreamProtocolError(
                    port.name, cycle, "hold", "valid dropped before the transfer"
                )
            if self.quiet:
                idle = port.read()
                if not _is_zero(idle):
                    raise StreamProtocolError(
                        port.name, cycle, "quiet", f"payload {_fmt(idle)} while valid is low"
                    )
            return None
        payload = port.read()
        if self.pending is not None and payload != self.pending:
            old, self.pending = self.pending, None
            raise StreamProtocolError(
                port.name,
                cycle,
                "stable",
                f"payload changed while stalled: {_fmt(old)} -> {_fmt(payload)}",
            )
        if not port.is_ready():
            self.pending = payload
            self.stalls += 1
            return None
        self.pending = None
        self.transfers += 1
        return payload

    async def run(self, clk: Any, on_transfer: Callable[[int, Payload], None]) -> None:
        """Stand-alone: sample at every falling edge (cycle = falling edges seen, from 0)."""
        cycle = 0
        while True:
            await FallingEdge(clk)
            got = self.sample(cycle)
            if got is not None:
                on_transfer(cycle, got)
            cycle += 1


def _fmt(p: Payload) -> str:
    return "(" + ", ".join(f"0x{v:x}" for v in p) + ")" if isinstance(p, tuple) else f"0x{p:x}"


class StreamDriver:
    """Drives one stream from a queue of ``(payload, idle cycles before it)``, holding valid and
    the payload until the transfer. Call :meth:`drive` just after the rising edge and
    :meth:`sample` at the falling edge of every cycle (or start :meth:`run`).

    Its own :attr:`monitor` checks the port too (so a driver that breaks the rules is caught
    before it misleads a DUT) and :meth:`sample` returns what the DUT accepted.
    ``idle_fill`` gives the payload pins' value on cycles valid is low (default: left as they
    are; benches pass random bits to show the DUT ignores them).
    ``violate`` (planted bugs only): ``"withdraw"`` drops valid after a stalled cycle,
    ``"change"`` changes the payload after a stalled cycle."""

    def __init__(
        self,
        port: StreamPort,
        idle_fill: Callable[[], Payload] | None = None,
        violate: str | None = None,
    ) -> None:
        if violate not in (None, "withdraw", "change"):
            raise ValueError(f"violate={violate!r}: expected None, 'withdraw' or 'change'")
        self.port, self.idle_fill, self.violate = port, idle_fill, violate
        self.monitor = StreamMonitor(port)
        self.queue: deque[tuple[Payload, int]] = deque()
        self._cur: tuple[Payload, int] | None = None
        self._valid = False

    def send(self, payload: Payload, idle: int = 0) -> None:
        self.queue.append((payload, idle))

    @property
    def busy(self) -> bool:
        """Something queued or on offer."""
        return bool(self.queue) or self._cur is not None

    @property
    def offering(self) -> bool:
        """Valid is driven high this cycle."""
        return self._valid

    def flush(self) -> None:
        """Drop the queue and the current offer (reset); valid goes low at the next drive."""
        self.queue.clear()
        self._cur = None
        self.monitor.reset()

    def drive(self) -> bool:
        """Set the pins for this cycle; returns whether valid is high."""
        port = self.port
        if self._cur is None and self.queue:
            self._cur = self.queue.popleft()
        valid = self._cur is not None and self._cur[1] == 0
        if self._cur is not None and not valid:
            self._cur = (self._cur[0], self._cur[1] - 1)
        if valid and self.violate and self.monitor.pending is not None:
            valid = self._break_rule()
        port.valid.value = int(valid)
        if valid:
            assert self._cur is not None
            port.write(self._cur[0])
        elif self.idle_fill is not None:
            port.write(self.idle_fill())
        self._valid = valid
        return valid

    def _break_rule(self) -> bool:
        assert self._cur is not None
        if self.violate == "withdraw":
            return False
        flip = tuple(v ^ 1 for v in self._cur[0]) if self.port.multi else self._cur[0] ^ 1
        self._cur = (flip, 0)
        return True

    def sample(self, cycle: int) -> Payload | None:
        """At the falling edge: the payload the DUT accepted this cycle (None if none)."""
        got = self.monitor.sample(cycle)
        if got is not None:
            self._cur = None
        return got

    async def run(
        self,
        clk: Any,
        on_transfer: Callable[[int, Payload], None] | None = None,
    ) -> None:
        """Stand-alone: drive after every rising edge, sample at the falling edge."""
        cycle = 0
        await RisingEdge(clk)
        while True:
            self.drive()
            await FallingEdge(clk)
            got = self.sample(cycle)
            if got is not None and on_transfer is not None:
                on_transfer(cycle, got)
            await RisingEdge(clk)
            cycle += 1


# ------------------------------------------------------------------------------------- pyuvm


class StreamSeqDriver(uvm_driver):
    """A ``uvm_driver`` that hands each sequence item to a :class:`StreamDriver` (from the
    ConfigDB key :attr:`driver_key`), keeping at most :attr:`lookahead` items queued, so the
    sequence stays close to the pins. Items carry ``payload(item)`` and ``item.idle``."""

    driver_key = "STREAM"
    lookahead = 2

    def start_of_simulation_phase(self) -> None:
        self.stream: StreamDriver = ConfigDB().get(self, "", self.driver_key)
        self.clk: Any = ConfigDB().get(self, "", "CLK")

    def payload(self, item: Any) -> Payload:
        return item.payload

    async def run_phase(self) -> None:
        while True:
            item = await self.seq_item_port.get_next_item()
            while len(self.stream.queue) >= self.lookahead:
                await RisingEdge(self.clk)
            self.stream.send(self.payload(item), getattr(item, "idle", 0))
            self.seq_item_port.item_done()


class StreamApMonitor(uvm_monitor):
    """A ``uvm_monitor`` whose :meth:`publish` (called by the bench's cycle loop with what a
    :class:`StreamMonitor` / :class:`StreamDriver` reported) writes ``(cycle, payload)`` to
    :attr:`ap`."""

    def build_phase(self) -> None:
        self.ap = uvm_analysis_port("ap", self)

    def publish(self, cycle: int, payload: Payload) -> None:
        self.ap.write((cycle, payload))
