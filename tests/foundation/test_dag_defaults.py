"""What a task hands to XCom must be JSON: `small` keeps reports XCom-sized and JSON-clean."""

from __future__ import annotations

import json
import math

import pytest

from northstar.dag_defaults import small

pytestmark = pytest.mark.unit


def test_small_turns_nan_and_infinity_into_null():
    """At `demo` scale a baseline's Spearman is NaN (a constant prediction): the nightly's training task
    then failed while pushing its XCom ("Out of range float values are not JSON compliant")."""
    report = {"metrics": {"gini": 0.98, "spearman": math.nan}, "baselines": {"bgnbd": {"rmse": math.inf}},
              "dates": ["2026-10-29", "2026-10-30"], "rows": list(range(5000))}
    shrunk = small(report)
    assert shrunk["metrics"] == {"gini": 0.98, "spearman": None}
    assert shrunk["baselines"] == {"bgnbd": {"rmse": None}}
    assert shrunk["dates"] == ["2026-10-29", "2026-10-30"] and shrunk["rows"] == {"count": 5000}
    json.dumps(shrunk, allow_nan=False)


def test_mlflow_logs_reach_the_task_log_at_their_own_level():
    """In a task, MLflow's own stderr handler made its INFO lines read as ERROR in the Airflow task log
    (Airflow files stderr under ERROR). Once a DAG's defaults are imported, MLflow's records go to the
    root logger's handlers (the task log) at their level, and nothing of MLflow's writes to stderr."""
    import os
    import subprocess
    import sys

    probe = (
        "import io, logging, sys\n"
        "import northstar.dag_defaults\n"
        "captured = io.StringIO()\n"
        "root = logging.getLogger(); root.setLevel(logging.INFO)\n"
        "root.addHandler(logging.StreamHandler(captured))\n"
        "import mlflow\n"
        "logging.getLogger('mlflow.models.evaluation.validation').info('Model validation passed!')\n"
        "sys.stdout.write(captured.getvalue())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_CONFIGURE_LOGGING"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300, check=True)
    assert "Model validation passed!" in done.stdout
    assert "Model validation passed!" not in done.stderr
