"""Extract Salesforce objects to ``landing/salesforce/`` as Parquet, incrementally by SystemModstamp.

One run, per object: describe → field list (schema drift against the last run) → choose the API
(REST ``queryAll`` for small objects, Bulk API 2.0 ``queryAll`` for large ones) → stream pages into
one Parquet file (temp + rename) → after every object, the run's manifest → only then the
watermarks of the objects that succeeded. See ``ingest/salesforce/README.md`` for the layout.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation

from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnection, login
from ingest.salesforce.schema import (
    IS_DELETED,
    TIMESTAMP,
    SalesforceField,
    add_run_columns,
    arrow_schema,
    csv_to_table,
    fields_from_describe,
    records_to_table,
    schema_drift,
)
from ingest.salesforce.watermarks import (
    KEY_SCHEMA,
    ObjectState,
    WatermarkStore,
    format_iso,
    format_soql_datetime,
    key_strings,
    merge_boundary,
    window_start,
    write_parquet_atomic,
)

log = logging.getLogger(__name__)

DEFAULT_OBJECTS: tuple[str, ...] = (
    "User",
    "Account",
    "Contact",
    "Case",
    "Task",
    "Event",
    "Opportunity",
    "Brokerage_Account__c",
)
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FILE_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("object", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),  # full | incremental
        pa.field("api", pa.string()),  # rest | bulk2 (null when the object failed before choosing)
        pa.field("watermark_before", TIMESTAMP),
        pa.field("watermark_after", TIMESTAMP),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("deleted_rows", pa.int64(), nullable=False),
        pa.field("fields_added", pa.list_(pa.string())),
        pa.field("fields_removed", pa.list_(pa.string())),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # ok | failed
        pa.field("error", pa.string()),
        pa.field("path", pa.string()),  # the landed file, relative to the landing folder
    ]
)


@dataclass(frozen=True)
class ExtractConfig:
    """Tunables of one extraction (defaults suit a real org; tests shrink the waits)."""

    objects: tuple[str, ...] = DEFAULT_OBJECTS
    overlap: timedelta = timedelta(minutes=5)
    bulk_threshold: int = 50_000  # rows in the read window above which Bulk API 2.0 is used
    bulk_objects: frozenset[str] = frozenset()  # always Bulk API 2.0, no COUNT() first
    bulk_page_size: int = 50_000  # maxRecords per Bulk result page
    bulk_poll_wait: float = 2.0  # seconds before the first job-status poll
    rest_batch_rows: int = 20_000  # REST records buffered per Arrow batch written
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_version: str | None = None


@dataclass
class ObjectResult:
    """One manifest row: what happened to one object in one run."""

    run_id: str
    object: str
    mode: str
    api: str | None
    watermark_before: datetime | None
    watermark_after: datetime | None
    rows: int
    deleted_rows: int
    fields_added: list[str]
    fields_removed: list[str]
    started_at: datetime
    duration_s: float
    status: str
    error: str | None = None
    path: str | None = None

    def summary(self) -> dict:
        return {
            "rows": self.rows,
            "deleted": self.deleted_rows,
            "mode": self.mode,
            "api": self.api,
            "watermark": format_iso(self.watermark_after),
            "status": self.status,
            **({"error": self.error} if self.error else {}),
            **({"fields_added": self.fields_added} if self.fields_added else {}),
            **({"fields_removed": self.fields_removed} if self.fields_removed else {}),
        }


@dataclass
class ExtractReport:
    """The run's summary (small enough for XCom: counts and paths, never data)."""

    run_id: str
    manifest_path: str | None
    objects: dict[str, ObjectResult]
    retries: int = 0  # transient faults retried (limits, 5xx, connection errors)
    relogins: int = 0  # logins after an expired session (beyond simple-salesforce's own REST refresh)

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.objects.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.objects.items() if r.status != "ok"]

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "manifest": self.manifest_path,
            "ok": self.ok,
            "retries": self.retries,
            "relogins": self.relogins,
            "objects": {name: r.summary() for name, r in self.objects.items()},
        }


class SalesforceExtractFailed(RuntimeError):
    """Some objects failed; the others landed and advanced their watermarks."""

    def __init__(self, report: ExtractReport):
        self.report = report
        details = "; ".join(f"{n}: {report.objects[n].error}" for n in report.failed)
        super().__init__(f"Salesforce extraction {report.run_id}: {len(report.failed)} object(s) failed: {details}")


