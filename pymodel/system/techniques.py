"""Technique bundles compared incrementally: baseline -> +TCP -> +DCS -> +DPA (= pimphony)."""

from __future__ import annotations

from dataclasses import dataclass

from pymodel.sched import Mode
from pymodel.system.errors import SystemSimError


@dataclass(frozen=True)
class Techniques:
    name: str
    partition: str  # "hfp" (head-first) or "tcp" (token-centric)
    sched: Mode  # command scheduling of every PIM channel
    memory: str  # "static" (T_max reserved per request) or "dpa" (lazy 1 MB chunks)

    @property
    def gqa_row_reuse(self) -> bool:
        """QK^T of a GQA group's queries while the K row is open: used where DCS makes it pay."""
        return self.sched is not Mode.STATIC


BUNDLES: dict[str, Techniques] = {
    t.name: t
    for t in (
        Techniques("baseline", "hfp", Mode.STATIC, "static"),
        Techniques("+tcp", "tcp", Mode.STATIC, "static"),
        Techniques("+tcp+dcs", "tcp", Mode.DCS, "static"),
        Techniques("pimphony", "tcp", Mode.DCS, "dpa"),
    )
}


class TechniqueError(SystemSimError):
    pass


def bundle(name: str) -> Techniques:
    try:
        return BUNDLES[name]
    except KeyError:
        raise TechniqueError(
            f"unknown technique bundle '{name}' (available: {', '.join(BUNDLES)})"
        ) from None
