"""``python -m ml <subcommand>``: one module per subcommand, each with ``NAME`` and ``add_parser``.

To add a subcommand (e.g. ``train``, ``score``), write a module with ``add_parser(subparsers)`` that sets
``handler`` (a function of the parsed args returning an exit code) and list it in ``SUBCOMMANDS``.

The modules import XGBoost, MLflow and scikit-learn (seconds to tens of seconds on a busy machine), so
only the module that owns the subcommand being run is imported; ``--help`` lists every subcommand
from ``SUBCOMMANDS`` without importing any (tests/ml/test_cli_lazy.py keeps the table honest).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> (owning module, one-line help)
SUBCOMMANDS = {
    "clv-benchmark": ("ml.clv_benchmark", "CLV on a transaction log: selected model vs BG/NBD+GG and carry-forward"),
    "anomaly-train": ("ml.anomaly.cli", "train the break-anomaly model, register it, promote it if it wins"),
    "anomaly-score": ("ml.anomaly.cli", "score trades and breaks with @champion"),
    "train": ("ml.client_value", "train the CLV and/or churn model, evaluate, register, promote"),
    "score": ("ml.scoring", "score households with @champion into scores.household_scores"),
    "drift": ("ml.scoring", "print the drift (PSI) of the last scoring run"),
    "evaluate-truth": ("ml.truth_evaluation", "compare a scoring run and the baselines with var/truth"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description="Northstar learn + score stage")
    parser.add_argument("-v", "--verbose", action="store_true")
    subparsers = parser.add_subparsers(dest="command", required=True)
    wanted = next((a for a in argv if a in SUBCOMMANDS), None)
    if wanted is None:  # --help, or an unknown command: names and help only, nothing heavy imported
        for name, (_module, text) in SUBCOMMANDS.items():
            subparsers.add_parser(name, help=text)
        return parser
    loaded = set()
    for name, (module, text) in SUBCOMMANDS.items():
        if module == SUBCOMMANDS[wanted][0]:
            if module not in loaded:
                importlib.import_module(module).add_parser(subparsers)
                loaded.add(module)
        else:
            subparsers.add_parser(name, help=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
