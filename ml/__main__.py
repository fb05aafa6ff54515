"""``python -m ml <subcommand>``: one module per subcommand, each with ``NAME`` and ``add_parser``.

To add a subcommand (e.g. ``train``, ``score``), write a module with ``add_parser(subparsers)`` that sets
``handler`` (a function of the parsed args returning an exit code) and list it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMANDS = [
    "ml.clv_benchmark",
    "ml.anomaly.cli",
    "ml.client_value",
    "ml.scoring",
    "ml.truth_evaluation",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml", description="Northstar learn + score stage")
    parser.add_argument("-v", "--verbose", action="store_true")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
