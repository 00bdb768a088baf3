"""Scoreboard for the DPA controller (``rtl/dpa/dpa_ctrl.sv``) against ``pymodel.golden.dpa``.

Plain Python, no simulator. The bench's monitors call, in cycle order (inputs before outputs of
the same cycle):

* :meth:`DpaScoreboard.host_cmd` with every host command the DUT accepted: the reference
  (:class:`pymodel.golden.dpa.DpaModel`) executes it, its invariants are checked
  (:meth:`DpaModel.check_invariants`), and the expected response is queued;
* :meth:`DpaScoreboard.inst_in` with every instruction word accepted: the reference
  :class:`pymodel.golden.dpa.Dispatcher` queues the physical words and the error it expects;
* :meth:`host_resp`, :meth:`out_word`, :meth:`error` with what the DUT delivered: compared in
  order with the expectations (the first mismatch raises :class:`DpaMismatch` naming the cycle);
* :meth:`free_chunks` with the DUT's free-chunk count while it is idle (capacity accounting).

Independently of the reference, every successful TRANSLATE the DUT answers is entered in an
ownership map (physical row -> (request, virtual row)) that is dropped when the request is
closed: two live virtual rows on one physical row, or one virtual row on two physical rows, is a
:class:`DpaMismatch` even if the reference agreed.

:meth:`drain` checks every expectation was met and that something was checked.
Planted bugs (to prove the checker can fail): ``plant="row"`` adds 1 to every expected
TRANSLATE row, ``plant="out"`` flips bit 3 of every expected output word, ``plant="status"``
turns expected NO_MEMORY into OK; pymodel itself is never modified.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from pymodel.config import PimConfig
from pymodel.golden.dpa import Dispatcher, DpaModel, DpaStatus, HostOp, Response, unpack

PLANTS = ("row", "out", "status")


class DpaMismatch(AssertionError):
    """The DUT disagrees with the reference (or breaks an invariant)."""


@dataclass
class DpaCounts:
    host: int = 0
    resp: int = 0
    inst: int = 0
    out: int = 0
    err: int = 0
    translate_ok: int = 0
    by_status: dict[str, int] | None = None


class DpaScoreboard:
    def __init__(self, cfg: PimConfig, plant: str | None = None) -> None:
        if plant is not None and plant not in PLANTS:
            raise ValueError(f"plant {plant!r}: one of {PLANTS}")
        self.cfg, self.plant = cfg, plant
        self.model = DpaModel(cfg)
        self.disp = Dispatcher(self.model)
        self.n = DpaCounts(by_status={s.name: 0 for s in DpaStatus})
        self.reset()

    def reset(self) -> None:
        """The DUT was reset: power-on reference, nothing outstanding."""
        self.model.reset()
        self.disp.reset()
        self.exp_resp: deque[tuple[HostOp, int, int, Response]] = deque()
        self.exp_out: deque[int] = deque()
        self.exp_err: deque[DpaStatus] = deque()
        self.owner: dict[tuple[int, int], tuple[int, int]] = {}  # observed translations
        self.where: dict[tuple[int, int], tuple[int, int]] = {}

    # ------------------------------------------------------------------ inputs
    def host_cmd(self, op: int, req: int, arg: int, cycle: int = 0) -> None:
        hop = HostOp(op)
        resp = self.model.host(hop, req, arg)
        try:
            self.model.check_invariants()
        except AssertionError as exc:  # pragma: no cover - a reference bug
            raise DpaMismatch(f"cycle {cycle}: reference invariant broken: {exc}") from None
        if self.plant == "row" and hop is HostOp.TRANSLATE and resp.status is DpaStatus.OK:
            resp = replace(resp, row=resp.row + 1)
        if self.plant == "status" and resp.status is DpaStatus.NO_MEMORY:
            resp = replace(resp, status=DpaStatus.OK)
        if hop is HostOp.CLOSE and resp.status is DpaStatus.OK:
            for va in [va for va in self.where if va[0] == req]:
                del self.owner[self.where.pop(va)]
        self.exp_resp.append((hop, req, arg, resp))
        self.n.host += 1

    def inst_in(self, word: int, cycle: int = 0) -> None:
        res = self.disp.push(word)
        outs = list(res.out)
        if self.plant == "out":
            outs = [w ^ 0x8 for w in outs]
        self.exp_out.extend(outs)
        if res.error is not None:
            self.exp_err.append(res.error)
        self.n.inst += 1

    # ------------------------------------------------------------------ outputs
    def host_resp(self, status: int, chan: int, row: int, cycle: int = 0) -> None:
        if not self.exp_resp:
            raise DpaMismatch(f"cycle {cycle}: response status {status} with no command pending")
        op, req, arg, exp = self.exp_resp.popleft()
        what = f"cycle {cycle}: {op.name} req={req} arg={arg}"
        if status != exp.status:
            got = DpaStatus(status).name if status in DpaStatus._value2member_map_ else status
            raise DpaMismatch(f"{what}: status got {got}, expected {exp.status.name}")
        if op is HostOp.TRANSLATE and exp.status is DpaStatus.OK:
            if (chan, row) != (exp.channel, exp.row):
                raise DpaMismatch(
                    f"{what}: got channel {chan} row {row}, expected {exp.channel} {exp.row}"
                )
            self._own((chan, row), (req, arg), what)
            self.n.translate_ok += 1
        assert self.n.by_status is not None
        self.n.by_status[exp.status.name] += 1
        self.n.resp += 1

    def _own(self, pa: tuple[int, int], va: tuple[int, int], what: str) -> None:
        if self.owner.get(pa, va) != va:
            raise DpaMismatch(f"{what}: physical {pa} is also virtual {self.owner[pa]}")
        if self.where.get(va, pa) != pa:
            raise DpaMismatch(f"{what}: virtual {va} moved from {self.where[va]} to {pa}")
        self.owner[pa], self.where[va] = va, pa

    def out_word(self, word: int, cycle: int = 0) -> None:
        if not self.exp_out:
            raise DpaMismatch(f"cycle {cycle}: unexpected output word 0x{word:x}")
        exp = self.exp_out.popleft()
        if word != exp:
            got_op, got = unpack(word, self.cfg)
            exp_op, want = unpack(exp, self.cfg)
            diff = {
                k: (got.get(k), want.get(k))
                for k in set(got) | set(want)
                if got.get(k) != want.get(k)
            }
            raise DpaMismatch(
                f"cycle {cycle}: output 0x{word:x} (op {got_op}) != expected 0x{exp:x} "
                f"(op {exp_op}); fields (got, expected): {diff}"
            )
        self.n.out += 1

    def error(self, code: int, cycle: int = 0) -> None:
        if not self.exp_err:
            raise DpaMismatch(f"cycle {cycle}: unexpected instruction error {code}")
        exp = self.exp_err.popleft()
        if code != exp:
            raise DpaMismatch(f"cycle {cycle}: instruction error {code}, expected {exp.name}")
        self.n.err += 1

    def free_chunks(self, n: int, cycle: int = 0) -> None:
        if n != self.model.free_chunks:
            raise DpaMismatch(
                f"cycle {cycle}: DUT reports {n} free chunks, reference {self.model.free_chunks}"
            )

    # ------------------------------------------------------------------ end
    @property
    def idle(self) -> bool:
        return not (self.exp_resp or self.exp_out or self.exp_err) and not self.disp.collecting

    def drain(self) -> None:
        left = (len(self.exp_resp), len(self.exp_out), len(self.exp_err))
        if any(left):
            raise DpaMismatch(f"not drained: (responses, outputs, errors) still expected {left}")
        if self.n.resp + self.n.out == 0:
            raise DpaMismatch("the scoreboard checked nothing")

    def summary(self) -> str:
        n = self.n
        st = {k: v for k, v in (n.by_status or {}).items() if v}
        return (
            f"host {n.host}, responses {n.resp} {st}, translations {n.translate_ok}, "
            f"instructions {n.inst}, outputs {n.out}, errors {n.err}"
        )
