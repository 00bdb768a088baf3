"""Random host commands and instruction programs of the dpa_ctrl bench (seeded)."""

from __future__ import annotations

import random

from pymodel.config import PimConfig
from pymodel.golden.dpa import (
    DpaLayout,
    HostOp,
    append_template,
    kv_write_template,
    qk_template,
    sv_template,
)
from pymodel.isa import (
    InstOp,
    Instruction,
    ModiField,
    encode_inst,
    inst_ranges,
)

HostCmd = tuple[int, int, int]  # (op, req, arg)

# ------------------------------------------------------------------------------------- stimulus


class Stimulus:
    """Random host commands and instruction programs for one config (seeded)."""

    def __init__(self, cfg: PimConfig, rng: random.Random, req_bits: int) -> None:
        self.cfg, self.rng, self.lay = cfg, rng, DpaLayout.of(cfg)
        self.req_ids = min(cfg.dpa.max_requests + 1, 1 << req_bits)  # one id beyond the table

    def words(self, prog: list[Instruction]) -> list[int]:
        return [encode_inst(i, self.cfg) for i in prog]

    def host(self) -> HostCmd:
        rng, lay = self.rng, self.lay
        op = rng.choices(list(HostOp), weights=[4, 6, 1, 4])[0]
        req = rng.randrange(self.req_ids)
        if op is HostOp.OPEN:
            arg = rng.randrange(0, lay.chunk_tokens * 3)
        elif op is HostOp.GROW:
            arg = rng.choice([1, 1, 1, rng.randrange(lay.chunk_tokens * 2)])
        else:
            arg = rng.randrange(0, 2 * lay.chunk_rows)
        return int(op), req, arg

    def plain(self) -> Instruction:
        rng, cfg = self.rng, self.cfg
        cols, gb = cfg.geometry.columns_per_row - 1, cfg.buffers.gb_entries - 1
        out = cfg.buffers.obuf_entries - 1
        r = rng.random()
        if r < 0.4:
            return Instruction(
                InstOp.MAC,
                ch_mask=1,
                op_size=1,
                row=rng.randint(0, 3),
                col=rng.randint(0, cols),
                gb=rng.randint(0, gb),
                out=rng.randint(0, out),
            )
        if r < 0.65:
            return Instruction(
                InstOp.WR_INP, ch_mask=1, op_size=1, gpr=rng.randint(0, 100), gb=rng.randint(0, gb)
            )
        if r < 0.9:
            return Instruction(
                InstOp.RD_OUT,
                ch_mask=1,
                op_size=1,
                gpr=rng.randint(0, 100),
                out=rng.randint(0, out),
            )
        return Instruction(
            InstOp.WR_BANK, ch_mask=1, op_size=1, bank=1, row=rng.randint(0, 3), col=2, gpr=5
        )

    def program(self) -> list[int]:
        rng, cfg = self.rng, self.cfg
        req = rng.randrange(cfg.dpa.max_requests)
        kind = rng.random()
        win = {"first": 0, "count": 0}
        if rng.random() < 0.5:  # a block window (segment), sometimes past the request's end
            last = inst_ranges(cfg)["first"][1]
            win = {"first": rng.randint(0, min(24, last)), "count": rng.randint(0, min(3, last))}
        if kind < 0.15:
            return self.words(qk_template(cfg, req, **win))
        if kind < 0.3:
            return self.words(sv_template(cfg, req, **win))
        if kind < 0.37:  # one decode step's KV append: grows the request, K + V writes
            return self.words(append_template(req, rng.randrange(0, 200)))
        if kind < 0.4:
            return self.words(kv_write_template(cfg, req, rng.random() < 0.5, range(4)))
        if kind < 0.5:  # plain words back to back, sometimes a stray word right after them
            ws = self.words([self.plain() for _ in range(rng.randint(1, 6))])
            if rng.random() < 0.2:
                ws += [7] if rng.random() < 0.5 else self.words([self.modi()])
            return ws
        n = rng.randrange(1, cfg.dpa.max_body_len + 1)
        body = [self.modi() if rng.random() < 0.3 else self.plain() for _ in range(n)]
        return self.words([Instruction(InstOp.DYN_LOOP, req=req, body_len=n, **win), *body])

    def modi(self) -> Instruction:
        return Instruction(
            InstOp.DYN_MODI, field=self.rng.choice(list(ModiField)), stride=self.rng.randint(-3, 3)
        )
