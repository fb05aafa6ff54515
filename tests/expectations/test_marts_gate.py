"""The marts gate on the dbt-built small world, and on marts as dbt would have written them from bad data."""

from __future__ import annotations

import pytest
from gate_helpers import WORLD_AS_OF, copy_warehouse, failed_names, make_cfg

import northstar.warehouse
from expectations import GateFailed, run_gate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def good_marts(world, tmp_path_factory):
    home = tmp_path_factory.mktemp("marts_good")
    warehouse = copy_warehouse(world, home / "warehouse" / "northstar.duckdb")
    cfg = make_cfg(home / "var", landing=world.landing, warehouse=warehouse)
    return cfg, run_gate("marts", "nightly__good", cfg=cfg, as_of=WORLD_AS_OF, build_docs=False)


def test_good_world_passes(good_marts):
    _, report = good_marts
    assert report.success, report.summary()
    assert report.batch["business_dates"] == ["2026-10-30"]  # the trading marts of "the day" by default
    names = {o.expectation for o in report.outcomes}
    for name in ("marts.dim_households_keys.household_id_unique", "marts.fct_household_months.aum_non_negative",
                 "marts.fct_household_features_unknown_households.household_id_in_dim_households",
                 "marts.fct_household_features.aum_at_cutoff_null_rate", "marts.freshness_billing.age",
                 "marts.freshness_salesforce.age", "marts.freshness_trading.age",
                 "marts.recon_by_business_date.match_rate", "marts.recon_by_business_date.break_volume",
                 "marts.fct_trade_breaks_keys.break_key_unique",
                 "marts.fct_household_months_keys.household_month_unique"):
        assert name in names


def test_results_go_to_the_warehouse(good_marts):
    cfg, report = good_marts
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        observed = dict(con.execute(
            "select expectation, observed_value from quality.gate_results where run_id = 'nightly__good' and gate = 'marts'"
        ).fetchall())
    assert len(observed) == len(report.outcomes)
    # the billing source's age in days at the world's logical time (newest statement 2026-10-30)
    assert observed["marts.freshness_billing.age"] == "1"


@pytest.fixture(scope="module")
def bad_warehouse(world, tmp_path_factory):
    """The world's marts with negative AUM in household months and three trades of the last day booked twice."""
    home = tmp_path_factory.mktemp("marts_bad")
    warehouse = copy_warehouse(world, home / "warehouse" / "northstar.duckdb")
    with northstar.warehouse.connect(path=warehouse) as con:
        con.execute(
            "update main.fct_household_months set aum = -aum - 1 "
            "where household_id in ('HH0000001', 'HH0000002') and month_end_on = date '2026-09-30'"
        )
        con.execute(
            "insert into main.fct_internal_executions select * from main.fct_internal_executions "
            "where trade_id in (select trade_id from main.fct_internal_executions where business_date = "
            "(select max(business_date) from main.fct_internal_executions) order by trade_id limit 3)"
        )
    return make_cfg(home / "var", landing=world.landing, warehouse=warehouse)


def test_negative_aum_in_household_months_fails_the_marts_gate(bad_warehouse):
    with pytest.raises(GateFailed) as failed:
        run_gate("marts", "nightly__bad", cfg=bad_warehouse, as_of=WORLD_AS_OF, domains=["customer"], build_docs=False)
    report = failed.value.report
    assert {o.expectation for o in report.critical_failures} == {"marts.fct_household_months.aum_non_negative"}
    outcome = report.critical_failures[0]
    assert outcome.observed_value.startswith("2 of ")
    assert {row["household_id"] for row in outcome.sample_rows} == {"HH0000001", "HH0000002"}
    message = str(failed.value)
    assert "CRITICAL marts.fct_household_months.aum_non_negative" in message and "AUM is never negative" in message


def test_duplicate_trade_in_the_book_fails_the_marts_gate(bad_warehouse):
    with pytest.raises(GateFailed) as failed:
        run_gate("marts", "intraday__bad", cfg=bad_warehouse, as_of=WORLD_AS_OF, domains=["trading"], build_docs=False)
    failures = {o.expectation: o for o in failed.value.report.critical_failures}
    assert set(failures) == {"marts.fct_internal_executions_keys.trade_record_id_unique"}
    outcome = failures["marts.fct_internal_executions_keys.trade_record_id_unique"]
    assert outcome.observed_value == "3 offending rows"  # three trade records, each booked twice
    assert [row["copies"] for row in outcome.sample_rows] == [2, 2, 2]
    assert "the trade record key (one per booked allocation) is unique" in str(failed.value)


def test_a_run_that_landed_nothing_checks_the_latest_day(bad_warehouse):
    report = run_gate("marts", "intraday__quiet", cfg=bad_warehouse, as_of=WORLD_AS_OF, domains=["trading"],
                      business_dates=[], raise_on_failure=False, build_docs=False)
    assert report.batch["business_dates"] == ["2026-10-30"]


def test_recon_bounds_are_per_business_date(bad_warehouse):
    report = run_gate("marts", "intraday__strict", cfg=bad_warehouse, as_of=WORLD_AS_OF, domains=["trading"],
                      business_dates=["2026-10-29", "2026-10-30"], thresholds={"marts_min_match_rate": 0.995},
                      raise_on_failure=False, build_docs=False)
    assert not report.success
    match = next(o for o in report.outcomes if o.expectation == "marts.recon_by_business_date.match_rate")
    assert match.observed_value.startswith("2 of 2 rows")  # both dates under 99.5% (about 99.1% match)
    assert {str(row["business_date"]) for row in match.sample_rows} == {"2026-10-29", "2026-10-30"}
    assert "marts.fct_internal_executions_keys.trade_record_id_unique" in failed_names(report)
