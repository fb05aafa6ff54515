"""``python -m ml --help`` lists every subcommand without importing XGBoost, MLflow or scikit-learn,
and the lazy table in ``ml/__main__.py`` names exactly the subcommands the modules define."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from ml.__main__ import VERBS

pytestmark = pytest.mark.unit

PROBE = """
import json, sys
from ml.__main__ import build_parser
build_parser(["--help"]).format_help()
print(json.dumps([m for m in ("xgboost", "mlflow", "sklearn", "pandas", "duckdb") if m in sys.modules]))
"""


def test_help_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_table_matches_the_modules():
    for module in sorted({m for m, _ in VERBS.values()}):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).add_parser(sub)
        defined = set(sub.choices)
        assert defined == {name for name, (m, _) in VERBS.items() if m == module}, module
