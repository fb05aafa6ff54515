"""The intraday recon reads the landing manifest as files (ingest's output), not through ingest's code:
what ``ingest.manifest`` writes is what ``northstar.recon`` sees as pending."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ingest.manifest import write_run_manifest
from northstar.recon import landed_date_batches, pending_dates, pending_files, record_reconciled

pytestmark = pytest.mark.unit


def _row(run_id: str, sha: str, table: str, status: str = "landed", business_date: date | None = None,
         rows: int = 3) -> dict:
    return {"run_id": run_id, "source": "atlas", "table_name": table, "file_name": f"{sha}.csv",
            "file_path": f"prime/atlas/{sha}.csv", "sha256": sha, "version": 1, "status": status,
            "business_date": business_date, "rows_in": rows, "rows_landed": rows, "rows_quarantined": 0,
            "started_at": datetime(2026, 10, 30, tzinfo=UTC), "duration_s": 0.1}


def test_pending_trade_files_come_from_the_manifest_and_leave_once_reconciled(northstar_home):
    cfg = northstar_home
    assert pending_files(cfg).height == 0 and pending_dates(cfg) == []
    write_run_manifest(cfg.paths.landing, "broker_files", "run-1", [
        _row("run-1", "a" * 64, "pb_confirms", business_date=date(2026, 10, 29)),
        _row("run-1", "b" * 64, "billing", business_date=date(2026, 10, 1)),  # not a trade table
        _row("run-1", "c" * 64, "internal_trades", status="quarantined", business_date=date(2026, 10, 28)),
        _row("run-1", "d" * 64, "fix_executions", business_date=None),  # no date: nothing to re-match
    ])
    write_run_manifest(cfg.paths.landing, "broker_files", "run:2", [
        _row("run:2", "e" * 64, "internal_trades", business_date=date(2026, 10, 30)),
        _row("run:2", "a" * 64, "pb_confirms", business_date=date(2026, 10, 29)),  # same content again
    ])
    files = pending_files(cfg)
    assert sorted(files["sha256"].to_list()) == ["a" * 64, "e" * 64]
    assert files.columns == ["sha256", "table_name", "business_date", "landed_run_id", "rows_landed"]
    assert pending_dates(cfg) == ["2026-10-29", "2026-10-30"]

    record_reconciled(files.filter(files["sha256"] == "a" * 64), "recon-1", cfg)
    assert pending_dates(cfg) == ["2026-10-30"]


def test_a_nightly_rematches_the_landed_dates_in_batches_of_at_most_recon_batch_rows(northstar_home):
    """Every landed date (reconciled or not), in date order, grouped up to the row budget; a date above the
    budget is a batch of its own; quarantined files and non-trade tables do not count."""
    from dataclasses import replace

    cfg = replace(northstar_home, recon_batch_rows=100)
    assert landed_date_batches(cfg) == []
    write_run_manifest(cfg.paths.landing, "broker_files", "run-1", [
        _row("run-1", "a" * 64, "internal_trades", business_date=date(2026, 10, 26), rows=40),
        _row("run-1", "b" * 64, "pb_confirms", business_date=date(2026, 10, 26), rows=30),
        _row("run-1", "c" * 64, "fix_executions", business_date=date(2026, 10, 27), rows=30),
        _row("run-1", "d" * 64, "internal_trades", business_date=date(2026, 10, 28), rows=250),
        _row("run-1", "e" * 64, "billing", business_date=date(2026, 10, 29), rows=10_000),
        _row("run-1", "f" * 64, "internal_trades", status="quarantined", business_date=date(2026, 10, 29), rows=900),
        _row("run-1", "g" * 64, "internal_trades", business_date=date(2026, 10, 30), rows=5),
    ])
    record_reconciled(pending_files(cfg).filter(pending_files(cfg)["sha256"] == "a" * 64), "recon-1", cfg)
    assert landed_date_batches(cfg) == [["2026-10-26", "2026-10-27"], ["2026-10-28"], ["2026-10-30"]]
    assert landed_date_batches(replace(cfg, recon_batch_rows=10_000)) == [
        ["2026-10-26", "2026-10-27", "2026-10-28", "2026-10-30"]]
