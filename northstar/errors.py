"""Errors an operator is expected to meet, and how every command line reports them.

An ``ExpectedError`` is a condition of the installation or the input, not a bug: no champion
model yet, no warehouse built yet, credentials not configured, a drop folder that is not there.
The CLIs print it as one line on stderr and exit 2 (``run_cli``); anything else keeps its
traceback, because that one is for a developer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class ExpectedError(RuntimeError):
    """A condition the operator can fix (configuration, missing input or prerequisite)."""


class WarehouseMissing(ExpectedError, FileNotFoundError):
    """The warehouse file does not exist yet (the nightly build, or ``dbt build``, makes it)."""


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a CLI's main; an ExpectedError becomes one line on stderr and exit code 2."""
    try:
        return main(argv)
    except ExpectedError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
