"""``land_broker_files``: the broker drop folder to typed Parquet in ``landing/``, exactly once, losing nothing.

For each file a dialect recognises (oldest delivery first): fingerprint (SHA-256); skip a hash already
landed; otherwise parse and validate, write the good rows to
``landing/broker/<table>/<business_date=YYYY-MM-DD|period=YYYY-MM>/<sha256[:16]>.parquet`` and the
rejects to ``landing/quarantine/broker_files/<source>/<sha256[:16]>.parquet`` (both atomically), and only
then append the file's manifest row. See ingest/README.md for every table's columns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from ingest import manifest, quarantine
from ingest.broker_files.csv_files import ParsedFile, parse_csv
from ingest.broker_files.dialects import Dialect, load_dialects_reporting
from ingest.fix.parser import parse_fix
from ingest.quarantine import Rejected
from northstar.errors import ExpectedError
from northstar.settings import settings

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
    rows_skipped: int = 0


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
    rows_skipped: int = 0  # sound FIX messages other than ExecutionReports (by MsgType in the manifest)
    business_dates: list[str] = field(default_factory=list)  # partitions touched (dates or YYYY-MM periods)
    files: list[FileOutcome] = field(default_factory=list)
    unrecognised_files: list[str] = field(default_factory=list)
    dialect_errors: list[str] = field(default_factory=list)  # invalid dialect files (their sources not read)

    def as_dict(self) -> dict:
        """Small enough for XCom: counts, dates touched and per-file outcomes (no data)."""
        return asdict(self)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Delivery:
    path: Path
    relative: str
    dialect: Dialect
    symlink: bool = False


def _discover(drop_dir: Path, dialects: list[Dialect]) -> tuple[list[_Delivery], list[str]]:
    """Files in the drop folder, never following a symbolic link (a link is a delivery of its own, quarantined)."""
    found, unrecognised = [], []
    for folder, subfolders, names in os.walk(drop_dir, followlinks=False):
        base = Path(folder)
        # hidden files and staging folders (e.g. _redeliveries/) are not deliveries yet
        subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "_")))
        linked = [d for d in subfolders if (base / d).is_symlink()]
        for name in sorted(names) + linked:
            path = base / name
            if name.startswith((".", "_")):
                continue
            relative = path.relative_to(drop_dir)
            owner = next((d for d in dialects if _matches(d, relative)), None)
            if owner is None:
                unrecognised.append(relative.as_posix() + ("/ (a link to a folder, not followed)" if name in linked
                                                           else ""))
                continue
            found.append(_Delivery(path, relative.as_posix(), owner, symlink=path.is_symlink()))
    # Oldest delivery first, so a redelivery supersedes what came before it.
    found.sort(key=lambda d: (d.path.lstat().st_mtime_ns, d.relative))
    return found, unrecognised


def _matches(dialect: Dialect, relative: Path) -> bool:
    try:
        return dialect.match(relative) is not None
    except Exception:  # a broken pattern matches nothing rather than stopping the run
        log.exception("dialect %s could not match %s", dialect.source, relative)
        return False


class _FileRejected(Exception):
    """A whole file that cannot be landed: its reason code and detail."""

    def __init__(self, reason_code: str, detail: str):
        super().__init__(detail)
        self.reason_code, self.detail = reason_code, detail


def _whole_file(data: bytes, reason: str, detail: str, has_header: bool) -> ParsedFile:
    """Every record line quarantined with the file's reason (one file-level row if it has none)."""
    lines = [line.rstrip(b"\r") for line in data.split(b"\n")]
    records = [(i + 1, line) for i, line in enumerate(lines) if (i > 0 or not has_header) and line.strip()]
    rejected = [Rejected(n, line, reason, detail) for n, line in records]
    if not rejected:
        return ParsedFile(rows=pl.DataFrame(), rejected=[Rejected(None, data, reason, detail)], rows_in=0,
                          file_reason=reason, file_detail=detail)
    return ParsedFile(rows=pl.DataFrame(), rejected=rejected, rows_in=len(rejected), file_reason=reason,
                      file_detail=detail)


