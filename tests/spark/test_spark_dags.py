"""Both DAGs run green end to end on the Spark engine (issue 20): the small world, ``NORTHSTAR_ENGINE=spark``.

The demo's own path (``northstar.demo.run_demo``, runner ``dags-test``): seed the small world, serve the
sandbox, then ``airflow dags test`` intraday, nightly, intraday, as the e2e suite does on DuckDB. Every
task that touches the warehouse goes through the engine layer (``northstar.warehouse.open_warehouse``):
dbt builds on Spark ``local[2]`` (dbt-spark's session method), the marts and scores gates validate through
Great Expectations' Spark datasource, the models read their features from Spark and write their scores
into Spark's ``scores`` tables, the outbox (the control store, DuckDB) plans from the Spark score marts,
and the dashboard snapshot copies from Spark. One Spark driver per DAG run (dbt and the tasks share it);
the module's world is built once.

Slow (minutes of Spark builds on two cores): not part of ``make test``; run it with
``NORTHSTAR_SPARK_DAGS=1 .venv/bin/python -m pytest tests/spark`` (needs the spark extra
and Java 17: ``NORTHSTAR_ENGINE=spark make install``).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # e2e_helpers

pytestmark = [
    pytest.mark.spark,
    pytest.mark.timeout(3 * 3600),
    pytest.mark.skipif(os.environ.get("NORTHSTAR_SPARK_DAGS") != "1",
                       reason="slow Spark DAG runs: NORTHSTAR_SPARK_DAGS=1 .venv/bin/python -m pytest tests/spark"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def spark_world(tmp_path_factory):
    """The small world run through both DAGs on Spark; yields its settings."""
    if shutil.which("java") is None:
        pytest.fail("no Java runtime: `make java` installs Debian's openjdk-17-jre-headless")
    pytest.importorskip("pyspark", reason="the spark extra: NORTHSTAR_ENGINE=spark make install")
    from northstar import settings as settings_module
    from northstar.demo import run_demo

    home = tmp_path_factory.mktemp("spark_dags") / "var"
    patch = pytest.MonkeyPatch()
    patch.setenv("NORTHSTAR_HOME", str(home))
    patch.setenv("NORTHSTAR_ENGINE", "spark")
    patch.setenv("NORTHSTAR_SALESFORCE_PORT", str(_free_port()))
    patch.setenv("NORTHSTAR_SERVICENOW_PORT", str(_free_port()))
    for name in ("AIRFLOW_HOME", "NORTHSTAR_KILL_SWITCH", "NORTHSTAR_WAREHOUSE", "NORTHSTAR_DBT_TARGET",
                 "NORTHSTAR_SPARK_WAREHOUSE", "NORTHSTAR_SPARK_METASTORE"):
        patch.delenv(name, raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    try:
        run_demo(scale="small", seed=7, cfg=cfg, runner="dags-test")
        yield cfg
    finally:
        from pyspark.sql import SparkSession

        if SparkSession._instantiatedSession is not None:  # the summary's session in this process
            SparkSession._instantiatedSession.stop()
        patch.undo()
        settings_module.reset_cache()


def test_both_dags_run_green_on_spark(spark_world):
    from e2e_helpers import task_states

    logs = sorted((spark_world.paths.var / "demo").glob("[0-9]_*.log"))
    assert [p.stem.split("_", 1)[1] for p in logs] == ["intraday_trade_recon", "nightly_client_value",
                                                       "intraday_trade_recon"]
    for path in logs:
        text = path.read_text()
        assert "DagRun Finished" in text and "state=success" in text.split("DagRun Finished")[-1], path
    nightly = task_states(logs[1].read_text())
    for task in ("landing_gate", "build_warehouse", "resolve_identities", "publish_identities", "marts_gate",
                 "score_households", "publish_scores",
                 "scores_gate", "plan_salesforce_push", "send_salesforce_push", "refresh_dashboard"):
        assert nightly.get(task) == "success", (task, nightly)
    second_intraday = task_states(logs[2].read_text())
    for task in ("reconcile_trades", "marts_gate", "score_breaks", "scores_gate", "plan_incidents", "send_incidents"):
        assert second_intraday.get(task) == "success", (task, second_intraday)


def test_the_warehouse_is_spark_and_holds_the_scores(spark_world):
    import northstar.warehouse

    # the DuckDB file is the control store only: no dbt table, no score
    with northstar.warehouse.connect(read_only=True, cfg=spark_world) as con:
        schemas = {row[0] for row in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    assert schemas <= {"activation", "quality", "recon"}, schemas
    with northstar.warehouse.open_warehouse(cfg=spark_world) as engine:
        assert engine.engine == "spark"
        present = engine.present()
        assert {"fct_trade_breaks", "fct_household_features", "household_scores", "break_scores", "scoring_runs",
                "fct_household_scores", "fct_break_scores", "person_records", "resolution_runs"} <= present
        households = engine.scalar("select count(*) from {dim_households}")
        scored = engine.scalar("select count(*) from {fct_household_scores}")
        assert scored == households > 0
        kinds = dict(engine.rows("select kind, count(*) from {scoring_runs} group by kind"))
        assert kinds.get("household") == 1 and kinds.get("break", 0) >= 1, kinds
        assert engine.scalar("select count(*) from {fct_break_scores}") > 0


def test_the_gates_ran_on_spark_and_the_pushes_went_out(spark_world):
    import json

    import northstar.warehouse

    with northstar.warehouse.connect(read_only=True, cfg=spark_world) as con:
        gates = con.execute("select gate, count(*), count(*) filter (where not success and severity = 'critical'), "
                            "any_value(details) from quality.gate_results group by gate").fetchall()
        sent = dict(con.execute("select target, count(*) from activation.outbox where status = 'sent' "
                                "group by target").fetchall())
    by_gate = {gate: (checks, failed, json.loads(details)) for gate, checks, failed, details in gates}
    assert set(by_gate) == {"landing", "marts", "scores"}
    for gate, (checks, failed, _) in by_gate.items():
        assert checks > 0 and failed == 0, gate
    # the warehouse gates read the Spark catalog, not a DuckDB file
    assert by_gate["marts"][2]["batch"]["warehouse"] == str(spark_world.paths.spark_warehouse)
    assert sent.get("salesforce", 0) > 0 and sent.get("servicenow", 0) > 0, sent