# --- SOQL ----------------------------------------------------------------------------------------


def check_object_name(name: str) -> str:
    if not _API_NAME.match(name):
        raise ValueError(f"not a Salesforce object API name: {name!r}")
    return name


def build_soql(name: str, fields: Sequence[SalesforceField], since: datetime | None) -> str:
    """The extraction query: every field; ``SystemModstamp > since`` when incremental.

    No ORDER BY: the watermark is the maximum stamp seen, so order does not matter, and sorting
    slows Bulk queries on large objects.
    """
    columns = ", ".join(check_object_name(f.name) for f in fields)
    # Identifiers are validated API names and the literal is a formatted datetime: nothing from
    # a user reaches the query text.
    soql = f"SELECT {columns} FROM {check_object_name(name)}"  # noqa: S608
    if since is not None:
        soql += f" WHERE SystemModstamp > {format_soql_datetime(since)}"
    return soql


def build_count_soql(name: str, since: datetime | None) -> str:
    soql = f"SELECT COUNT() FROM {check_object_name(name)}"  # noqa: S608 - validated API name
    if since is not None:
        soql += f" WHERE SystemModstamp > {format_soql_datetime(since)}"
    return soql


# --- landing files ---------------------------------------------------------------------------


def landing_path(landing_dir: Path, name: str, extracted: date, run_id: str) -> Path:
    safe = _FILE_SAFE.sub("_", run_id).strip("_") or "run"
    return (
        Path(landing_dir) / "salesforce" / name / f"extracted_date={extracted.isoformat()}" / f"{safe}.parquet"
    )


def manifest_path(landing_dir: Path, run_id: str) -> Path:
    safe = _FILE_SAFE.sub("_", run_id).strip("_") or "run"
    return Path(landing_dir) / "_manifest" / "salesforce" / f"{safe}.parquet"


def unused_path(path: Path) -> Path:
    """``path``, or ``<stem>__<n>.parquet`` when a retry of the same run id already wrote it.

    A retried Airflow task keeps its run id but extracts from the watermark the first attempt may
    already have advanced: overwriting the first attempt's file would lose its rows.
    """
    candidate, attempt = path, 1
    while candidate.exists():
        attempt += 1
        candidate = path.with_name(f"{path.stem}__{attempt}{path.suffix}")
    return candidate


class LandingFile:
    """A Parquet file written in batches to a temp name and renamed into place on ``commit``."""

    def __init__(self, final: Path, schema: pa.Schema):
        self.final = final
        self.schema = schema
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - best effort; the temp file is removed below either way
            log.debug("closing an aborted landing file failed", exc_info=True)
        self.tmp.unlink(missing_ok=True)


# --- reading pages -------------------------------------------------------------------------------


def _rest_pages(
    conn: SalesforceConnection, name: str, soql: str, fields: Sequence[SalesforceField], batch_rows: int
) -> Iterator[pa.Table]:
    """REST ``queryAll`` (deleted rows included), page by page.

    This is ``sf.query_all_iter(soql, include_deleted=True)`` unrolled, so that a retried fault
    re-fetches only the failed page (its ``nextRecordsUrl``), not the whole result.
    """
    result = conn.call(lambda sf: sf.query(soql, include_deleted=True), f"{name} queryAll")
    buffer: list[dict] = []
    while True:
        buffer.extend(result["records"])
        if len(buffer) >= batch_rows:
            yield records_to_table(buffer, fields)
            buffer = []
        if result.get("done", True):
            break
        next_url = result["nextRecordsUrl"]
        result = conn.call(
            lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True, include_deleted=True),
            f"{name} queryAll page",
        )
    if buffer:
        yield records_to_table(buffer, fields)


def _bulk_pages(
    conn: SalesforceConnection, name: str, soql: str, fields: Sequence[SalesforceField], cfg: ExtractConfig
) -> Iterator[pa.Table]:
    """Bulk API 2.0 ``queryAll`` job, result page by result page (each page a CSV with a header).

    simple-salesforce's ``sf.bulk2.<Object>.query_all(soql, max_records=...)`` runs the same three
    steps (create job, wait, fetch pages by locator) inside one generator; calling the steps on
    its job client instead lets a retried fault or a re-login resume at the failed page of the
    same job. Jobs belong to the org, not the session, so they survive a re-login.
    """

    def job_client(sf: Salesforce):
        return getattr(sf.bulk2, name)._client

    job = conn.call(
        lambda sf: job_client(sf).create_job(Operation.query_all, soql), f"{name} bulk2 create job"
    )
    job_id = job["id"]
    log.info("salesforce: %s bulk2 queryAll job %s", name, job_id)
    conn.call(lambda sf: job_client(sf).wait_for_job(job_id, True, cfg.bulk_poll_wait), f"{name} bulk2 wait")
    locator = ""
    while True:
        page = conn.call(
            lambda sf, loc=locator: job_client(sf).get_query_results(job_id, loc, cfg.bulk_page_size),
            f"{name} bulk2 results",
        )
        yield csv_to_table(page["records"], fields)
        locator = page["locator"]
        if not locator:
            break