def _parse(data: bytes, dialect: Dialect, match: re.Match) -> ParsedFile:
    if dialect.format == "csv":
        parsed = parse_csv(data, dialect)
        if parsed.rows_in == 0 and parsed.file_reason is None:  # a header and nothing else
            return _whole_file(data, "header_only", "the file has a header but no records", has_header=True)
        return parsed
    if not data.strip():
        return ParsedFile(rows=pl.DataFrame(), rejected=[Rejected(None, data, "empty_file", "the file has no content")],
                          rows_in=0, file_reason="empty_file", file_detail="the file has no content")
    rules = dialect.broker_rules(match.groupdict().get("broker"))
    result = parse_fix(data, extra_required=rules["required_tags"])
    rejected = [Rejected(r.line_number, r.raw, r.reason_code, r.reason_detail) for r in result.rejects]
    rows = result.executions
    if rows.height:
        rows = _apply_broker_rules(rows, rules).with_columns(
            pl.col("security_type").replace_strict(dialect.price_convention, default=None, return_dtype=pl.String)
            .alias("price_convention"),
            pl.col("security_type").replace_strict(dialect.contract_multiplier, default=None, return_dtype=pl.Int64)
            .alias("contract_multiplier"),
        )
    return ParsedFile(rows=rows, rejected=rejected, rows_in=result.lines_in, skipped=result.skipped,
                      log_lines=result.log_lines)


def _apply_broker_rules(rows: pl.DataFrame, rules: dict) -> pl.DataFrame:
    """A broker's defaults and derivations for absent values, each filled value named in ``derived_columns``."""
    filled = []
    for column, value in rules["defaults"].items():
        if column not in rows.columns:
            raise _FileRejected("dialect_error", f"defaults.{column}: no such column in fix_executions")
        flag = pl.col(column).is_null()
        filled.append((column, flag))
        rows = rows.with_columns(pl.when(flag).then(pl.lit(str(value)).cast(rows.schema[column]))
                                 .otherwise(pl.col(column)).alias(column), flag.alias(f"__filled_{column}"))
    if rules["derive"].get("trade_date") == "transact_time":
        flag = pl.col("trade_date").is_null() & pl.col("transact_time").is_not_null()
        firm_date = pl.col("transact_time").dt.convert_time_zone(settings().timezone).dt.date()
        rows = rows.with_columns(pl.when(flag).then(firm_date).otherwise(pl.col("trade_date")).alias("trade_date"),
                                 flag.alias("__filled_trade_date"))
        filled.append(("trade_date", flag))
    names = [pl.when(pl.col(f"__filled_{c}")).then(pl.lit(c)) for c, _ in filled]
    derived = pl.concat_str(names, separator=",", ignore_nulls=True) if names else pl.lit("")
    return rows.with_columns(
        pl.when(derived == "").then(None).otherwise(derived).cast(pl.String).alias("derived_columns")
    ).drop([f"__filled_{c}" for c, _ in filled])


def _wanted(dialect: Dialect, sources: list[str] | None) -> bool:
    return sources is None or dialect.table in sources or dialect.source in sources


class DropFolderUnavailable(ExpectedError, FileNotFoundError):
    """The drop folder is missing, not a folder, or unreadable."""


