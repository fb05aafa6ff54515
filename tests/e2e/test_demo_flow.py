"""The demo's own code path on the `small` world: seed, serve, the three DAG runs, summary.

This is `make demo` shrunk to a size the suite can afford; the assertions check what each stage
left behind, read the way a person would read it (landing manifests, the warehouse read-only). The
runs go through `airflow dags test` unless `NORTHSTAR_E2E_RUNNER=scheduler` (tests/e2e/conftest.py).
"""

from __future__ import annotations

import os

import pytest

import northstar.warehouse

pytestmark = pytest.mark.e2e


def test_every_dag_run_succeeds_and_leaves_its_logs(demo_run):
    if os.environ.get("NORTHSTAR_E2E_RUNNER") == "scheduler":
        _check_scheduler_runs(demo_run)
        return
    logs = sorted((demo_run.paths.var / "demo").glob("[0-9]_*.log"))
    assert [p.stem.split("_", 1)[1] for p in logs] == ["intraday_trade_recon", "nightly_client_value",
                                                       "intraday_trade_recon"]
    for path in logs:
        text = path.read_text()
        assert "DagRun Finished" in text and "state=success" in text.split("DagRun Finished")[-1], path


def _check_scheduler_runs(cfg) -> None:
    """Runs triggered through the REST API of a running scheduler: three runs, each with its own
    logical date, all successful, with true durations and a task log where the UI reads it."""
    import sqlite3
    from datetime import datetime

    from northstar.demo import DEFAULT_AS_OF, demo_runs

    with sqlite3.connect(cfg.paths.airflow_home / "airflow.db") as con:
        runs = con.execute("select dag_id, run_id, state, run_type, logical_date, start_date, end_date "
                           "from dag_run order by start_date").fetchall()
        tasks = con.execute("select dag_id, run_id, task_id, state, try_number from task_instance").fetchall()
    demo = [r for r in runs if r[1].startswith("demo_")]
    assert [(r[0], r[1]) for r in demo] == [(slot.dag_id, slot.run_id) for slot in demo_runs(DEFAULT_AS_OF)]
    assert {r[2] for r in demo} == {"success"} and {r[3] for r in demo} == {"manual"}
    assert len({r[4] for r in demo}) == 3  # distinct logical dates: no run replaces another
    for *_, started, ended in demo:
        seconds = (datetime.fromisoformat(str(ended)) - datetime.fromisoformat(str(started))).total_seconds()
        assert 0 < seconds < 3600  # the true duration, not "logical date to now"
    demo_ids = {r[1] for r in demo}
    ran = [t for t in tasks if t[1] in demo_ids and t[3] in ("success", "failed")]
    assert ran
    for dag_id, run_id, task_id, _, try_number in ran:
        log = (cfg.paths.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
               / f"task_id={task_id}" / f"attempt={try_number}.log")
        assert log.exists() and log.stat().st_size > 0, log


def test_landing_conserves_every_row(demo_run):
    con = northstar.warehouse.scratch()
    manifest = demo_run.paths.landing / "_manifest" / "broker_files"
    rows = con.execute(
        f"select sum(rows_in), sum(rows_landed), sum(rows_quarantined) from read_parquet('{manifest}/*.parquet')"
    ).fetchone()
    assert rows[0] and rows[0] == rows[1] + rows[2]


def test_salesforce_objects_landed(demo_run):
    landed = {p.name for p in (demo_run.paths.landing / "salesforce").iterdir() if p.is_dir()}
    assert {"Account", "Contact", "Case", "Task", "Event", "Opportunity", "User", "Brokerage_Account__c"} <= landed


def test_warehouse_marts_built(demo_run):
    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        assert {"dim_households", "fct_household_features", "fct_trade_breaks", "fct_recon_summary"} <= tables
        households = con.execute("select count(*) from dim_households").fetchone()[0]
        open_breaks = con.execute("select count(*) from fct_trade_breaks where status = 'open'").fetchone()[0]
    assert households == 1000  # the small world's tier
    assert open_breaks > 0  # the world injects breaks on every business day


