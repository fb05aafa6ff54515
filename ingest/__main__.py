"""``python -m ingest <subcommand>``: one module per subcommand, each with ``NAME``, ``add_parser``.

To add a subcommand (e.g. ``salesforce``), write ``ingest/<package>/cli.py`` with ``add_parser(subparsers)``
that sets ``handler`` and list it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMANDS = [
    "ingest.broker_files.cli",
    "ingest.salesforce.cli",
    "ingest.servicenow.cli",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Northstar extract + land stage")
    parser.add_argument("-v", "--verbose", action="store_true")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
