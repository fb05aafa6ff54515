"""Land the incidents people resolved or closed since the last read-back, with their close codes.

``landing/servicenow/incidents/<run_id>.parquet`` (columns in :data:`INCIDENT_SCHEMA`) and one manifest
row per run under ``landing/_manifest/servicenow/``. Incremental by ``sys_updated_on``: the newest value
already landed is the watermark, and a (sys_id, sys_updated_on) pair already landed is not landed again.
Only Northstar's incidents count (``correlation_display``, see :mod:`connectors.servicenow`), and those
Northstar resolved itself (close notes starting with the auto-resolve marker) are not labels and are left
out. A read, so it runs with the activation kill switch on too. ``ml.anomaly.labels`` reads the files.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from connectors.retry import RetryPolicy
from connectors.servicenow import (
    AUTO_RESOLVE_MARKER,
    CLOSED,
    CORRELATION_DISPLAY,
    RESOLVED,
    ServiceNowClient,
)
from ingest.manifest import atomic_write_parquet, run_file_name, write_run_manifest
from northstar.reference import incident_rules
from northstar.settings import Endpoint, Settings, servicenow_endpoint, settings

STAGE = "servicenow"  # the landing manifest stage
INCIDENT_SCHEMA = {
    "correlation_id": pl.String, "break_key": pl.String, "number": pl.String, "sys_id": pl.String,
    "state": pl.String, "close_code": pl.String, "close_notes": pl.String, "resolved_at": pl.Datetime("us", "UTC"),
    "sys_updated_on": pl.String, "extracted_at": pl.Datetime("us", "UTC"), "run_id": pl.String,
}
FIELDS = "sys_id,number,state,correlation_id,close_code,close_notes,resolved_at,sys_updated_on"


def incidents_dir(cfg: Settings) -> Path:
    return cfg.paths.landing / "servicenow" / "incidents"


def read_back(run_id: str | None = None, cfg: Settings | None = None, endpoint: Endpoint | None = None,
              retry: RetryPolicy | None = None, page_size: int = 500) -> dict:
    """Land incidents that people resolved/closed since the last read-back (see the module docstring)."""
    cfg = cfg or settings()
    started = datetime.now(UTC)
    run_id = run_id or f"servicenow-readback-{started:%Y%m%dT%H%M%S}"
    folder = incidents_dir(cfg)
    landed = (pl.concat([pl.read_parquet(f) for f in sorted(folder.glob("*.parquet"))], how="diagonal_relaxed")
              if folder.exists() and any(folder.glob("*.parquet")) else pl.DataFrame(schema=INCIDENT_SCHEMA))
    watermark = landed["sys_updated_on"].max() if landed.height else None
    seen = set(zip(landed["sys_id"].to_list(), landed["sys_updated_on"].to_list(), strict=True))
    query = f"correlation_display={CORRELATION_DISPLAY}^stateIN{RESOLVED},{CLOSED}"
    if watermark:
        query += f"^sys_updated_on>={watermark}"
    query += "^ORDERBYsys_updated_on"
    client = ServiceNowClient(endpoint or servicenow_endpoint(cfg), retry=retry)
    records = client.query_table("incident", query, FIELDS, page_size=page_size)
    prefix = incident_rules(cfg).correlation_prefix  # dbt's fct_trade_breaks builds the id from the same seed
    rows = []
    for r in records:
        if (r["sys_id"], r["sys_updated_on"]) in seen or str(r.get("close_notes", "")).startswith(AUTO_RESOLVE_MARKER):
            continue
        rows.append({
            "correlation_id": r["correlation_id"], "break_key": r["correlation_id"].removeprefix(prefix),
            "number": r["number"], "sys_id": r["sys_id"], "state": r["state"], "close_code": r.get("close_code"),
            "close_notes": r.get("close_notes"),
            "resolved_at": (datetime.strptime(r["resolved_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                            if r.get("resolved_at") else None),
            "sys_updated_on": r["sys_updated_on"], "extracted_at": started, "run_id": run_id,
        })
    frame = pl.DataFrame(rows, schema=INCIDENT_SCHEMA)
    path = folder / run_file_name(run_id)
    if frame.height:
        atomic_write_parquet(frame, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if frame.height else None
    write_run_manifest(cfg.paths.landing, STAGE, run_id, [{
        "run_id": run_id, "source": "servicenow", "table_name": "incident", "file_name": path.name,
        "file_path": str(path) if frame.height else None, "sha256": digest, "version": 1,
        "supersedes_sha256": None, "status": "landed", "reason_code": None if frame.height else "no_new_rows",
        "duplicate_of": None, "business_date": None, "rows_in": len(records), "rows_landed": frame.height,
        "rows_quarantined": 0, "data_path": str(path) if frame.height else None, "quarantine_path": None,
        "started_at": started, "duration_s": (datetime.now(UTC) - started).total_seconds(),
    }])
    return {"run_id": run_id, "fetched": len(records), "landed": frame.height,
            "watermark": watermark, "path": str(path) if frame.height else None, "api_calls": client.calls}
