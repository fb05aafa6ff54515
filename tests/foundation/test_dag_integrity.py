"""DAG integrity: both DAGs import cleanly, carry the house attributes and do no work at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from northstar.airflow_env import airflow_environment
from northstar.settings import REPO_ROOT, load_settings

pytestmark = pytest.mark.unit

EXPECTED_DAGS = {"nightly_client_value", "intraday_trade_recon"}
HEAVY_MODULES = ["dbt.cli.main", "mlflow", "xgboost", "great_expectations", "sklearn", "simple_salesforce", "ingest.fix"]

DAGBAG_PROBE = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag
    started = time.monotonic()
    bag = DagBag(dag_folder=sys.argv[1])
    elapsed = time.monotonic() - started
    heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "parse_s": elapsed, "heavy": heavy, "dags": {}}
    for dag_id, dag in bag.dags.items():
        tt = dag.timetable
        out["dags"][dag_id] = {
            "catchup": dag.catchup,
            "tags": sorted(dag.tags),
            "timetable": type(tt).__name__,
            "cron": getattr(getattr(tt, "timetable", tt), "expression", None),
            "timezone": str(getattr(getattr(tt, "timetable", tt), "timezone", "")),
            "assets": repr(getattr(tt, "asset_condition", None)),
            "max_active_runs": dag.max_active_runs,
            "dagrun_timeout": str(dag.dagrun_timeout),
            "has_doc": bool(dag.doc_md),
            "deadlines": [alert.name for alert in dag.deadline or []],
            "params": {name: {"default": dag.params[name], "type": dag.params.get_param(name).schema.get("type")}
                       for name in dag.params},
            "tasks": {
                t.task_id: {
                    "owner": t.owner,
                    "retries": t.retries,
                    "backoff": t.retry_exponential_backoff,
                    "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                    "pool": t.pool,
                    "priority_weight": t.priority_weight,
                    "weight_rule": str(getattr(t.weight_rule, "value", t.weight_rule)),
                    "upstream": sorted(t.upstream_task_ids),
                }
                for t in dag.tasks
            },
        }
    print("DAGBAG_JSON=" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("af")
    env = airflow_environment(load_settings(), base={**__import__("os").environ, "AIRFLOW_HOME": str(home)})
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    env.pop("NORTHSTAR_TASK_RETRIES", None)
    proc = subprocess.run(
        [sys.executable, "-c", DAGBAG_PROBE, str(REPO_ROOT / "dags"), json.dumps(HEAVY_MODULES)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DAGBAG_JSON=")), None)
    assert line, f"DagBag probe failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(line.removeprefix("DAGBAG_JSON="))


def test_dags_import_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == EXPECTED_DAGS


def test_both_dags_carry_their_deadline_alert(dagbag):
    # Parsed as the DAG processor parses them (not `airflow dags test`: see dag_defaults.deadline).
    assert dagbag["dags"]["nightly_client_value"]["deadlines"] == ["nightly_client_value: finished by 06:00 firm time"]
    assert dagbag["dags"]["intraday_trade_recon"]["deadlines"] == [
        "intraday_trade_recon: finished within 10 minutes of being queued"]


def test_intraday_goes_first_to_the_warehouse_pool(dagbag):
    """The pool serves the highest weight first: any intraday task outweighs the nightly's heaviest
    (with the downstream rule a task weighs its own weight plus everything after it)."""
    nightly = dagbag["dags"]["nightly_client_value"]["tasks"]
    intraday = dagbag["dags"]["intraday_trade_recon"]["tasks"]
    assert {t["weight_rule"] for t in [*nightly.values(), *intraday.values()]} == {"downstream"}
    heaviest_nightly = sum(t["priority_weight"] for t in nightly.values())
    assert min(t["priority_weight"] for t in intraday.values()) > heaviest_nightly


def test_parsing_does_no_heavy_work(dagbag):
    # The scheduler re-parses these files every few seconds: no stage code at import time.
    assert dagbag["heavy"] == []
    assert dagbag["parse_s"] < 10


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_house_attributes(dagbag, dag_id):
    dag = dagbag["dags"][dag_id]
    assert dag["catchup"] is False
    assert "northstar" in dag["tags"]
    assert dag["max_active_runs"] == 1
    assert dag["has_doc"]
    for task_id, task in dag["tasks"].items():
        assert task["owner"].startswith("northstar"), task_id
        assert task["retries"] >= 1, task_id
        assert task["backoff"] is True, task_id
        assert task["timeout"] and task["timeout"] <= 3600, task_id


def test_nightly_runs_on_a_cron_in_the_firm_timezone(dagbag):
    dag = dagbag["dags"]["nightly_client_value"]
    assert dag["timetable"] == "CronTriggerTimetable"
    assert dag["timezone"] == "America/New_York"
    assert dag["cron"] == "30 1 * * *"


def test_nightly_offers_a_full_refresh_param(dagbag):
    """Incremental by default; a run triggered with full_refresh rebuilds the customer side (issue 22)."""
    assert dagbag["dags"]["nightly_client_value"]["params"] == {"full_refresh": {"default": False, "type": "boolean"}}
    assert dagbag["dags"]["intraday_trade_recon"]["params"] == {}
    source = (REPO_ROOT / "dags" / "nightly_client_value.py").read_text()
    assert 'build_nightly(ids.logical_date, full_refresh=bool(context["params"].get("full_refresh")))' in source


def test_intraday_every_15_minutes_in_market_hours_or_on_files(dagbag):
    dag = dagbag["dags"]["intraday_trade_recon"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert dag["cron"] == "*/15 9-16 * * 1-5"
    assert dag["timezone"] == "America/New_York"
    assert "broker_drop_folder" in dag["assets"]


def test_warehouse_writers_share_the_one_slot_pool(dagbag):
    writers = {
        ("nightly_client_value", task_id)
        for task_id in ("landing_gate", "build_warehouse", "resolve_identities", "publish_identities",
                        "marts_gate", "train_client_value_models",
                        "train_break_anomaly_model", "score_households", "publish_scores", "scores_gate",
                        "plan_salesforce_push", "send_salesforce_push", "refresh_dashboard")
    } | {
        ("intraday_trade_recon", task_id)
        for task_id in ("anything_to_check", "landing_gate", "reconcile_trades", "marts_gate", "score_breaks",
                        "publish_break_scores", "scores_gate", "plan_incidents", "send_incidents",
                        "refresh_dashboard")
    }
    for dag_id, task_id in writers:
        assert dagbag["dags"][dag_id]["tasks"][task_id]["pool"] == "warehouse"


def test_ruff_airflow_rules_are_clean():
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "ruff"), "check", "--select", "AIR", str(REPO_ROOT / "dags")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _ancestors(tasks: dict, task_id: str) -> set[str]:
    seen, todo = set(), list(tasks[task_id]["upstream"])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(tasks[current]["upstream"])
    return seen


def test_gates_stand_between_the_stages(dagbag):
    # Nothing reaches dbt before the landing gate, the models before the marts gate, or an external
    # system before the scores gate.
    nightly = dagbag["dags"]["nightly_client_value"]["tasks"]
    assert "landing_gate" in _ancestors(nightly, "build_warehouse")
    # identity resolution reads the staging the build leaves; the marts gate sees its persons
    assert nightly["resolve_identities"]["upstream"] == ["build_warehouse"]
    assert {"resolve_identities", "publish_identities"} <= _ancestors(nightly, "marts_gate")
    for task_id in ("train_client_value_models", "train_break_anomaly_model", "score_households"):
        assert "marts_gate" in _ancestors(nightly, task_id), task_id
    for task_id in ("plan_salesforce_push", "send_salesforce_push"):
        assert "scores_gate" in _ancestors(nightly, task_id), task_id
    intraday = dagbag["dags"]["intraday_trade_recon"]["tasks"]
    assert "landing_gate" in _ancestors(intraday, "reconcile_trades")
    # a run with nothing delivered, pending or unscored stops before the first gate (northstar.recon)
    assert intraday["anything_to_check"]["upstream"] == ["land_broker_files"]
    assert "anything_to_check" in _ancestors(intraday, "landing_gate")
    for task_id in ("score_breaks", "plan_incidents"):
        assert "marts_gate" in _ancestors(intraday, task_id), task_id
    # incidents wait for the scores gate whenever breaks were scored (the branch skips both otherwise)
    assert "scores_gate" in _ancestors(intraday, "plan_incidents")
