"""The seed a cocotb bench uses for its own random stimulus.

``SEED`` (set by ``simlib.run`` for every run, and what a failure's reproduce command names) wins;
otherwise cocotb's ``RANDOM_SEED``. Kept apart from ``simlib`` so the simulator process does not
import the build machinery.
"""

from __future__ import annotations

import os

import cocotb


def bench_seed() -> int:
    env = os.environ.get("SEED")
    return int(env, 0) if env else int(getattr(cocotb, "RANDOM_SEED", 0) or 0)
