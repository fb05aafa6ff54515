"""Bulk API 2.0 for the Salesforce emulator: ingest jobs (CSV upsert/insert/update/delete) and query
jobs (CSV pages with Sforce-Locator). Jobs live in memory; their writes go to the org store."""

from __future__ import annotations

import base64
import csv
import io
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox.salesforce.soql import SoqlError, materialize, path_value
from sandbox.salesforce.store import UnknownObject, format_datetime, new_id, storage_converter
from sandbox.salesforce.validation import RecordError, normalize_id
from sandbox.server import Request, Response

if TYPE_CHECKING:
    from sandbox.salesforce.app import SalesforceApp

DELIMITERS = {"COMMA": ",", "SEMICOLON": ";", "TAB": "\t", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
OPERATIONS = {"insert", "update", "upsert", "delete", "hardDelete"}
RESULT_KINDS = {"successfulresults": "success", "failedresults": "failed", "unprocessedrecords": "unprocessed"}


def _error(status: int, code: str, message: str) -> Response:
    return Response.json([{"errorCode": code, "message": message}], status)


def _csv(rows: list[list[str]], line_ending: str, delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator=line_ending, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    text = str(value)
    if len(text) == 28 and text.endswith("+0000") and text[10] == "T":
        return text[:-5] + "Z"
    return text


@dataclass
class IngestJob:
    id: str
    object: str
    operation: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    api_version: str
    created: str
    state: str = "Open"
    final_state: str = "JobComplete"
    polls_left: int = 0
    uploads: list[bytes] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    success: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    error_message: str | None = None
    modstamp: str = ""


@dataclass
class QueryJob:
    id: str
    object: str
    operation: str
    soql: str
    fields: list[str]
    ids: list[str]
    api_version: str
    created: str
    line_ending: str
    delimiter: str
    paths: list = field(default_factory=list)
    state: str = "UploadComplete"
    final_state: str = "JobComplete"
    polls_left: int = 0
    error_message: str | None = None


class BulkJobs:
    def __init__(self, app: SalesforceApp):
        self.app = app
        self.store = app.store
        self.ingest_jobs: dict[str, IngestJob] = {}
        self.query_jobs: dict[str, QueryJob] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.ingest_count = 0
        self.query_count = 0

    def _next_id(self) -> str:
        with self._lock:
            self._seq += 1
            return new_id("750", self._seq)

    def _now_text(self) -> str:
        return format_datetime(self.app.now())

    # --- ingest -------------------------------------------------------------------------------

    def ingest_info(self, job: IngestJob) -> dict:
        info = {
            "id": job.id,
            "operation": job.operation,
            "object": job.object,
            "createdById": self.app.user_id,
            "createdDate": job.created,
            "systemModstamp": job.modstamp or job.created,
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.api_version.lstrip("v")),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/{job.api_version}/jobs/ingest/{job.id}/batches",
            "lineEnding": job.line_ending,
            "columnDelimiter": job.column_delimiter,
            "numberRecordsProcessed": len(job.success) + len(job.failed),
            "numberRecordsFailed": len(job.failed),
            "retries": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }
        if job.external_id_field:
            info["externalIdFieldName"] = job.external_id_field
        if job.error_message:
            info["errorMessage"] = job.error_message
        return info

    def ingest(self, request: Request, v: str, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method == "POST":
                return self.create_ingest(request, v)
            if method == "GET":
                return Response.json({"done": True, "records": [self.ingest_info(j) for j in self.ingest_jobs.values()],
                                      "nextRecordsUrl": None})
            return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
        job = self.ingest_jobs.get(rest[0])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "GET":
                self._advance(job)
                return Response.json(self.ingest_info(job))
            if method == "PATCH":
                return self.set_ingest_state(request, job)
            if method == "DELETE":
                self.ingest_jobs.pop(job.id, None)
                return Response.empty(204)
        elif len(rest) == 2 and rest[1] == "batches" and method == "PUT":
            if job.state != "Open":
                return _error(409, "INVALIDJOBSTATE", f"Job {job.id} is not Open (state {job.state})")
            job.uploads.append(request.body)
            return Response.empty(201)
        elif len(rest) == 2 and rest[1].lower() in RESULT_KINDS and method == "GET":
            return self.ingest_results(job, RESULT_KINDS[rest[1].lower()])
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    def create_ingest(self, request: Request, v: str) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        operation = body.get("operation")
        if operation not in OPERATIONS:
            return _error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        try:
            obj = self.store.resolve_object(body.get("object") or "")
        except UnknownObject:
            return _error(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
        ext = body.get("externalIdFieldName")
        if operation == "upsert":
            ext_name = self.app._external_field(obj, ext or "")
            if ext_name is None:
                return _error(400, "INVALIDJOB", f"InvalidJob : Invalid external ID field: {ext}")
            ext = ext_name
        delimiter = body.get("columnDelimiter", "COMMA")
        if delimiter not in DELIMITERS:
            return _error(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
        job = IngestJob(
            id=self._next_id(), object=obj, operation=operation, external_id_field=ext if operation == "upsert" else None,
            column_delimiter=delimiter, line_ending=body.get("lineEnding", "LF"), api_version=v,
            created=self._now_text(),
        )
        self.ingest_jobs[job.id] = job
        self.ingest_count += 1
        return Response.json(self.ingest_info(job))

    def _advance(self, job) -> None:
        if job.state in {"UploadComplete", "InProgress"}:
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                job.state = job.final_state

    def set_ingest_state(self, request: Request, job: IngestJob) -> Response:
        try:
            state = (request.json() or {}).get("state")
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        if state == "Aborted":
            if job.state in {"Open", "UploadComplete", "InProgress"}:
                if job.state == "Open":
                    job.unprocessed = self._all_rows(job)
                job.state = job.final_state = "Aborted"
            return Response.json(self.ingest_info(job))
        if state != "UploadComplete":
            return _error(400, "INVALIDJOBSTATE", f"Invalid state change: {state}")
        if job.state != "Open":
            return _error(409, "INVALIDJOBSTATE", f"Job {job.id} is not Open (state {job.state})")
        job.state = "UploadComplete"
        job.polls_left = int(self.app.faults.settings.in_progress_polls or 0)
        failure = self.app.faults.take_bulk_job_failure()
        if failure:
            job.final_state, job.error_message = "Failed", failure
            job.unprocessed = self._all_rows(job)
        else:
            self.process(job)
        job.modstamp = self._now_text()
        return Response.json(self.ingest_info(job))

    def _parse_uploads(self, job: IngestJob) -> list[tuple[list[str], list[list[str]]]]:
        parsed = []
        delimiter = DELIMITERS[job.column_delimiter]
        for upload in job.uploads:
            text = upload.decode("utf-8-sig")
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
            rows = [r for r in rows if r]
            if rows:
                parsed.append((rows[0], rows[1:]))
        return parsed

    def _all_rows(self, job: IngestJob) -> list[list[str]]:
        out = []
        for header, rows in self._parse_uploads(job):
            job.header = job.header or header
            out.extend(rows)
        return out

    def process(self, job: IngestJob) -> None:  # noqa: C901 - one pass over the rows, per operation
        specs = self.store.fields(job.object)
        lower = {name.lower(): name for name in specs}
        stamp = self.app.now()
        text = format_datetime(stamp)
        uploads = self._parse_uploads(job)
        inserts, updates, deletes = [], [], []
        fault_field = (self.app.faults.settings.fail_records or {}).get("field")
        pending: dict[str, str] = {}  # ext value -> id created earlier in this job
        for header, rows in uploads:
            job.header = job.header or header
            columns = []
            for column in header:
                name = lower.get(column.strip().lower())
                if name is None:
                    job.final_state = "Failed"
                    job.error_message = f"InvalidBatch : Field name not found : {column}"
                    job.unprocessed.extend(rows)
                    break
                columns.append(name)
            else:
                key_field = fault_field or job.external_id_field or "Id"
                existing = {}
                if job.operation == "upsert":
                    position = columns.index(job.external_id_field) if job.external_id_field in columns else None
                    values = [r[position] for r in rows if position is not None and position < len(r)]
                    existing = self.store.ids_by_values(job.object, job.external_id_field, values)
                live_ids = set()
                if job.operation in {"update", "delete", "hardDelete"} and "Id" in columns:
                    position = columns.index("Id")
                    wanted = [normalize_id(r[position]) for r in rows if position < len(r)]
                    live_ids = {i for ids in self.store.ids_by_values(job.object, "Id", wanted).values() for i in ids}
                # Reference values of the whole upload, looked up once (not per row).
                ref_columns = [(i, name) for i, name in enumerate(columns) if specs[name].type == "reference"]
                live_refs = self.app.rules.live_references(
                    job.object, ({name: r[i] for i, name in ref_columns if i < len(r)} for r in rows))
                for row in rows:
                    row = row + [""] * (len(columns) - len(row))
                    try:
                        values = {}
                        for name, cell in zip(columns, row, strict=False):
                            if cell == "":
                                continue  # an empty cell leaves the field unchanged
                            if cell == "#N/A":
                                values[name] = None
                                continue
                            try:
                                values[name] = storage_converter(specs[name].type)(cell)
                            except (TypeError, ValueError):
                                raise _RowError(
                                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                    f"{name}: value not of required type: {cell}", name,
                                ) from None
                        read_only = [n for n in values if n in {"CreatedDate", "LastModifiedDate",
                                                                "SystemModstamp", "IsDeleted"}]
                        if read_only:
                            raise _RowError("INVALID_FIELD_FOR_INSERT_UPDATE",
                                            f"Unable to create/update fields: {read_only[0]}", read_only[0])
                        values = self.app.rules.normalize(job.object, values)
                        key_value = values.get(key_field) if key_field in specs else None
                        failure = self.app.faults.record_failure(key_field, key_value)
                        if failure:
                            raise _RowError(failure[0], failure[1], "")
                        if job.operation == "insert":
                            values.pop("Id", None)
                            self.app.rules.check(job.object, values, creating=True, live=live_refs)
                            inserts.append((row, values, None))
                        elif job.operation == "upsert":
                            ext = job.external_id_field
                            key = values.get(ext)
                            if key in (None, ""):
                                raise _RowError("MISSING_ARGUMENT", f"{ext} not specified", ext)
                            matches = existing.get(str(key), [])
                            if len(matches) > 1:
                                raise _RowError("DUPLICATE_EXTERNAL_ID",
                                                f"{ext}: more than one record found for external id field: "
                                                f"{matches}", ext)
                            values.pop("Id", None)
                            target = matches[0] if matches else pending.get(str(key))
                            self.app.rules.check(job.object, values, creating=not target, live=live_refs)
                            if target:
                                updates.append((row, {"Id": target, **values}))
                            else:
                                inserts.append((row, values, str(key)))
                                pending[str(key)] = "<pending>"
                        else:
                            record_id = values.get("Id")
                            if not record_id:
                                raise _RowError("MISSING_ARGUMENT", f"Id not specified in an {job.operation} call",
                                                "")
                            if record_id not in live_ids:
                                raise _RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", "")
                            if job.operation == "update":
                                self.app.rules.check(job.object, values, creating=False, live=live_refs)
                                updates.append((row, values))
                            else:
                                deletes.append((row, record_id))
                    except RecordError as exc:
                        field_list = " ".join(exc.fields)
                        job.failed.append([values.get("Id") or "" if job.operation != "insert" else "",
                                           f"{exc.code}:{exc.message}:{field_list + ' ' if field_list else ''}--",
                                           *row])
                    except _RowError as exc:
                        job.failed.append([values.get("Id") or "" if job.operation != "insert" else "",
                                           f"{exc.code}:{exc.message}:{exc.field + ' ' if exc.field else ''}--", *row])
        new_ids = iter(self.store.allocate_ids(job.object, len(inserts))) if inserts else iter(())
        insert_rows = []
        for row, values, key in inserts:
            record_id = next(new_ids)
            if key is not None:
                pending[key] = record_id
            insert_rows.append({**values, "Id": record_id, "CreatedDate": text, "LastModifiedDate": text,
                                "SystemModstamp": text})
            job.success.append([record_id, "true", *row])
        resolved_updates = []
        for row, change in updates:
            if change["Id"] == "<pending>":
                ext_value = str(change.get(job.external_id_field))
                change = {**change, "Id": pending[ext_value]}
            resolved_updates.append(change)
            job.success.append([change["Id"], "false", *row])
        for row, record_id in deletes:
            job.success.append([record_id, "false", *row])
        if insert_rows:
            self.store.insert_records(job.object, insert_rows)
        if resolved_updates:
            self.store.update_records(job.object, resolved_updates, stamp=stamp)
        if deletes:
            self.store.delete_records(job.object, [d[1] for d in deletes], stamp=stamp)
        written = len(insert_rows) + len(resolved_updates) + len(deletes)
        if written:
            self.app.faults.count_write(f"bulk2 ingest {job.operation} {job.object}", written)

    def ingest_results(self, job: IngestJob, kind: str) -> Response:
        ending = "\r\n" if job.line_ending == "CRLF" else "\n"
        header = job.header
        if kind == "success":
            rows = [["sf__Id", "sf__Created", *header], *job.success]
        elif kind == "failed":
            rows = [["sf__Id", "sf__Error", *header], *job.failed]
        else:
            rows = [header, *job.unprocessed] if header else []
        return Response(200, _csv(rows, ending), content_type="text/csv")

    # --- query --------------------------------------------------------------------------------

    def query_info(self, job: QueryJob) -> dict:
        info = {
            "id": job.id,
            "operation": job.operation,
            "object": job.object,
            "createdById": self.app.user_id,
            "createdDate": job.created,
            "systemModstamp": job.created,
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.api_version.lstrip("v")),
            "jobType": "V2Query",
            "lineEnding": job.line_ending,
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": len(job.ids) if job.state == "JobComplete" else 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }
        if job.error_message:
            info["errorMessage"] = job.error_message
        return info

    def query(self, request: Request, v: str, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method == "POST":
                return self.create_query(request, v)
            if method == "GET":
                return Response.json({"done": True, "records": [self.query_info(j) for j in self.query_jobs.values()],
                                      "nextRecordsUrl": None})
            return _error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
        job = self.query_jobs.get(rest[0])
        if job is None:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "GET":
                self._advance(job)
                return Response.json(self.query_info(job))
            if method == "PATCH":
                if (request.json() or {}).get("state") == "Aborted":
                    job.state = job.final_state = "Aborted"
                return Response.json(self.query_info(job))
            if method == "DELETE":
                self.query_jobs.pop(job.id, None)
                return Response.empty(204)
        elif len(rest) == 2 and rest[1] == "results" and method == "GET":
            return self.query_results(request, job)
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    def create_query(self, request: Request, v: str) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        operation = body.get("operation", "query")
        if operation not in {"query", "queryAll"}:
            return _error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        try:
            parsed, result = self.app.run_query(body.get("query") or "", include_deleted=operation == "queryAll")
        except SoqlError as exc:
            return _error(400, exc.code, exc.message)
        if parsed.count_only or parsed.is_aggregate:
            return _error(400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0 query")
        delimiter = DELIMITERS.get(body.get("columnDelimiter", "COMMA"), ",")
        job = QueryJob(
            id=self._next_id(), object=parsed.obj, operation=operation, soql=parsed.soql, fields=parsed.fields,
            paths=parsed.paths,
            ids=result, api_version=v, created=self._now_text(),
            line_ending=body.get("lineEnding", "LF"), delimiter=delimiter,
        )
        job.polls_left = int(self.app.faults.settings.in_progress_polls or 0)
        failure = self.app.faults.take_bulk_job_failure()
        if failure:
            job.final_state, job.error_message = "Failed", failure
        self.query_jobs[job.id] = job
        self.query_count += 1
        return Response.json(self.query_info(job))

    def query_results(self, request: Request, job: QueryJob) -> Response:
        if job.state != "JobComplete":
            return _error(412, "JOB_NOT_COMPLETE", f"Job {job.id} is not complete (state {job.state})")
        try:
            offset = int(base64.b64decode(request.query.get("locator") or "MA==").decode() or 0)
            max_records = int(request.query.get("maxRecords") or 0) or len(job.ids) or 1
        except ValueError:
            return _error(400, "INVALID_LOCATOR", "invalid locator or maxRecords")
        page = job.ids[offset : offset + max_records]
        rows = self.store.select_by_ids(job.object, job.fields, page)
        records = materialize(self.store, job.object, job.paths, rows, job.api_version)
        names = [p.text for p in job.paths]  # columns in SELECT order; 'Account.Name' for a parent field
        ending = "\r\n" if job.line_ending == "CRLF" else "\n"
        body = _csv([names, *([_csv_value(path_value(r, n)) for n in names] for r in records)], ending, job.delimiter)
        next_offset = offset + len(page)
        locator = base64.b64encode(str(next_offset).encode()).decode() if next_offset < len(job.ids) else "null"
        return Response(200, body, content_type="text/csv",
                        headers={"Sforce-NumberOfRecords": str(len(rows)), "Sforce-Locator": locator})


class _RowError(Exception):
    def __init__(self, code: str, message: str, field_name: str):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field_name
