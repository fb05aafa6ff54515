"""Quarantine: records (or whole files) that could not be landed, kept with the reason, never dropped.

One Parquet file per delivered file that had rejects:
``landing/quarantine/<stage>/<source>/<sha256[:16]>.parquet`` with the columns in ``SCHEMA``. ``raw_content``
is the record as delivered, decoded as UTF-8 with undecodable bytes escaped (``\\xe9``); FIX's SOH
separators are kept as the ``\\x01`` character.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from ingest.manifest import atomic_write_parquet

REASON_CODES = {
    "fix_bad_checksum", "fix_bad_body_length", "fix_missing_tag", "fix_bad_enum", "fix_garbled",
    "csv_missing_column", "csv_bad_value", "not_utf8", "empty_file", "duplicate_file",
    # whole files that cannot be landed (the run goes on with the others)
    "header_only", "bad_file_name", "symlink", "unreadable_file", "unparseable_file",
    "dialect_error",
}

SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "file_name": pl.String,
    "sha256": pl.String,
    "file_version": pl.Int64,
    "line_number": pl.Int64,
    "raw_content": pl.String,
    "reason_code": pl.String,
    "reason_detail": pl.String,
    "run_id": pl.String,
    "quarantined_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class Rejected:
    """One rejected record: its 1-based line in the file (None for a file-level record), raw bytes, why."""

    line_number: int | None
    raw: bytes
    reason_code: str
    reason_detail: str


def raw_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def quarantine_path(landing_dir: Path, stage: str, source: str, sha256: str) -> Path:
    return landing_dir / "quarantine" / stage / source / f"{sha256[:16]}.parquet"


def write_quarantine(
    landing_dir: Path,
    stage: str,
    source: str,
    file_name: str,
    sha256: str,
    file_version: int,
    rejected: list[Rejected],
    run_id: str,
    quarantined_at: datetime,
) -> Path:
    for r in rejected:
        if r.reason_code not in REASON_CODES:
            raise ValueError(f"unknown quarantine reason {r.reason_code!r}")
    n = len(rejected)
    frame = pl.DataFrame(
        {
            "source": [source] * n,
            "file_name": [file_name] * n,
            "sha256": [sha256] * n,
            "file_version": [file_version] * n,
            "line_number": [r.line_number for r in rejected],
            "raw_content": [raw_text(r.raw) for r in rejected],
            "reason_code": [r.reason_code for r in rejected],
            "reason_detail": [r.reason_detail for r in rejected],
            "run_id": [run_id] * n,
            "quarantined_at": [quarantined_at] * n,
        },
        schema=SCHEMA,
    )
    path = quarantine_path(landing_dir, stage, source, sha256)
    atomic_write_parquet(frame, path)
    return path
