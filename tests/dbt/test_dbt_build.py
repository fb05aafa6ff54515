"""The dbt project builds, tests and reconciles correctly, end to end, in a private warehouse.

* On the hand-written fixture landing (tests/dbt/landing_fixtures.py): ``dbt build`` succeeds
  with zero warnings, the break register holds exactly the expected breaks, and an intraday
  re-run of one business date after a corrected redelivery clears the fixed break while every
  other break keeps its key and first_seen_at.
* On the synthetic small world landed by the real ingest stage (tests/dbt/world_landing.py): the
  break mart has precision and recall 1.0 against ``truth/breaks.parquet`` (every injected break
  found with its reason code, nothing raised on the benign rounding / split-fill / time-zone rows).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import northstar.warehouse

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO_ROOT / "dbt_project"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from landing_fixtures import EXPECTED_BREAKS, build_landing, write_manifests  # noqa: E402

pytestmark = pytest.mark.integration


@dataclass
class DbtRun:
    success: bool
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_dbt(args: list[str], tmp: Path, monkeypatch, landing: Path, dbt_vars: str | None = None) -> DbtRun:
    from dbt.cli.main import dbtRunner

    monkeypatch.setenv("NORTHSTAR_LANDING", str(landing))
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", str(tmp / "warehouse" / "northstar.duckdb"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    monkeypatch.setenv("NORTHSTAR_PII_SALT", "test-salt-" + tmp.name)
    (tmp / "warehouse").mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []

    def collect(event) -> None:
        if getattr(event.info, "level", "") == "warn":
            warnings.append(f"{event.info.name}: {event.info.msg}")

    cli = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(tmp / "target"),
        "--log-path", str(tmp / "logs"),
    ]
    if dbt_vars:
        cli += ["--vars", dbt_vars]
    result = dbtRunner(callbacks=[collect]).invoke(cli)
    northstar.warehouse.release_dbt_handles()
    failures = [
        f"{r.node.unique_id}: {r.status}: {r.message}"
        for r in (getattr(result.result, "results", None) or [])
        if str(r.status).lower() in {"error", "fail", "runtime error"}
    ]
    return DbtRun(bool(result.success), warnings, failures or ([str(result.exception)] if result.exception else []))


def breaks(tmp: Path) -> list[tuple]:
    with northstar.warehouse.connect(path=tmp / "warehouse" / "northstar.duckdb", read_only=True) as con:
        return con.execute(
            "select break_key, cast(business_date as varchar), break_type, order_id, trade_id, status, first_seen_at "
            "from main.fct_trade_breaks"
        ).fetchall()


def test_fixture_landing_builds_and_reconciles(tmp_path, monkeypatch):
    landing = build_landing(tmp_path / "landing")
    run = run_dbt(["build"], tmp_path, monkeypatch, landing, '{"recon_observed_at": "2026-10-30 21:30:00"}')
    assert run.success, run.failures
    assert run.warnings == []

    _northstar_is_not_learned_from(tmp_path, monkeypatch, landing)
    _order_state_reports_are_not_fills(tmp_path)

    first = breaks(tmp_path)
    assert {(d, t, o, tr) for _, d, t, o, tr, _, _ in first} == EXPECTED_BREAKS
    assert {status for *_, status, _ in first} == {"open"}

    # a corrected redelivery of the atlas confirms for 2026-10-29 fixes T12's commission;
    # the intraday run re-matches only that date
    import pyarrow.parquet as pq

    folder = landing / "broker" / "pb_confirms" / "business_date=2026-10-29"
    table = pq.read_table(folder / "atlas.parquet").to_pylist()
    for row in table:
        if row["trade_id"] == "T12":
            row["commission"] = 0.9
        row["_file_version"] = 2
        row["_file_sha256"] = "corrected" + row["_file_sha256"][9:]
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(folder / "atlas.parquet")), folder / "atlas_v2.parquet")
    write_manifests(landing)

    rerun = run_dbt(
        ["build", "--selector", "intraday_trading"], tmp_path, monkeypatch, landing,
        '{"business_dates": ["2026-10-29"], "recon_observed_at": "2026-10-30 22:00:00"}',
    )
    assert rerun.success, rerun.failures
    assert rerun.warnings == []
    second = {row[0]: row for row in breaks(tmp_path)}
    for key, _date, break_type, _order, trade_id, _status, first_seen in first:
        assert key in second, "a break's key is stable across runs"
        assert second[key][6] == first_seen, "first_seen_at survives a re-run"
        expected_status = "cleared" if (break_type, trade_id) == ("commission", "T12") else "open"
        assert second[key][5] == expected_status, (break_type, trade_id)

    # Monday's trade book arrives (one allocation, no confirm or fill yet): the intraday run re-matches
    # only 2026-11-02, and the open breaks of the 29th, not re-matched, are now two business days old
    from datetime import UTC, date, datetime

    from landing_fixtures import INTERNAL_COLUMNS, _lineage_table

    monday = date(2026, 11, 2)
    row = ("T30", "O30", monday, datetime(2026, 11, 2, 15, 0, tzinfo=UTC), "BA00000001", "MSFT", "EQUITY", "BUY",
           10.0, 401.0, "USD", date(2026, 11, 3), "BRKA", "atlas", 1.0, 0.5)
    monday_folder = landing / "broker" / "internal_trades" / "business_date=2026-11-02"
    monday_folder.mkdir(parents=True)
    pq.write_table(_lineage_table(INTERNAL_COLUMNS, [row], "oms/trade_book_20261102.csv", 1, "run3"),
                   monday_folder / "v1.parquet")
    write_manifests(landing)
    third = run_dbt(
        ["build", "--selector", "intraday_trading"], tmp_path, monkeypatch, landing,
        '{"business_dates": ["2026-11-02"], "recon_observed_at": "2026-11-02 16:00:00"}',
    )
    assert third.success, third.failures
    assert third.warnings == []
    with northstar.warehouse.connect(path=tmp_path / "warehouse" / "northstar.duckdb", read_only=True) as con:
        aged = con.execute(
            "select cast(business_date as varchar), status, age_business_days, count(*), min(first_seen_at) "
            "from main.fct_trade_breaks group by all order by all"
        ).fetchall()
        buckets = con.execute(
            "select open_breaks, breaks_aged_0_days, breaks_aged_1_day, breaks_aged_2_to_5_days "
            "from main.fct_recon_summary where business_date = '2026-10-29' and open_breaks > 0"
        ).fetchall()
    open_29 = [r for r in aged if r[0] == "2026-10-29" and r[1] == "open"]
    assert [r[2] for r in open_29] == [2], aged
    assert open_29[0][3] == len(EXPECTED_BREAKS) - 1 and str(open_29[0][4]) == "2026-10-30 21:30:00"
    assert {(r[0], r[1], r[2]) for r in aged if r[0] == "2026-11-02"} == {("2026-11-02", "open", 0)}
    assert buckets and all(total == aged_2_5 and not (a0 or a1) for total, a0, a1, aged_2_5 in buckets), buckets


def _order_state_reports_are_not_fills(tmp: Path) -> None:
    """The fixture's New, Canceled and Rejected reports (LastQty 0) and its FIX 4.2 status report
    (ExecTransType 3, restating a fill) land in fct_broker_executions as reports that are no fill, and the
    recon sums none of them: O01 is its two fills, O04 its one partial fill, O06 its one fill (not twice),
    and O07, rejected, has no broker order at all (so it stays a missing_broker break, in EXPECTED_BREAKS)."""
    with northstar.warehouse.connect(path=tmp / "warehouse" / "northstar.duckdb", read_only=True) as con:
        reports = con.execute(
            "select order_id, exec_type, coalesce(exec_trans_type, '-'), is_fill from main.fct_broker_executions "
            "where business_date = '2026-10-29' and order_id in ('O01', 'O04', 'O06', 'O07') order by all"
        ).fetchall()
        orders = con.execute(
            "select order_id, quantity, round(average_price, 4), fill_count "
            "from intermediate.int_broker_orders_aggregated where order_id in ('O01', 'O04', 'O06', 'O07') order by all"
        ).fetchall()
    assert reports == [
        ("O01", "0", "-", False), ("O01", "F", "-", True), ("O01", "F", "-", True),
        ("O04", "4", "-", False), ("O04", "F", "-", True),
        ("O06", "0", "0", False), ("O06", "2", "0", True), ("O06", "2", "3", False),
        ("O07", "8", "0", False),
    ]
    assert orders == [("O01", 300.0, 150.0, 2), ("O04", 450.0, 200.0, 1), ("O06", 40.0, 560.0, 1)]


def _northstar_is_not_learned_from(tmp: Path, monkeypatch, landing: Path) -> None:
    """Northstar's own CRM writes never come back as data: its retention Task is tagged at staging and
    is no advisor call, and a push that only bumps an Account's SystemModstamp adds no household version."""
    from datetime import UTC, datetime

    from landing_fixtures import account_version, write_salesforce_run

    warehouse = tmp / "warehouse" / "northstar.duckdb"
    with northstar.warehouse.connect(path=warehouse, read_only=True) as con:
        tagged = con.execute("select task_id from staging.stg_salesforce__tasks where is_created_by_northstar").fetchall()
        counted = con.execute("select count(*) from main.fct_interactions where interaction_id = '00TNS1'").fetchone()[0]
        versions = con.execute("select count(*) from snapshots.households_snapshot").fetchone()[0]
    assert tagged == [("00TNS1",)] and counted == 0

    # Northstar pushes scores to household 2 (only SystemModstamp moves among the tracked columns) ...
    pushed_at = datetime(2026, 10, 30, 23, tzinfo=UTC)
    write_salesforce_run(landing, "sfrun3", datetime(2026, 10, 31, 2, tzinfo=UTC),
                         {"Account": [account_version(2, pushed_at)]})
    write_manifests(landing)
    assert run_dbt(["snapshot"], tmp, monkeypatch, landing).success
    with northstar.warehouse.connect(path=warehouse, read_only=True) as con:
        assert con.execute("select count(*) from snapshots.households_snapshot").fetchone()[0] == versions

    # ... while an advisor's change of risk profile is a new version, valid from its SystemModstamp
    changed_at = datetime(2026, 10, 31, 15, tzinfo=UTC)
    write_salesforce_run(landing, "sfrun4", datetime(2026, 11, 1, 2, tzinfo=UTC),
                         {"Account": [account_version(2, changed_at, Risk_Profile__c="Conservative")]})
    write_manifests(landing)
    assert run_dbt(["snapshot"], tmp, monkeypatch, landing).success
    with northstar.warehouse.connect(path=warehouse, read_only=True) as con:
        rows = con.execute("select risk_profile, dbt_valid_from, dbt_valid_to from snapshots.households_snapshot "
                           "where household_id = 'HH0000002' order by dbt_valid_from").fetchall()
    assert [r[0] for r in rows] == ["Growth", "Conservative"]
    assert str(rows[1][1]) == "2026-10-31 15:00:00" and rows[0][2] == rows[1][1]


