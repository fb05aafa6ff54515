"""``python -m ml <verb>``: learn + score (``northstar.cli``: one style for every stage).

To add a verb, write a module with ``add_parser(subparsers)`` that sets ``handler`` (a function of the
parsed args returning an exit code) and list it in ``VERBS``.

The modules import XGBoost, MLflow and scikit-learn (seconds to tens of seconds on a busy machine), so
only the module that owns the verb being run is imported; ``--help`` lists every verb from ``VERBS``
without importing any (tests/ml/test_cli_lazy.py keeps the table honest).
"""

from __future__ import annotations

import sys

from northstar.cli import build_parser as _build_parser
from northstar.cli import stage_main

PROG, DESCRIPTION = "python -m ml", "Northstar learn + score stage"
# verb -> (owning module, one-line help)
VERBS = {
    "clv-benchmark": ("ml.clv_benchmark", "CLV on a transaction log: selected model vs BG/NBD+GG and carry-forward"),
    "anomaly-train": ("ml.anomaly.cli", "train the break-anomaly model, register it, promote it if it wins"),
    "anomaly-score": ("ml.anomaly.cli", "score trades and breaks with @champion"),
    "train": ("ml.client_value.cli", "train the CLV and/or churn model, evaluate, register, promote"),
    "score": ("ml.client_value.cli", "score households with @champion into the household scores"),
    "drift": ("ml.client_value.cli", "print the drift (PSI) of the last scoring run"),
    "evaluate-truth": ("ml.truth_evaluation", "compare a scoring run and the baselines with var/truth"),
}


def build_parser(argv: list[str]):
    return _build_parser(PROG, DESCRIPTION, VERBS, argv)


def main(argv: list[str] | None = None) -> int:
    return stage_main(PROG, DESCRIPTION, VERBS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
