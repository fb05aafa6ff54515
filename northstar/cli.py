"""One command-line style for every stage: ``python -m <stage> <verb> [options]``.

A stage's ``__main__`` names its verbs in a table, verb -> (the module that owns it, one line of help), and
calls :func:`stage_main`. The owning module has ``add_parser(subparsers)``: it adds its verb(s) and sets
``handler`` (parsed args -> exit code) on each. What every stage's command line shares lives here:

* only the module that owns the verb being run is imported: ``--help`` and a light verb never pay for
  XGBoost, MLflow or Great Expectations (tests/ml/test_cli_lazy.py holds ml/ to it);
* ``-v`` / ``--verbose`` before the verb: INFO logs (default WARNING), one log format;
* the caller wraps ``main`` in ``northstar.errors.run_cli``: an expected error is one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Mapping

Verbs = Mapping[str, tuple[str, str]]  # verb -> (owning module, one-line help)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser(prog: str, description: str, verbs: Verbs, argv: list[str]) -> argparse.ArgumentParser:
    """The stage's parser, with the owning module of the verb in ``argv`` (if any) imported and the rest
    listed by name and help only."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO (default WARNING)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    wanted = next((a for a in argv if a in verbs), None)
    owner = verbs[wanted][0] if wanted else None
    loaded = False
    for name, (module, text) in verbs.items():
        if module != owner:
            subparsers.add_parser(name, help=text)
        elif not loaded:  # one module may own several verbs: it adds all of them at once
            importlib.import_module(module).add_parser(subparsers)
            loaded = True
    return parser


def stage_main(prog: str, description: str, verbs: Verbs, argv: list[str]) -> int:
    """Parse ``argv``, set up logging, run the verb's handler and return its exit code."""
    args = build_parser(prog, description, verbs, argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=LOG_FORMAT)
    return args.handler(args)
