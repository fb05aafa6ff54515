"""The landing manifest: which delivered file (by SHA-256) landed when, as which version, with what counts.

``landing/_manifest/<stage>/<run_id>.parquet``, one row per file a run looked at (columns in ``SCHEMA``).
A file's identity is its content hash: a hash already landed (or quarantined) is skipped as
``skipped_duplicate`` whatever its name. Its logical name is ``(source, file_name)``: new content under a
name already landed is the next ``version`` and names the hash it ``supersedes_sha256``; downstream keeps
the highest version of each logical file. Rows are written only after the data and quarantine files
they describe are in place, so a crash re-lands (idempotently, same paths) rather than loses a file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path

import polars as pl

STATUSES = ("landed", "skipped_duplicate", "quarantined")

SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "source": pl.String,
    "table_name": pl.String,
    "file_name": pl.String,
    "file_path": pl.String,
    "sha256": pl.String,
    "version": pl.Int64,
    "supersedes_sha256": pl.String,
    "status": pl.String,
    "reason_code": pl.String,
    "reason_detail": pl.String,  # why a whole file was rejected
    "duplicate_of": pl.String,
    "business_date": pl.Date,
    "rows_in": pl.Int64,
    "rows_landed": pl.Int64,
    "rows_quarantined": pl.Int64,
    "rows_skipped": pl.Int64,  # FIX messages other than ExecutionReports: rows_in = landed + quarantined + skipped
    "skipped_by_msg_type": pl.String,  # JSON {MsgType: count}, e.g. {"0": 12, "A": 1}
    "log_lines": pl.Int64,  # FIX: lines of log text without a message (not records)
    "data_path": pl.String,
    "quarantine_path": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64,
}


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write next to the target then rename: readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest_dir(landing_dir: Path, stage: str) -> Path:
    return landing_dir / "_manifest" / stage


def run_file_name(run_id: str) -> str:
    """The run's manifest file name: the run id with characters outside ``[A-Za-z0-9._-]`` as ``_``, plus a
    short hash of the run id when any was replaced, so two run ids never share a file (``a:b`` / ``a_b``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if safe != run_id:
        safe += "-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return safe + ".parquet"


def logical_file(row: dict) -> tuple[str, str]:
    """The logical file a delivery is a version of: its source and its path relative to the drop folder.

    The one definition of "latest version", shared with dbt: the highest ``version`` per logical file is
    current (dbt's ``broker_current_rows`` keeps the highest ``_file_version`` per ``_source_file``, the
    same path). A redelivery is current when it is the latest delivery, even if its content matches an
    older version (A, B, then A again: the third delivery is version 3, with A's rows).
    """
    return row["source"], row["file_path"]


def read_parquet_whole(path: Path) -> pl.DataFrame:
    """One Parquet file read through a single open: the version that was there, whole.

    A run's manifest is replaced (atomically) after each file it lands, while another DAG's landing
    task may be reading it. Polars reading by path opens the file more than once (the footer, then
    the pages), so a replacement in between mixed two versions: "File out of specification: The page
    header reported the wrong page size" (seen on the stack; 220 of 772 reads in a two-writer loop).
    """
    with path.open("rb") as handle:
        return pl.read_parquet(io.BytesIO(handle.read()))


def read_manifest(landing_dir: Path, stage: str) -> pl.DataFrame:
    files = sorted(manifest_dir(landing_dir, stage).glob("*.parquet"))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat([read_parquet_whole(f) for f in files], how="diagonal_relaxed").select(list(SCHEMA))


def write_run_manifest(landing_dir: Path, stage: str, run_id: str, rows: list[dict]) -> Path:
    path = manifest_dir(landing_dir, stage) / run_file_name(run_id)
    atomic_write_parquet(pl.DataFrame(rows, schema=SCHEMA), path)
    return path


def latest_versions(manifest: pl.DataFrame) -> pl.DataFrame:
    """Per logical file (source, file_path; see ``logical_file``): the latest version and its hash."""
    return (
        manifest.filter(pl.col("status").is_in(["landed", "quarantined"]))
        .sort("version")
        .group_by("source", "file_path")
        .agg(pl.col("version").last(), pl.col("sha256").last(), pl.col("file_name").last())
    )
