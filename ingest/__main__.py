"""``python -m ingest <source>``: land one source's data (each source adds one subcommand here)."""

from __future__ import annotations

import argparse
import sys

from ingest.salesforce.cli import add_parser as add_salesforce_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_salesforce_parser(subparsers)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
