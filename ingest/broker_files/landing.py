"""``land_broker_files``: the broker drop folder to typed Parquet in ``landing/``, exactly once, losing nothing.

For each file a dialect recognises (oldest delivery first): fingerprint (SHA-256); skip a hash already
landed; otherwise parse and validate, write the good rows to
``landing/broker/<table>/<business_date=YYYY-MM-DD|period=YYYY-MM>/<sha256[:16]>.parquet`` and the
rejects to ``landing/quarantine/broker_files/<source>/<sha256[:16]>.parquet`` (both atomically), and only
then append the file's manifest row. See ingest/README.md for every table's columns.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ingest import manifest, quarantine
from ingest.broker_files.csv_files import ParsedFile, parse_csv
from ingest.broker_files.dialects import Dialect, load_dialects
from ingest.fix.parser import parse_fix
from ingest.quarantine import Rejected

log = logging.getLogger(__name__)
STAGE = "broker_files"
LINEAGE = ["_source_file", "_source_line", "_file_sha256", "_file_version", "_run_id", "_landed_at"]


@dataclass
class FileOutcome:
    source: str
    table: str
    file_name: str
    file_path: str
    sha256: str
    status: str
    version: int | None
    business_date: str | None
    rows_in: int
    rows_landed: int
    rows_quarantined: int
    reason_code: str | None = None


@dataclass
class IngestReport:
    run_id: str
    files_seen: int = 0
    files_landed: int = 0
    files_skipped: int = 0
    files_quarantined: int = 0
    rows_in: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    business_dates: list[str] = field(default_factory=list)  # partitions touched (dates or YYYY-MM periods)
    files: list[FileOutcome] = field(default_factory=list)
    unrecognised_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Small enough for XCom: counts, dates touched and per-file outcomes (no data)."""
        return asdict(self)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _discover(drop_dir: Path, dialects: list[Dialect]) -> tuple[list[tuple[Path, Dialect]], list[str]]:
    found, unrecognised = [], []
    for path in sorted(p for p in drop_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(drop_dir)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue  # hidden files and staging folders (e.g. _redeliveries/) are not deliveries yet
        owner = next((d for d in dialects if d.match(relative)), None)
        if owner is None:
            unrecognised.append(relative.as_posix())
        else:
            found.append((path, owner))
    # Oldest delivery first, so a redelivery supersedes what came before it.
    found.sort(key=lambda item: (item[0].stat().st_mtime_ns, item[0].as_posix()))
    return found, unrecognised


def _parse(data: bytes, dialect: Dialect) -> ParsedFile:
    if dialect.format == "csv":
        return parse_csv(data, dialect)
    if not data.strip():
        return ParsedFile(rows=pl.DataFrame(), rejected=[Rejected(None, data, "empty_file", "the file has no content")],
                          rows_in=0, file_reason="empty_file")
    result = parse_fix(data)
    rejected = [Rejected(r.line_number, r.raw, r.reason_code, r.reason_detail) for r in result.rejects]
    rows = result.executions
    if rows.height:
        rows = rows.with_columns(
            pl.col("security_type").replace_strict(dialect.price_convention, default=None, return_dtype=pl.String)
            .alias("price_convention"),
            pl.col("security_type").replace_strict(dialect.contract_multiplier, default=None, return_dtype=pl.Int64)
            .alias("contract_multiplier"),
        )
    return ParsedFile(rows=rows, rejected=rejected, rows_in=result.lines_in)


def _wanted(dialect: Dialect, sources: list[str] | None) -> bool:
    return sources is None or dialect.table in sources or dialect.source in sources


def land_broker_files(
    drop_dir: Path,
    landing_dir: Path,
    run_id: str | None = None,
    sources: list[str] | None = None,
    dialects: list[Dialect] | None = None,
) -> IngestReport:
    """Land every new file in ``drop_dir`` (optionally only the given tables or sources) into ``landing_dir``."""
    drop_dir, landing_dir = Path(drop_dir), Path(landing_dir)
    run_id = run_id or f"manual__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    dialects = [d for d in (dialects or load_dialects()) if _wanted(d, sources)]
    report = IngestReport(run_id=run_id)
    files, report.unrecognised_files = _discover(drop_dir, dialects) if drop_dir.exists() else ([], [])
    for name in report.unrecognised_files:
        log.warning("drop folder file matches no dialect, left in place: %s", name)

    history = manifest.read_manifest(landing_dir, STAGE)
    # Rows this run_id already wrote (an Airflow retry of the same run): kept and counted as this run's.
    run_rows = history.filter(pl.col("run_id") == run_id).to_dicts()
    earlier = history.filter(pl.col("run_id") != run_id)
    seen: dict[str, str] = {}  # sha256 -> file_name
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for row in pl.concat([earlier, pl.DataFrame(run_rows, schema=manifest.SCHEMA)]).iter_rows(named=True):
        if row["status"] in ("landed", "quarantined"):
            seen.setdefault(row["sha256"], row["file_name"])
            key = (row["source"], row["file_name"])
            if row["version"] > latest.get(key, (0, ""))[0]:
                latest[key] = (row["version"], row["sha256"])
    for row in run_rows:
        report.files.append(_outcome_from_row(row))
    retried = {row["sha256"] for row in run_rows}  # this run's earlier attempt already handled these

    for path, dialect in files:
        started = time.monotonic()
        started_at = datetime.now(UTC)
        data = path.read_bytes()
        sha = sha256_of(data)
        relative = path.relative_to(drop_dir).as_posix()
        match = dialect.match(path.relative_to(drop_dir))
        partition_date = dialect.partition_date(match)
        key = (dialect.source, path.name)
        row = {
            "run_id": run_id, "source": dialect.source, "table_name": dialect.table, "file_name": path.name,
            "file_path": relative, "sha256": sha, "business_date": partition_date, "started_at": started_at,
            "supersedes_sha256": None, "reason_code": None, "duplicate_of": None, "data_path": None,
            "quarantine_path": None,
        }
        if sha in seen:
            if sha in retried:
                continue  # handled by an earlier attempt of this very run: already counted above
            row.update(status="skipped_duplicate", version=None, reason_code="duplicate_file",
                       duplicate_of=seen[sha], rows_in=0, rows_landed=0, rows_quarantined=0)
        else:
            version, supersedes = latest.get(key, (0, None))
            version += 1
            parsed = _parse(data, dialect)
            landed_at = datetime.now(UTC)
            if parsed.rows.height:
                rows = parsed.rows.with_columns(
                    pl.lit(relative).alias("_source_file"),
                    pl.lit(sha).alias("_file_sha256"),
                    pl.lit(version, dtype=pl.Int64).alias("_file_version"),
                    pl.lit(run_id).alias("_run_id"),
                    pl.lit(landed_at, dtype=pl.Datetime("us", "UTC")).alias("_landed_at"),
                )
                rows = rows.select([c for c in rows.columns if c not in LINEAGE] + LINEAGE)
                target = (landing_dir / "broker" / dialect.table
                          / f"{dialect.partition}={dialect.partition_value(partition_date)}" / f"{sha[:16]}.parquet")
                manifest.atomic_write_parquet(rows, target)
                row["data_path"] = target.relative_to(landing_dir).as_posix()
            if parsed.rejected:
                qpath = quarantine.write_quarantine(
                    landing_dir, STAGE, dialect.source, path.name, sha, version, parsed.rejected, run_id, landed_at)
                row["quarantine_path"] = qpath.relative_to(landing_dir).as_posix()
            # A file-level marker (line_number None, e.g. an empty file) is not a record.
            rows_quarantined = sum(r.line_number is not None for r in parsed.rejected)
            if parsed.rows_in != parsed.rows.height + rows_quarantined:  # conservation, never silently lose a row
                raise RuntimeError(f"{relative}: {parsed.rows_in} rows in but {parsed.rows.height} landed + "
                                   f"{rows_quarantined} quarantined")
            row.update(
                status="landed" if parsed.rows.height else "quarantined",
                reason_code=parsed.file_reason, version=version, supersedes_sha256=supersedes,
                rows_in=parsed.rows_in, rows_landed=parsed.rows.height, rows_quarantined=rows_quarantined,
            )
            seen[sha] = path.name
            latest[key] = (version, sha)
        row["duration_s"] = time.monotonic() - started
        run_rows.append(row)
        manifest.write_run_manifest(landing_dir, STAGE, run_id, run_rows)
        report.files.append(_outcome_from_row(row))
        log.info("%s %s v%s: %s (%s in, %s landed, %s quarantined)", dialect.source, relative,
                 row["version"], row["status"], row["rows_in"], row["rows_landed"], row["rows_quarantined"])

    report.files_seen = len(report.files)
    report.files_landed = sum(f.status == "landed" for f in report.files)
    report.files_skipped = sum(f.status == "skipped_duplicate" for f in report.files)
    report.files_quarantined = sum(f.status == "quarantined" for f in report.files)
    report.rows_in = sum(f.rows_in for f in report.files)
    report.rows_landed = sum(f.rows_landed for f in report.files)
    report.rows_quarantined = sum(f.rows_quarantined for f in report.files)
    report.business_dates = sorted({f.business_date for f in report.files
                                    if f.status == "landed" and f.business_date})
    return report


def _outcome_from_row(row: dict) -> FileOutcome:
    business_date = row["business_date"]
    if row["table_name"] == "billing" and business_date is not None:
        business_date = business_date.strftime("%Y-%m")
    elif business_date is not None:
        business_date = business_date.isoformat()
    return FileOutcome(
        source=row["source"], table=row["table_name"], file_name=row["file_name"], file_path=row["file_path"],
        sha256=row["sha256"], status=row["status"], version=row["version"], business_date=business_date,
        rows_in=row["rows_in"], rows_landed=row["rows_landed"], rows_quarantined=row["rows_quarantined"],
        reason_code=row["reason_code"],
    )
