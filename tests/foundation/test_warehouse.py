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
