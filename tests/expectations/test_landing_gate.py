"""The landing gate on the real small world, and on bad broker files dropped and landed by the real ingest.

Each bad batch lands under its own ingest run id into one shared copy of the world's landing, so each
gate run validates exactly that batch (the gate is scoped by ingest run id, as in the DAGs).
"""

from __future__ import annotations

import re
import shutil

import pytest
from gate_helpers import (
    failed_names,
    garbled_fix_file,
    make_cfg,
    negative_market_values,
    trade_book_with_duplicates,
)

import northstar.warehouse
from expectations import GateFailed, run_gate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def good_landing(world, tmp_path_factory):
    home = tmp_path_factory.mktemp("landing_good")
    cfg = make_cfg(home / "var", landing=world.landing, warehouse=home / "warehouse.duckdb")
    report = run_gate("landing", "nightly__good", cfg=cfg, ingest_run_ids=["world_full", "world_broker"])
    return cfg, report


def test_good_world_passes_and_records_every_expectation(good_landing):
    cfg, report = good_landing
    assert report.success
    assert not report.critical_failures
    names = {o.expectation for o in report.outcomes}
    # every broker table, the manifest and Salesforce were validated
    for name in ("landing.broker_manifest.quarantined_ratio", "landing.internal_trades_keys.trade_id_unique",
                 "landing.fix_executions.ord_status_enum", "landing.pb_confirms.price_positive",
                 "landing.billing.market_value_non_negative", "landing.salesforce_manifest.rows_match_manifest",
                 "landing.salesforce_account.household_id_not_null"):
        assert name in names
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        rows = con.execute(
            "select expectation, severity, success, observed_value from quality.gate_results "
            "where run_id = 'nightly__good' and gate = 'landing'"
        ).fetchall()
    assert len(rows) == len(report.outcomes)
    assert all(success for _, severity, success, _ in rows if severity == "critical")
    # Data Docs were built to HTML under gx_root
    assert report.data_docs_index == cfg.paths.gx_root / "data_docs" / "index.html"
    assert report.data_docs_index.exists()
    assert any((cfg.paths.gx_root / "data_docs" / "validations").rglob("*.html"))
    # ... that load nothing from the internet (assets vendored under the site), link suite pages
    # that exist, and say each check's severity
    docs = cfg.paths.gx_root / "data_docs"
    external = re.compile(r'(?:src="https?://|<link[^>]+href="https?://)')
    pages = {path: path.read_text() for path in docs.rglob("*.html")}
    assert not [path for path, text in pages.items() if external.search(text)]
    assert (docs / "static" / "vendor" / "bootstrap" / "bootstrap.min.css").exists()
    assert any((docs / "expectations").rglob("*.html"))
    assert any("Severity critical (stops the DAG)" in text for text in pages.values())


@pytest.fixture(scope="module")
def bad_landing(world, tmp_path_factory):
    """A copy of the world's drop + landing with three bad deliveries, each landed by its own run."""
    from ingest.broker_files import land_broker_files

    root = tmp_path_factory.mktemp("landing_bad")
    drop, landing = root / "drop", root / "landing"
    shutil.copytree(world.drop, drop)
    shutil.copytree(world.landing, landing)

    # 1. a corrected billing redelivery with negative market values (AUM) for three accounts
    negative_market_values(drop)
    land_broker_files(drop, landing, run_id="bad_billing", sources=["billing"])
    # 2. a trade book repeating trade ids: five rows twice in the file, all of them already booked
    trade_book_with_duplicates(drop)
    land_broker_files(drop, landing, run_id="bad_trades", sources=["internal_trades"])
    # 3. a FIX drop copy that is 60% garbage (CheckSum(10) wrong on 6 of every 10 messages)
    garbled_fix_file(drop)
    land_broker_files(drop, landing, run_id="garbage_fix", sources=["fix_executions"])

    cfg = make_cfg(root / "var", landing=landing, warehouse=root / "warehouse.duckdb")
    return cfg


def _fail(cfg, run_id: str) -> GateFailed:
    with pytest.raises(GateFailed) as failed:
        run_gate("landing", f"gate__{run_id}", cfg=cfg, ingest_run_ids=[run_id], build_docs=False)
    return failed.value