def land_broker_files(
    drop_dir: Path,
    landing_dir: Path,
    run_id: str | None = None,
    sources: list[str] | None = None,
    dialects: list[Dialect] | None = None,
) -> IngestReport:
    """Land every new file in ``drop_dir`` (optionally only the given tables or sources) into ``landing_dir``.

    No file stops the run: a file that cannot be read, dated or parsed is quarantined whole with its reason
    and the other files land. An invalid dialect file is reported (``dialect_errors``) and its source not read.
    """
    drop_dir, landing_dir = Path(drop_dir), Path(landing_dir)
    run_id = run_id or f"manual__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    errors: list[str] = []
    if dialects is None:
        dialects, errors = load_dialects_reporting()
    dialects = [d for d in dialects if _wanted(d, sources)]
    report = IngestReport(run_id=run_id, dialect_errors=errors)
    for error in errors:
        log.error("invalid dialect, its files are left in the drop folder: %s", error)
    if not drop_dir.is_dir() or not os.access(drop_dir, os.R_OK | os.X_OK):
        # A misconfigured or unmounted drop folder must not look like a quiet day with no files.
        raise DropFolderUnavailable(f"the broker drop folder {drop_dir} "
                                    + ("is not readable" if drop_dir.is_dir() else "does not exist or is not a folder"))
    files, report.unrecognised_files = _discover(drop_dir, dialects)
    for name in report.unrecognised_files:
        log.warning("drop folder file matches no dialect, left in place: %s", name)

    history = manifest.read_manifest(landing_dir, STAGE)
    # Rows this run_id already wrote (an Airflow retry of the same run): kept and counted as this run's.
    run_rows = history.filter(pl.col("run_id") == run_id).to_dicts()
    earlier = history.filter(pl.col("run_id") != run_id)
    # The one definition of a logical file and its latest version, shared with dbt (macro
    # broker_current_rows): the path relative to the drop folder; the highest version is current.
    seen: dict[str, tuple[tuple[str, str], str]] = {}  # sha256 -> (logical file, file_name)
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for row in pl.concat([earlier, pl.DataFrame(run_rows, schema=manifest.SCHEMA)]).sort(
            "started_at", nulls_last=False).iter_rows(named=True):
        if row["status"] in ("landed", "quarantined"):
            key = manifest.logical_file(row)
            seen[row["sha256"]] = (key, row["file_name"])
            if row["version"] > latest.get(key, (0, ""))[0]:
                latest[key] = (row["version"], row["sha256"])
    for row in run_rows:
        report.files.append(_outcome_from_row(row))
    retried = {row["sha256"] for row in run_rows}  # this run's earlier attempt already handled these

    for delivery in files:
        started = time.monotonic()
        dialect, relative = delivery.dialect, delivery.relative
        row = {
            "run_id": run_id, "source": dialect.source, "table_name": dialect.table,
            "file_name": delivery.path.name, "file_path": relative, "sha256": None, "business_date": None,
            "started_at": datetime.now(UTC), "supersedes_sha256": None, "reason_code": None, "reason_detail": None,
            "duplicate_of": None, "data_path": None, "quarantine_path": None, "rows_skipped": 0,
            "skipped_by_msg_type": None, "log_lines": 0,
        }
        data, rejected_whole = _read(delivery, drop_dir)
        sha = sha256_of(data)
        row["sha256"] = sha
        key = manifest.logical_file(row)
        earlier_copy = seen.get(sha)
        if sha in retried:
            continue  # handled by an earlier attempt of this very run: already counted above
        if latest.get(key, (0, None))[1] == sha or (earlier_copy is not None and earlier_copy[0] != key):
            # the current version delivered again, or a copy of another file: nothing new
            row.update(status="skipped_duplicate", version=None, reason_code="duplicate_file",
                       duplicate_of=earlier_copy[1] if earlier_copy else delivery.path.name,
                       rows_in=0, rows_landed=0, rows_quarantined=0)
        else:
            # new content, or an earlier version delivered again after a correction: the next version
            version, supersedes = latest.get(key, (0, None))
            version += 1
            parsed, partition_date = _parse_delivery(data, delivery, drop_dir, rejected_whole)
            row["business_date"] = partition_date
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
                    landing_dir, STAGE, dialect.source, delivery.path.name, sha, version, parsed.rejected, run_id,
                    landed_at)
                row["quarantine_path"] = qpath.relative_to(landing_dir).as_posix()
            # A file-level marker (line_number None, e.g. an empty file) is not a record.
            rows_quarantined = sum(r.line_number is not None for r in parsed.rejected)
            rows_skipped = sum(parsed.skipped.values())
            if parsed.rows_in != parsed.rows.height + rows_quarantined + rows_skipped:  # never silently lose a row
                raise RuntimeError(f"{relative}: {parsed.rows_in} rows in but {parsed.rows.height} landed + "
                                   f"{rows_quarantined} quarantined + {rows_skipped} skipped")
            row.update(
                status="landed" if parsed.rows.height else "quarantined",
                reason_code=parsed.file_reason, reason_detail=parsed.file_detail, version=version,
                supersedes_sha256=supersedes, rows_in=parsed.rows_in, rows_landed=parsed.rows.height,
                rows_quarantined=rows_quarantined, rows_skipped=rows_skipped,
                skipped_by_msg_type=json.dumps(dict(sorted(parsed.skipped.items()))) if parsed.skipped else None,
                log_lines=parsed.log_lines,
            )
            seen[sha] = (key, delivery.path.name)
            latest[key] = (version, sha)
        row["duration_s"] = time.monotonic() - started
        run_rows.append(row)
        manifest.write_run_manifest(landing_dir, STAGE, run_id, run_rows)
        report.files.append(_outcome_from_row(row))
        log.info("%s %s v%s: %s (%s in, %s landed, %s quarantined, %s skipped)%s", dialect.source, relative,
                 row["version"], row["status"], row["rows_in"], row["rows_landed"], row["rows_quarantined"],
                 row["rows_skipped"], f" {row['reason_code']}: {row['reason_detail']}" if row["reason_detail"] else "")

    report.files_seen = len(report.files)
    report.files_landed = sum(f.status == "landed" for f in report.files)
    report.files_skipped = sum(f.status == "skipped_duplicate" for f in report.files)
    report.files_quarantined = sum(f.status == "quarantined" for f in report.files)
    report.rows_in = sum(f.rows_in for f in report.files)
    report.rows_landed = sum(f.rows_landed for f in report.files)
    report.rows_quarantined = sum(f.rows_quarantined for f in report.files)
    report.rows_skipped = sum(f.rows_skipped for f in report.files)
    report.business_dates = sorted({f.business_date for f in report.files
                                    if f.status == "landed" and f.business_date})
    return report


