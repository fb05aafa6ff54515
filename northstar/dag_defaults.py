"""Defaults shared by Northstar's DAGs: owners, retries with back-off, timeouts.

Kept apart from the DAG files so both DAGs stay alike; at import this module only sets one environment
default (MLflow's logging, below).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, timedelta
from pathlib import Path

# MLflow gives its loggers their own stderr handler, and Airflow files a task's stderr under ERROR: its
# INFO lines ("registered ... as challenger", "Model validation passed!") read as errors in the task
# log. Left unconfigured they reach the task's log handler through the root logger, at their own level.
# Every task process parses its DAG file, and so imports this module, before any task imports MLflow.
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")

# `airflow dags test` waits out real retry delays; the demo and the end-to-end tests set this to 0
# so a failure surfaces at once. Production keeps the default.
TASK_RETRIES = int(os.environ.get("NORTHSTAR_TASK_RETRIES", "2"))

DEFAULT_ARGS = {
    "owner": "northstar-data",
    "retries": TASK_RETRIES,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=45),
}

FIRM_TIMEZONE = "America/New_York"
WAREHOUSE_POOL = "warehouse"

# The one-slot warehouse pool goes to the waiting task with the highest priority weight (then the
# earliest logical date). The intraday recon promises 10 minutes; the nightly has until 06:00. Every
# intraday task weighs more than the nightly's heaviest task (its weight plus those downstream, at
# most its task count), so an intraday run waits for no more than the nightly task holding the slot.
INTRADAY_PRIORITY_WEIGHT = 100


def under_dags_test(argv: list[str] | None = None) -> bool:
    """True when this process is ``airflow dags test`` (``airflow ...`` or ``python -m airflow ...``)."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 3 or argv[1:3] != ["dags", "test"]:
        return False
    program = Path(argv[0])
    return program.name == "airflow" or (program.name == "__main__.py" and program.parent.name == "airflow")


def deadline(dag_id: str, argv: list[str] | None = None):
    """The DAG's deadline alert (``northstar/alerts.py``) for its ``deadline=``, or None under ``airflow dags test``.

    Why not under ``dags test``: Airflow 3.3.2's ``dags test`` runs a DAG rebuilt in memory from its
    serialization, whose ``deadline`` still holds the encoded alerts (dicts); at the end of the run
    ``DagRun.update_state`` looks each one up with ``DeadlineAlert.get_by_id(<dict>)`` and the run
    fails. The scheduler's DAGs come from the serialized_dag table, where the DAG processor has
    replaced each alert by the UUID of its ``deadline_alert`` row, so the same lookup works there
    (the stack suite shows a missed deadline reaching the log). The demo and the end-to-end tests
    run ``dags test``, and they make no promise about the time of day: they go without.
    """
    if under_dags_test(argv):
        return None
    from northstar.alerts import deadline_alerts

    return deadline_alerts(dag_id)


@dataclass(frozen=True)
class RunIds:
    run_id: str
    logical_date: object  # pendulum DateTime: the run's logical time, never "now"

    @property
    def interval_key(self) -> str:
        """The logical time as a key (UTC, to the second): what a rerun of the same interval shares, so
        its writes keyed on it replace the earlier run's instead of adding to them (a manual rerun or
        ``airflow dags test`` gets a new run id every time)."""
        moment = self.logical_date
        if getattr(moment, "tzinfo", None) is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y%m%dT%H%M%SZ")


def run_ids(context) -> RunIds:
    """The run id and logical time a task passes to stage functions (for idempotent, dated writes)."""
    logical = context.get("logical_date") or context.get("data_interval_end") or context["dag_run"].run_after
    return RunIds(run_id=context["run_id"], logical_date=logical)


_XCOM_LIST_LIMIT = 20
_XCOM_SCALAR_LIMIT = 500


def small(result) -> dict:
    """A stage's report as XCom-sized metadata: counts, ids and short lists only.

    Stage reports may carry per-file or per-record detail; XCom carries only what the next task
    or a person reading the Airflow UI needs, so long lists become their length.
    """
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    elif hasattr(result, "summary"):
        result = result.summary()
    elif is_dataclass(result):
        result = asdict(result)
    return {key: _small_value(value) for key, value in dict(result).items()}


def _small_value(value):
    if isinstance(value, dict):
        if len(value) > _XCOM_LIST_LIMIT:
            return {"count": len(value)}
        return {str(k): _small_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        values = list(value)
        scalars = all(isinstance(v, str | int | float | bool) or v is None for v in values)
        # Dates and ids pass (the next task needs them); per-record detail becomes a count.
        if len(values) <= (_XCOM_SCALAR_LIMIT if scalars else _XCOM_LIST_LIMIT):
            return [_small_value(v) for v in values]
        return {"count": len(values)}
    if isinstance(value, float) and not math.isfinite(value):
        return None  # XCom is JSON: NaN (e.g. a rank correlation of a constant baseline) has no JSON form
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
