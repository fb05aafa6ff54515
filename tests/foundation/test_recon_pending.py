"""The intraday recon reads the landing manifest as files (ingest's output), not through ingest's code:
what ``ingest.manifest`` writes is what ``northstar.recon`` sees as pending."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ingest.manifest import write_run_manifest
from northstar.recon import pending_dates, pending_files, record_reconciled

pytestmark = pytest.mark.unit


def _row(run_id: str, sha: str, table: str, status: str = "landed", business_date: date | None = None) -> dict:
    return {"run_id": run_id, "source": "atlas", "table_name": table, "file_name": f"{sha}.csv",
            "file_path": f"prime/atlas/{sha}.csv", "sha256": sha, "version": 1, "status": status,
            "business_date": business_date, "rows_in": 3, "rows_landed": 3, "rows_quarantined": 0,
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
    assert files.columns == ["sha256", "table_name", "business_date", "landed_run_id"]
    assert pending_dates(cfg) == ["2026-10-29", "2026-10-30"]

    record_reconciled(files.filter(files["sha256"] == "a" * 64), "recon-1", cfg)
    assert pending_dates(cfg) == ["2026-10-30"]