def _choose_api(
    conn: SalesforceConnection, name: str, since: datetime | None, cfg: ExtractConfig
) -> tuple[str, int | None]:
    if name in cfg.bulk_objects:
        return "bulk2", None
    if cfg.bulk_threshold <= 0:
        return "rest", None
    soql = build_count_soql(name, since)
    count = conn.call(lambda sf: sf.query(soql, include_deleted=True)["totalSize"], f"{name} count")
    return ("bulk2" if count > cfg.bulk_threshold else "rest"), count


# --- one object ----------------------------------------------------------------------------------


@dataclass
class _Landed:
    """An object's extraction that is on disk but not yet committed to the watermark file."""

    result: ObjectResult
    state: ObjectState | None
    boundary: pa.Table | None


def _extract_object(
    conn: SalesforceConnection,
    name: str,
    watermarks: WatermarkStore,
    landing_dir: Path,
    run_id: str,
    run_started: datetime,
    full_refresh: bool,
    cfg: ExtractConfig,
) -> _Landed:
    started = time.monotonic()
    started_at = datetime.now(UTC)
    previous = watermarks.get(name)
    incremental = not full_refresh and previous.watermark is not None
    result = ObjectResult(
        run_id=run_id,
        object=name,
        mode="incremental" if incremental else "full",
        api=None,
        watermark_before=previous.watermark,
        watermark_after=previous.watermark,
        rows=0,
        deleted_rows=0,
        fields_added=[],
        fields_removed=[],
        started_at=started_at,
        duration_s=0.0,
        status="failed",
    )
    landing: LandingFile | None = None
    try:
        describe = conn.call(lambda sf: getattr(sf, name).describe(), f"{name} describe")
        fields = fields_from_describe(describe)
        names = [f.name for f in fields]
        result.fields_added, result.fields_removed = schema_drift(previous.fields, names)
        if result.fields_added or result.fields_removed:
            log.warning(
                "salesforce: %s schema drift: added %s, removed %s",
                name, result.fields_added, result.fields_removed,
            )
        since = window_start(previous.watermark, cfg.overlap) if incremental else None
        known = watermarks.boundary_keys(name) if incremental else KEY_SCHEMA.empty_table()
        known_keys = key_strings(known["Id"], known["SystemModstamp"]) if known.num_rows else None
        result.api, _count = _choose_api(conn, name, since, cfg)
        soql = build_soql(name, fields, since)
        pages = (
            _bulk_pages(conn, name, soql, fields, cfg)
            if result.api == "bulk2"
            else _rest_pages(conn, name, soql, fields, cfg.rest_batch_rows)
        )
        path = unused_path(landing_path(landing_dir, name, run_started.date(), run_id))
        landing = LandingFile(path, arrow_schema(fields))
        extracted_ms = int(run_started.timestamp() * 1000)
        max_stamp: datetime | None = None
        landed_keys: list[pa.Table] = []
        for page in pages:
            if page.num_rows == 0:
                continue
            if known_keys is not None:
                seen = pc.is_in(key_strings(page["Id"], page["SystemModstamp"]), value_set=known_keys)
                page = page.filter(pc.invert(seen))
                if page.num_rows == 0:
                    continue
            page = add_run_columns(page, run_id, extracted_ms)
            landing.write(page)
            result.rows += page.num_rows
            result.deleted_rows += pc.sum(page[IS_DELETED].cast(pa.int64())).as_py() or 0
            page_max = pc.max(page["SystemModstamp"]).as_py()
            if page_max is not None and (max_stamp is None or page_max > max_stamp):
                max_stamp = page_max
            # Keep only keys that can still fall inside the next window (bounded memory).
            threshold = window_start(max_stamp, cfg.overlap) if max_stamp else None
            keys = page.select(["Id", "SystemModstamp"])
            if threshold is not None:
                keys = keys.filter(pc.greater(keys["SystemModstamp"], pa.scalar(threshold, TIMESTAMP)))
            landed_keys.append(keys.cast(KEY_SCHEMA))
        landing.commit()
        landing = None
        result.path = str(path.relative_to(landing_dir))
        watermark = max(filter(None, [previous.watermark if incremental else None, max_stamp]), default=None)
        result.watermark_after = watermark
        lower = window_start(watermark, cfg.overlap) if watermark else None
        boundary = merge_boundary(
            known if incremental else KEY_SCHEMA.empty_table(),
            pa.concat_tables(landed_keys) if landed_keys else KEY_SCHEMA.empty_table(),
            lower,
        )
        result.status = "ok"
        state = ObjectState(watermark=watermark, fields=names, last_run_id=run_id)
        return _Landed(result, state, boundary)
    except Exception as exc:  # noqa: BLE001 - one object's failure must not stop the others
        if landing is not None:
            landing.abort()
        result.error = f"{type(exc).__name__}: {_short(exc)}"
        log.error("salesforce: %s failed: %s", name, result.error)
        return _Landed(result, None, None)
    finally:
        result.duration_s = round(time.monotonic() - started, 3)