def test_the_nightly_resolved_identities_and_published_persons(demo_run):
    """The nightly's resolve_identities + publish_identities tasks: one resolution run keyed on the night,
    dim_persons over it, linkage against the world's truth (the pipeline never reads it; the test does)."""
    import polars as pl

    from identity.evaluation import linkage_metrics

    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        runs = con.execute("select resolution_run_id, persons, person_splits from identity.resolution_runs").fetchall()
        persons = con.execute("select count(*), max(resolved_households_touched) from dim_persons").fetchall()[0]
        predicted = con.sql("select record_id, person_id as cluster_id from identity.person_records").pl()
    assert len(runs) == 1 and runs[0][0].startswith("identity-") and runs[0][2] == 0
    assert persons == (runs[0][1], 1)  # one row per person, nobody in two households
    truth = pl.read_parquet(demo_run.paths.truth / "identity.parquet").select(
        "record_id", pl.col("person_id").alias("entity_id"))
    metrics = linkage_metrics(predicted, truth)
    assert metrics["records"] == predicted.height
    assert metrics["pairwise_precision"] >= 0.99 and metrics["pairwise_recall"] >= 0.95, metrics


def test_models_registered_with_champions(demo_run):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=demo_run.mlflow_tracking_uri)
    models = {m.name: m for m in client.search_registered_models()}
    assert {"northstar-clv", "northstar-churn", "northstar-break-anomaly"} <= set(models)
    for name in ("northstar-clv", "northstar-churn", "northstar-break-anomaly"):
        assert "champion" in (models[name].aliases or {}), name


def test_scores_and_gates_recorded(demo_run):
    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        segments = dict(con.execute("select segment, count(*) from scores.household_scores group by 1").fetchall())
        gates = con.execute(
            "select gate, bool_and(success or severity <> 'critical') from quality.gate_results group by 1"
        ).fetchall()
        scored_breaks = con.execute("select count(*) from scores.break_scores").fetchone()[0]
        open_breaks = con.execute("select count(*) from fct_trade_breaks where status = 'open'").fetchone()[0]
    assert set(segments) <= {"High-Value Growth Potential", "At-Risk Retention Priority", "Core - Maintain",
                             "Service Efficiently"}
    assert sum(segments.values()) > 500
    assert dict(gates) == {"landing": True, "marts": True, "scores": True}
    assert scored_breaks >= open_breaks > 0


def test_salesforce_holds_the_scores_of_consenting_households_only(demo_run):
    from sandbox.salesforce.store import SalesforceStore

    store = SalesforceStore(demo_run.paths.sandbox_state / "salesforce.db")
    accounts = store.select("Account", ["Id", "Household_Id__c", "Analytics_Consent__c", "Segment__c", "CLV__c",
                                        "Model_Version__c"])
    # consent bound to identity: an opt-out on any Contact of the household (a duplicate's included)
    # stops the push; the small world has no household split across Accounts, so the resolved household
    # is the Account
    opted_out = {c["AccountId"] for c in store.select("Contact", ["AccountId", "HasOptedOutOfEmail"])
                 if c["HasOptedOutOfEmail"]}
    scored = [a for a in accounts if a["Segment__c"]]
    assert scored and all(a["Analytics_Consent__c"] and a["Id"] not in opted_out for a in scored)
    assert all(a["Model_Version__c"] and a["CLV__c"] is not None for a in scored)
    consenting = [a for a in accounts if a["Analytics_Consent__c"] and a["Id"] not in opted_out]
    assert len(scored) >= 0.9 * len(consenting)


def test_exactly_one_incident_per_break_after_three_runs(demo_run):
    import sqlite3

    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        open_keys = {r[0] for r in con.execute(
            "select incident_correlation_id from fct_trade_breaks where status = 'open'").fetchall()}
    with sqlite3.connect(demo_run.paths.sandbox_state / "servicenow.db") as sn:
        rows = sn.execute("select correlation_id, count(*) from incident group by 1").fetchall()
    per_key = dict(rows)
    assert open_keys <= set(per_key)
    assert max(per_key.values()) == 1


def test_incident_sends_go_through_the_batch_api_within_the_call_bound(demo_run):
    """Issue 22's bound on the DAG's own sends: calls <= ceil(changes / 100) + 5 (changes: rows answered)."""
    import math

    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        sends = con.execute("""
            select rows_sent + rows_failed + rows_dead, api_calls, json_extract_string(detail, '$.api')
            from activation.send_runs where target = 'servicenow' and not kill_switch and api_calls > 0
        """).fetchall()
    assert sends, "the intraday runs sent incidents"
    for changes, calls, api in sends:
        assert api == "batch" and 0 < calls <= math.ceil(changes / 100) + 5, (changes, calls, api)