def _read(delivery: _Delivery, drop_dir: Path) -> tuple[bytes, _FileRejected | None]:
    """The delivered bytes, or (for a link or an unreadable file) what identifies it and why it is rejected."""
    if delivery.symlink:
        target = os.readlink(delivery.path)
        return (f"symlink {delivery.relative} -> {target}".encode(),
                _FileRejected("symlink", f"a symbolic link (to {target}) is not a delivery: not followed"))
    try:
        return delivery.path.read_bytes(), None
    except OSError as exc:
        stat = delivery.path.lstat()
        identity = f"unreadable {delivery.relative} {stat.st_size} {stat.st_mtime_ns}".encode()
        return identity, _FileRejected("unreadable_file", f"could not read the file: {exc.strerror or exc}")


def _parse_delivery(data: bytes, delivery: _Delivery, drop_dir: Path,
                    rejected: _FileRejected | None) -> tuple[ParsedFile, date | None]:
    """Parse a file, or quarantine it whole with its reason: nothing about one file may stop the run."""
    dialect = delivery.dialect
    partition_date = None
    try:
        if rejected is not None:
            raise rejected
        try:
            match = dialect.match(Path(delivery.relative))
            partition_date = dialect.partition_date(match)
        except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            raise _FileRejected("bad_file_name", f"no valid {dialect.partition} in the file name for pattern "
                                                 f"{dialect.file_pattern.pattern!r}: {exc}") from None
        return _parse(data, dialect, match), partition_date
    except _FileRejected as exc:
        has_header = dialect.format == "csv" and exc.reason_code not in ("symlink", "unreadable_file")
        content = b"" if exc.reason_code in ("symlink", "unreadable_file") else data
        parsed = _whole_file(content, exc.reason_code, exc.detail, has_header)
        if not content:
            parsed.rejected = [Rejected(None, data, exc.reason_code, exc.detail)]
        return parsed, partition_date
    except Exception as exc:  # a parser fault on one file: quarantined whole, the run goes on
        log.exception("could not parse %s", delivery.relative)
        detail = f"the file could not be parsed ({type(exc).__name__}: {exc})".splitlines()[0][:500]
        return _whole_file(data, "unparseable_file", detail, has_header=dialect.format == "csv"), partition_date


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
        reason_code=row["reason_code"], rows_skipped=row.get("rows_skipped") or 0,
    )