def test_negative_aum_in_billing_fails_the_landing_gate(bad_landing):
    failure = _fail(bad_landing, "bad_billing")
    assert "landing.billing.market_value_non_negative" in {o.expectation for o in failure.report.critical_failures}
    message = str(failure)
    assert "landing gate FAILED" in message
    assert "CRITICAL landing.billing.market_value_non_negative: observed 3 of" in message
    assert "market value (AUM) of an account is never negative" in message
    assert "-" in message.split("landing.billing.market_value_non_negative")[1].split("sample:")[1]
    # only the billing batch was validated, nothing else failed
    assert failed_names(failure.report) == {"landing.billing.market_value_non_negative"}


def test_duplicate_trade_ids_fail_the_landing_gate(bad_landing):
    failure = _fail(bad_landing, "bad_trades")
    critical = {o.expectation: o for o in failure.report.critical_failures}
    assert set(critical) == {"landing.internal_trades_keys.trade_id_unique",
                             "landing.internal_trades_already_booked.trade_id_not_already_booked"}
    duplicated = critical["landing.internal_trades_keys.trade_id_unique"]
    assert duplicated.observed_value == "5 offending rows"  # five trade ids, each twice in the file
    assert [row["copies"] for row in duplicated.sample_rows] == [2] * 5
    assert critical["landing.internal_trades_already_booked.trade_id_not_already_booked"].observed_value == "55 offending rows"
    message = str(failure)
    assert "trade ids are unique in the trade book" in message
    assert "trade_book_20261102.csv" in message  # the sample rows name the file


def test_mostly_garbage_fix_file_fails_the_landing_gate(bad_landing):
    failure = _fail(bad_landing, "garbage_fix")
    critical = {o.expectation: o for o in failure.report.critical_failures}
    assert set(critical) == {"landing.broker_manifest.quarantined_ratio"}
    outcome = critical["landing.broker_manifest.quarantined_ratio"]
    assert outcome.observed_value.startswith("1 of ")  # one file of the run is over the bound
    sample = outcome.sample_rows[0]
    assert sample["file_path"] == "fix/BRKA_20261102.fix"
    assert 0.55 < float(sample["quarantined_ratio"]) < 0.65
    assert "at most 20% of its records quarantined" in str(failure)
    # the manifest's quarantine counts agree with the quarantine file (the counts check passed)
    assert "landing.broker_manifest.quarantined_rows_match_manifest" not in failed_names(failure.report)


def test_failed_gate_is_recorded_with_observed_values(bad_landing):
    with northstar.warehouse.connect(path=bad_landing.paths.warehouse, read_only=True) as con:
        rows = con.execute(
            "select observed_value, details from quality.gate_results "
            "where run_id = 'gate__garbage_fix' and expectation = 'landing.broker_manifest.quarantined_ratio' "
            "and not success"
        ).fetchall()
    assert len(rows) == 1
    assert "BRKA_20261102.fix" in rows[0][1]


def test_thresholds_are_configurable(bad_landing):
    report = run_gate("landing", "gate__garbage_lenient", cfg=bad_landing, ingest_run_ids=["garbage_fix"],
                      thresholds={"landing_max_quarantined_ratio": 0.7}, build_docs=False)
    assert report.success
    assert "landing.broker_manifest.quarantined_ratio_warn" in {o.expectation for o in report.warnings}


def test_hostile_world_fails_on_exactly_its_garbage_files(tmp_path_factory):
    """The sandbox's hostile deliveries (truth/hostile_files.csv): every file whose records are all faulty
    trips the quarantine bound; the empty file and the byte-identical copy do not."""
    import csv

    from world_landing import build_world_landing

    root = tmp_path_factory.mktemp("hostile")
    built = build_world_landing(root, scale="small", seed=7, hostile=True)
    with open(built.truth / "hostile_files.csv") as handle:
        garbage = {row["file"] for row in csv.DictReader(handle) if int(row["expected_quarantined_rows"] or 0) > 0}
    cfg = make_cfg(root / "var", landing=built.landing, warehouse=root / "warehouse.duckdb")
    with pytest.raises(GateFailed) as failed:
        run_gate("landing", "hostile", cfg=cfg, ingest_run_ids=["world_broker"], build_docs=False)
    critical = {o.expectation: o for o in failed.value.report.critical_failures}
    assert set(critical) == {"landing.broker_manifest.quarantined_ratio"}
    outcome = critical["landing.broker_manifest.quarantined_ratio"]
    assert outcome.observed_value.startswith(f"{len(garbage)} of ")
    assert {row["file_path"] for row in outcome.sample_rows} <= garbage
