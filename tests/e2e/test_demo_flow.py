"""The demo's own code path on the `small` world: seed, serve, both DAGs via `airflow dags test`.

This is `make demo` shrunk to a size the suite can afford; the assertions check what each stage
left behind, read the way a person would read it (landing manifests, the warehouse read-only).
"""

from __future__ import annotations

import socket

import duckdb
import pytest

from northstar import settings as settings_module
from northstar.demo import run_demo

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo") / "var"
    patch = pytest.MonkeyPatch()
    patch.setenv("NORTHSTAR_HOME", str(home))
    patch.setenv("NORTHSTAR_SALESFORCE_PORT", str(_free_port()))
    patch.setenv("NORTHSTAR_SERVICENOW_PORT", str(_free_port()))
    patch.delenv("AIRFLOW_HOME", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    run_demo(scale="small", seed=11, cfg=cfg)
    yield cfg
    patch.undo()
    settings_module.reset_cache()


def test_every_dag_run_succeeds_and_leaves_a_log(demo_run):
    logs = sorted((demo_run.paths.var / "demo").glob("[0-9]_*.log"))
    assert [p.stem.split("_", 1)[1] for p in logs] == ["intraday_trade_recon", "nightly_client_value",
                                                       "intraday_trade_recon"]
    for path in logs:
        text = path.read_text()
        assert "DagRun Finished" in text and "state=success" in text.split("DagRun Finished")[-1], path


def test_landing_conserves_every_row(demo_run):
    con = duckdb.connect()
    manifest = demo_run.paths.landing / "_manifest" / "broker_files"
    rows = con.execute(
        f"select sum(rows_in), sum(rows_landed), sum(rows_quarantined) from read_parquet('{manifest}/*.parquet')"
    ).fetchone()
    assert rows[0] and rows[0] == rows[1] + rows[2]


def test_salesforce_objects_landed(demo_run):
    landed = {p.name for p in (demo_run.paths.landing / "salesforce").iterdir() if p.is_dir()}
    assert {"Account", "Contact", "Case", "Task", "Event", "Opportunity", "User", "Brokerage_Account__c"} <= landed


def test_warehouse_marts_built(demo_run):
    with duckdb.connect(str(demo_run.paths.warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        assert {"dim_households", "fct_household_features", "fct_trade_breaks", "fct_recon_summary"} <= tables
        households = con.execute("select count(*) from dim_households").fetchone()[0]
        open_breaks = con.execute("select count(*) from fct_trade_breaks where status = 'open'").fetchone()[0]
    assert households == 1000  # the small world's tier
    assert open_breaks > 0  # the world injects breaks on every business day
