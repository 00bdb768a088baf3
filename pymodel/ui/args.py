"""Argument parsing shared by every ``pimphony`` command: one-line errors, checked integers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from pymodel.errors import PimphonyError


class UsageError(PimphonyError):
    """A command line argparse rejects (unknown option, bad value, missing argument)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`UsageError` (``cli.main`` prints one
    ``pimphony: error:`` line naming the command and argument, exit 2) instead of printing the
    usage block."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("pimphony").strip()
        head = f"{where}: " if where else ""
        hint = f"pimphony {where} --help" if where else "pimphony --help"
        raise UsageError(f"{head}{message} (see {hint})")


def int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= lo``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} must be at least {lo}")
        return v

    parse.__name__ = f"integer >= {lo}"
    return parse


seed = int_at_least(0)
positive = int_at_least(1)
