"""The warehouse seam: engine settings on every connection, and operators that never block the pipeline.

The lock holders run in a child process: DuckDB's file lock is per process, so only another process
shows what a DAG task and an operator at a shell do to each other.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import northstar.warehouse
from activate.__main__ import main as activate_cli
from northstar import settings as settings_module
from northstar.errors import run_cli

HOLD = """
import sys, time
import northstar.warehouse
con = northstar.warehouse.connect(path=sys.argv[1], read_only=sys.argv[2] == "read")
print("held", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


def _hold(path: Path, mode: str, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse (``write``: a DAG task; ``read``: an operator)."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


@pytest.fixture
def warehouse_home(northstar_home, monkeypatch):
    from activate import outbox

    outbox.connect(northstar_home).close()  # an empty outbox, as after setup
    return northstar_home


def test_every_connection_gets_the_memory_limit_and_temp_directory(northstar_home, monkeypatch):
    monkeypatch.setenv("NORTHSTAR_DUCKDB_MEMORY_LIMIT", "700MB")
    settings_module.reset_cache()
    cfg = settings_module.settings()
    for con in (northstar.warehouse.connect(cfg=cfg), northstar.warehouse.scratch(cfg)):
        with con:
            limit, temp = con.execute(
                "select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
        assert limit.startswith("667") and limit.endswith("MiB")  # 700 MB = 667.5 MiB, not 80% of RAM
        assert Path(temp) == cfg.paths.duckdb_temp
    from northstar.dbt import dbt_environment

    assert dbt_environment(cfg)["NORTHSTAR_DUCKDB_MEMORY_LIMIT"] == "700MB"  # dbt's profile reads the same value


def test_warehouse_and_mlflow_store_are_private(northstar_home):
    with northstar.warehouse.connect(cfg=northstar_home) as con:
        con.execute("create table t as select 1 as a")
    assert stat.S_IMODE(os.stat(northstar_home.paths.warehouse).st_mode) == 0o600
    for folder in (northstar_home.paths.warehouse.parent, northstar_home.paths.mlflow_dir):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_status_and_trace_wait_for_a_writer_then_answer(warehouse_home, caplog):
    """Before the seam, `activate status` opened read-write and died at once on the task's lock."""
    import activate

    writer = _hold(warehouse_home.paths.warehouse, "write", 2.0)
    try:
        with caplog.at_level(logging.WARNING, logger="northstar.warehouse"):
            status = activate.outbox_status(warehouse_home)
    finally:
        writer.wait(timeout=30)
    assert status == {"counts": [], "dead": [], "recent_sends": [],
                      "open_rows": {"salesforce": 0, "servicenow": 0}}
    assert f"locked by process {writer.pid}" in caplog.text and "waiting" in caplog.text
    with pytest.raises(KeyError, match="no outbox row"):
        activate.trace("nope", warehouse_home)


def test_an_operator_reading_never_fails_a_writing_task(warehouse_home):
    """A status reader holds the file; the task's write connection waits for it instead of failing."""
    reader = _hold(warehouse_home.paths.warehouse, "read", 1.5)
    try:
        started = time.monotonic()
        with northstar.warehouse.connect(cfg=warehouse_home) as con:
            con.execute("create table written_by_task as select 1 as a")
        assert time.monotonic() - started > 0.5  # it did wait for the reader
    finally:
        reader.wait(timeout=30)
    # and two operators read at once
    other = _hold(warehouse_home.paths.warehouse, "read", 10)
    try:
        assert activate_cli(["status"]) == 0
    finally:
        other.kill()
        other.wait()


def test_a_writer_that_stays_gives_a_clear_message_not_a_traceback(warehouse_home, monkeypatch, capsys):
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE_LOCK_WAIT", "1")
    settings_module.reset_cache()
    writer = _hold(warehouse_home.paths.warehouse, "write", 20)
    try:
        code = run_cli(activate_cli, ["status"])
    finally:
        writer.kill()
        writer.wait()
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"locked by process {writer.pid}" in err and "gave up after 1 s" in err


# --- the engine layer (northstar.warehouse.open_warehouse) on DuckDB -------------------------------


def test_a_scoring_runs_rows_are_replaced_whole_and_a_run_id_is_never_shared(northstar_home):
    import pandas as pd

    from ml import score_tables

    settings_module.reset_cache()
    run = pd.DataFrame({"scoring_run_id": ["r1"], "kind": ["household"], "scored_at": [pd.Timestamp("2026-10-30")],
                        "rows": [2]})
    scores = pd.DataFrame({"scoring_run_id": ["r1", "r1"], "scored_at": [pd.Timestamp("2026-10-30")] * 2,
                           "break_key": ["b1", "b2"], "anomaly_score": [0.5, 0.2], "anomaly_rank": [1, 2],
                           "model_version": ["v1", "v1"]})
    Replacement = northstar.warehouse.Replacement  # noqa: N806 - a class
    with northstar.warehouse.open_warehouse(read_only=False) as warehouse:
        assert warehouse.engine == "duckdb"
        warehouse.ensure(score_tables.SCORING_RUNS, score_tables.BREAK_SCORES)
        for _ in range(2):  # a retried write leaves one copy
            warehouse.replace(Replacement(score_tables.BREAK_SCORES, scores, {"scoring_run_id": "r1"}),
                              Replacement(score_tables.SCORING_RUNS, run, {"scoring_run_id": "r1", "kind": "household"}))
        assert warehouse.rows("select break_key, anomaly_rank from {break_scores} order by 1") == [("b1", 1), ("b2", 2)]
        assert warehouse.scalar("select count(*) from {scoring_runs}") == 1
        # the same id as another kind: nothing of the other run is replaced, the write fails and rolls back
        with pytest.raises(Exception, match="(?i)primary key|constraint"):
            warehouse.replace(Replacement(score_tables.BREAK_SCORES, scores.iloc[:1], {"scoring_run_id": "r1"}),
                              Replacement(score_tables.SCORING_RUNS, run.assign(kind="break"),
                                          {"scoring_run_id": "r1", "kind": "break"}))
        assert warehouse.scalar("select count(*) from {break_scores}") == 2
        with pytest.raises(ValueError, match="replace_by"):
            warehouse.replace(Replacement(score_tables.BREAK_SCORES, scores, {"break_key": "b1"}))
        assert warehouse.present() >= {"break_scores", "scoring_runs"}
        assert warehouse.records("select kind, rows from {scoring_runs}") == [{"kind": "household", "rows": 2}]


def test_a_score_table_of_an_older_release_gains_the_newer_columns(northstar_home):
    from ml import score_tables

    settings_module.reset_cache()
    with northstar.warehouse.connect() as con:
        con.execute("create schema scores")
        con.execute("create table scores.break_scores (scoring_run_id varchar not null, scored_at timestamp not null, "
                    "break_key varchar not null, anomaly_score double not null, anomaly_rank integer not null, "
                    "model_version varchar not null, mlflow_run_id varchar)")
    with northstar.warehouse.open_warehouse(read_only=False) as warehouse:
        warehouse.ensure(score_tables.BREAK_SCORES)
        columns = [r[0] for r in warehouse.rows(
            "select column_name from information_schema.columns where table_name = 'break_scores' "
            "order by ordinal_position")]
    assert columns == score_tables.BREAK_SCORES.column_names


def test_the_engines_sql_differences_render_per_engine():
    from ml import score_tables

    assert northstar.warehouse.seconds_between("a", "b", "duckdb") == "date_diff('second', a, b)"
    assert northstar.warehouse.seconds_between("a", "b", "spark") == "(unix_timestamp(b) - unix_timestamp(a))"
    assert northstar.warehouse.numbers(3, "bin", "spark") == "select explode(sequence(0, 2)) as bin"
    assert northstar.warehouse.render("select * from {household_scores}", engine="spark") == \
        "select * from scores.household_scores"
    assert northstar.warehouse.relation("fct_trade_breaks", engine="spark") == "northstar.fct_trade_breaks"
    assert "partitioned by (scoring_run_id)" in score_tables.HOUSEHOLD_SCORES.spark_ddl()
