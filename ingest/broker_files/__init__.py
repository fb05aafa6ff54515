"""Broker drop-folder ingestion: FIX drop copies, prime-broker confirms, the internal book and billing.

``land_broker_files(drop_dir, landing_dir, run_id=None, sources=None) -> IngestReport`` is the one entry
point (CLI: ``python -m ingest broker-files``; Airflow: both DAGs). Sources are declared in
``ingest/dialects/*.yaml``.
"""

from ingest.broker_files.landing import DropFolderUnavailable, FileOutcome, IngestReport, land_broker_files

__all__ = ["DropFolderUnavailable", "FileOutcome", "IngestReport", "land_broker_files"]