def test_small_world_breaks_match_the_truth(tmp_path, monkeypatch):
    world_landing = pytest.importorskip("world_landing")
    try:
        world = world_landing.build_world_landing(tmp_path / "world")
    except ImportError as exc:  # the sandbox or an ingest stage is not importable in this checkout
        pytest.skip(f"synthetic world not available: {exc}")

    run = run_dbt(["build"], tmp_path, monkeypatch, world.landing)
    assert run.success, run.failures
    assert run.warnings == []

    with northstar.warehouse.connect(path=tmp_path / "warehouse" / "northstar.duckdb", read_only=True) as con:
        con.execute(f"create temp table truth as select * from read_parquet('{world.truth / 'breaks.parquet'}')")
        con.execute(
            "create temp table found as select distinct business_date, break_type, coalesce(trade_id, order_id) as item "
            "from main.fct_trade_breaks where status = 'open'"
        )
        con.execute(
            "create temp table expected as select distinct business_date, break_type, coalesce(trade_id, order_id) as item "
            "from truth where kind = 'break'"
        )
        true_positives = con.execute("select count(*) from (select * from found intersect select * from expected)").fetchall()[0][0]
        n_found = con.execute("select count(*) from found").fetchall()[0][0]
        n_expected = con.execute("select count(*) from expected").fetchall()[0][0]
        benign_flagged = con.execute(
            "select count(*) from truth join main.fct_trade_breaks as b "
            "on coalesce(truth.trade_id, truth.order_id) = coalesce(b.trade_id, b.order_id) "
            "where truth.kind = 'benign' and not exists (select 1 from truth as t2 where t2.kind = 'break' "
            "and coalesce(t2.trade_id, t2.order_id) = coalesce(b.trade_id, b.order_id))"
        ).fetchall()[0][0]
    assert n_expected > 0
    precision, recall = true_positives / max(n_found, 1), true_positives / n_expected
    print(f"breaks: expected={n_expected} found={n_found} precision={precision:.4f} recall={recall:.4f}")
    assert recall == 1.0
    assert precision == 1.0
    assert benign_flagged == 0
