"""``python -m identity <verb>``: identity resolution (``northstar.cli``: one style for every stage)."""

from __future__ import annotations

import sys

from northstar.cli import build_parser as _build_parser
from northstar.cli import stage_main

PROG, DESCRIPTION = "python -m identity", "Northstar identity resolution stage"
VERBS = {
    "link": ("identity.cli", "cluster your own records (CSV or Parquet) into persons"),
    "resolve": ("identity.cli", "resolve the warehouse's CRM people into persons (schema identity)"),
}


def build_parser(argv: list[str]):
    return _build_parser(PROG, DESCRIPTION, VERBS, argv)


def main(argv: list[str] | None = None) -> int:
    return stage_main(PROG, DESCRIPTION, VERBS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
