"""Idempotence on the demo world: recovery after a failed run, no-op runs, and a nightly rerun.

Runs after `test_demo_flow.py` and before `test_gates_stop_the_dags.py` (file order), through the
real DAGs (`airflow dags test`) against the sandbox servers.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from e2e_helpers import served, task_states, writes

import northstar.warehouse
from northstar.demo import DEFAULT_AS_OF, run_dag
from northstar.recon import LEDGER, TRADE_TABLES, work_after_landing

pytestmark = pytest.mark.e2e

NOOP_RUNS = 10


def _row_counts(cfg) -> dict[str, int]:
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_type = 'BASE TABLE' order by 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}  # noqa: S608


def _fingerprints(cfg) -> dict:
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        return northstar.warehouse.content_fingerprints(con)


@pytest.fixture
def sandbox(demo_run):
    with served(demo_run):
        yield


def _land(cfg, run_id: str) -> dict:
    from ingest.broker_files import land_broker_files

    return land_broker_files(cfg.paths.drop, cfg.paths.landing, run_id=run_id, sources=list(TRADE_TABLES)).as_dict()


def _correct_last_trade_book(drop: Path) -> tuple[str, str, float]:
    """A corrected redelivery of the last trade book: the first allocation's quantity doubled."""
    path = sorted((drop / "oms").glob("trade_book_*.csv"))[-1]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    rows[0]["quantity"] = str(float(rows[0]["quantity"]) * 2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path.name, rows[0]["trade_id"], float(rows[0]["quantity"])


@pytest.mark.timeout(1200)  # one intraday DAG run
def test_a_run_that_failed_after_landing_is_reconciled_by_the_next(demo_run, sandbox):
    cfg = demo_run
    assert work_after_landing({}, cfg) == {}  # the demo's runs left nothing pending or unscored
    name, trade_id, quantity = _correct_last_trade_book(cfg.paths.drop)
    # the run lands the redelivery and then dies (the warehouse lock, a killed worker): nothing after landing ran
    landed = _land(cfg, "failed_after_landing")
    assert landed["files_landed"] == 1
    # the next run lands nothing new, yet re-matches that date: the manifest says it is not reconciled
    assert _land(cfg, "next_run_probe")["files_landed"] == 0
    assert work_after_landing({"run_id": "next_run_probe", "files_landed": 0}, cfg)["business_dates"] == landed["business_dates"]

    run_dag("intraday_trade_recon", DEFAULT_AS_OF, cfg, log_name="recovery")
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        now = con.execute("select quantity from main.fct_internal_executions where trade_id = ?", [trade_id]).fetchall()
        ledger = con.execute(f"select count(*) from {LEDGER} where landed_run_id = 'failed_after_landing'").fetchone()[0]  # noqa: S608
    assert [q for (q,) in now] == [quantity], name
    assert ledger == 1
    assert work_after_landing({}, cfg) == {}


@pytest.mark.timeout(1200)  # one intraday DAG run and nine landings
def test_no_op_runs_do_nothing_and_append_nothing(demo_run, sandbox):
    cfg = demo_run
    before, writes_before = _row_counts(cfg), writes(cfg)
    # one whole DAG run through Airflow ...
    run_dag("intraday_trade_recon", DEFAULT_AS_OF, cfg, log_name="noop")
    states = task_states((cfg.paths.var / "demo" / "noop.log").read_text())
    assert states.get("land_broker_files") == "success" and states.get("anything_to_check") == "success"
    assert all(states.get(t) in (None, "skipped") for t in ("landing_gate", "reconcile_trades", "send_incidents"))
    assert _row_counts(cfg) == before
    # ... and the rest of the ten through the same stage calls the DAG makes (land, then decide)
    for number in range(1, NOOP_RUNS):
        report = _land(cfg, f"noop_{number}")
        assert report["files_landed"] == report["files_quarantined"] == 0
        assert work_after_landing(report, cfg) == {}
    assert _row_counts(cfg) == before
    assert writes(cfg) == writes_before


@pytest.mark.timeout(1200)  # one nightly DAG run
def test_a_nightly_rerun_on_unchanged_input_changes_nothing(demo_run, sandbox):
    """A nightly rerun on the same input: identical content in every mart and score table (run stamps
    excluded by name) and not one write to Salesforce or ServiceNow.

    One rerun here, where every minute of the e2e worker counts; `bench/bench_reruns.py` makes three on
    the bigger `demo` world (a nondeterministic join once changed `fct_trade_matches` on every rerun)."""
    cfg = demo_run
    before, writes_before = _fingerprints(cfg), writes(cfg)
    assert len(before) >= 15  # the marts and score tables of the small world (19 at the time of writing)
    run_dag("nightly_client_value", DEFAULT_AS_OF, cfg, log_name="nightly_rerun")
    again = _fingerprints(cfg)
    changed = {t: (before.get(t), again.get(t)) for t in set(before) | set(again) if before.get(t) != again.get(t)}
    assert changed == {}
    assert writes(cfg) == writes_before