def _short(exc: Exception, limit: int = 500) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _write_manifest(landing_dir: Path, run_id: str, results: Sequence[ObjectResult]) -> Path:
    rows = [asdict(r) for r in results]
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    path = unused_path(manifest_path(landing_dir, run_id))
    write_parquet_atomic(table, path)
    return path


# --- the run -------------------------------------------------------------------------------------


def default_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"sf_{now.strftime('%Y%m%dT%H%M%SZ')}_{uuid.uuid4().hex[:6]}"


def extract_salesforce(
    landing_dir: Path,
    objects: list[str] | None = None,
    run_id: str | None = None,
    full_refresh: bool = False,
    *,
    config: ExtractConfig | None = None,
    connect: Callable[[], Salesforce] | None = None,
    raise_on_failure: bool = False,
) -> ExtractReport:
    """Extract the configured objects into ``landing_dir/salesforce/`` and return the run summary.

    ``connect`` builds a logged-in client (default: SOAP login with
    ``northstar.settings.salesforce_endpoint()``). A failed object is reported with its error
    and keeps its old watermark; with ``raise_on_failure`` the run then raises
    ``SalesforceExtractFailed`` after the manifest and the other objects' watermarks are written.
    """
    cfg = config or ExtractConfig()
    landing_dir = Path(landing_dir)
    names = [check_object_name(n) for n in (objects or list(cfg.objects))]
    run_started = datetime.now(UTC)
    run_id = run_id or default_run_id(run_started)
    if connect is None:
        from northstar.settings import salesforce_endpoint

        endpoint = salesforce_endpoint()

        def connect() -> Salesforce:
            return login(endpoint, cfg.api_version)

    conn = SalesforceConnection(connect, cfg.retry)
    watermarks = WatermarkStore.load(landing_dir)
    landed: dict[str, _Landed] = {}
    for name in names:
        landed[name] = _extract_object(conn, name, watermarks, landing_dir, run_id, run_started, full_refresh, cfg)
        r = landed[name].result
        log.info(
            "salesforce: %s %s via %s: %d rows (%d deleted) in %.1fs [%s]",
            name, r.mode, r.api, r.rows, r.deleted_rows, r.duration_s, r.status,
        )

    # Boundary keys first (new files, not referenced yet), then the manifest, then the watermarks:
    # a crash anywhere before the last step leaves every watermark where it was.
    updates: dict[str, ObjectState] = {}
    for name, item in landed.items():
        if item.state is None:
            continue
        if item.boundary is not None and item.boundary.num_rows:
            token = f"{_FILE_SAFE.sub('_', run_id)}_{uuid.uuid4().hex[:8]}"  # unique even on a retried run id
            item.state.boundary_file = watermarks.write_boundary(name, token, item.boundary)
        updates[name] = item.state
    manifest = _write_manifest(landing_dir, run_id, [item.result for item in landed.values()])
    watermarks.commit(updates)
    report = ExtractReport(
        run_id=run_id,
        manifest_path=str(manifest),
        objects={name: item.result for name, item in landed.items()},
        retries=conn.retries,
        relogins=conn.relogins,
    )
    if raise_on_failure and not report.ok:
        raise SalesforceExtractFailed(report)
    return report
