"""The Salesforce emulator: SOAP/OAuth login, REST query/sObjects/Collections, Bulk API 2.0, limits.

Answers what simple-salesforce 1.12.10 sends (see the wire-contracts note, sections 2 and 6). Any
``/services/data/vXX.X/`` version is accepted and echoed back in the URLs the server builds.
Every write stamps ``LastModifiedDate``/``SystemModstamp`` with the server clock and is counted in
the stats; the fault switches of ``sandbox.faults`` apply to every ``/services/data`` call.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

from sandbox.faults import Faults
from sandbox.salesforce.bulk import BulkJobs
from sandbox.salesforce.soql import Aggregate, Query, SoqlError, materialize, parse
from sandbox.salesforce.store import (
    STANDARD_FIELDS,
    SalesforceStore,
    UnknownObject,
    format_datetime,
    new_id,
    output_converter,
    parse_datetime,
    storage_converter,
)
from sandbox.salesforce.validation import RecordError, WriteRules, normalize_id
from sandbox.server import Request, Response, SandboxApp, same_secret

_VERSION = re.compile(r"^v\d+\.\d+$")
DEFAULT_PAGE = 2000
MAX_COLLECTION = 200
READ_ONLY_FIELDS = set(STANDARD_FIELDS)


def sf_error(status: int, code: str, message: str, fields: list | None = None) -> Response:
    body = {"message": message, "errorCode": code}
    if fields is not None:
        body["fields"] = fields
    return Response.json([body], status)


class FieldError(Exception):
    def __init__(self, code: str, message: str, fields: list[str]):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


@dataclass
class Cursor:
    obj: str
    fields: list[str]
    ids: list[str]
    kind: str  # "query" or "queryAll"
    paths: list = field(default_factory=list)  # the SELECT's field paths (relationships resolved per page)
    created: float = field(default_factory=time.monotonic)


class SalesforceApp(SandboxApp):
    name = "salesforce"
    max_body_bytes = 150 * 1024 * 1024  # Bulk API 2.0's limit for one upload

    def __init__(self, db_path: Path, credentials: dict, faults: Faults | None = None):
        super().__init__(faults or Faults(daily_limit=15000))
        self.store = SalesforceStore(db_path)
        self.credentials = credentials
        self.org_id = new_id("00D", 7)
        self.user_id = new_id("005", 1)
        self._sessions: dict[str, str] = {}
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._locator_seq = 0
        self.bulk = BulkJobs(self)
        self.rules = WriteRules(self.store)

    def admin_credentials(self) -> tuple[str, str]:
        return self.credentials["username"], self.credentials["password"]

    def error(self, status: int, code: str, message: str) -> Response:
        return sf_error(status, code, message)

    def unauthenticated(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox/"):
            return super().unauthenticated(request)
        self.faults.count_request(f"{request.method} unauthenticated")
        return self._with_usage(sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid"))

    def _with_usage(self, response: Response) -> Response:
        used, maximum = self.faults.usage()
        response.headers.setdefault("Sforce-Limit-Info", f"api-usage={used}/{maximum}")
        return response

    def authorized_before_body(self, request: Request) -> bool:
        segs = request.segments
        if segs[:2] == ["services", "data"] and len(segs) > 2:  # the REST and Bulk API: a session first
            token = self._bearer(request)
            return token is not None and token in self._sessions
        return super().authorized_before_body(request)

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # --- entry --------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        return self._with_usage(self._dispatch(request))

    def _dispatch(self, request: Request) -> Response:
        segs = request.segments
        if len(segs) >= 3 and segs[:2] == ["services", "Soap"] and request.method == "POST":
            self.faults.count_request("POST soap-login")
            return self.soap_login(request)
        if segs[:3] == ["services", "oauth2", "token"] and request.method == "POST":
            self.faults.count_request("POST oauth2-token")
            return self.oauth_token(request)
        if segs[:2] != ["services", "data"]:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(segs) == 2:
            return Response.json(
                [{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}]
            )
        version = segs[2]
        if not _VERSION.match(version):
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        token = self._bearer(request)
        if token is None or token not in self._sessions:
            self.faults.count_request(f"{request.method} unauthenticated")
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        fault = self.faults.before_api_call()
        if fault == "limit":
            return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if fault == "unavailable":
            response = sf_error(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable (sandbox fault)")
            response.headers["Retry-After"] = "1"
            return response
        if fault == "expired":
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return self.route(request, version, segs[3:])

    @staticmethod
    def _bearer(request: Request) -> str | None:
        value = request.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() in {"bearer", "oauth"} and token.strip():
            return token.strip()
        return None

    def route(self, request: Request, v: str, rest: list[str]) -> Response:  # noqa: C901 - a route table
        method = request.method
        head = rest[0] if rest else ""
        label = f"{method} {head or 'root'}"
        if head == "jobs" and len(rest) >= 2:
            label = f"{method} jobs/{rest[1]}" + ("/" + rest[3] if len(rest) > 3 else "")
        elif head == "sobjects" and len(rest) >= 2:
            label = f"{method} sobjects/{rest[1]}"
        elif head == "composite":
            label = f"{method} " + "/".join(rest[:3])
        self.faults.count_request(label)
        try:
            if not rest:
                return Response.json(self.resources(v))
            if head == "limits" and method == "GET":
                return Response.json(self.limits())
            if head in {"query", "queryAll"} and method == "GET":
                if len(rest) == 1:
                    return self.query(request, v, head)
                return self.query_more(v, rest[1])
            if head == "sobjects":
                return self.sobjects(request, v, rest[1:])
            if head == "composite" and len(rest) == 4 and rest[1] == "sobjects" and method == "PATCH":
                return self.collections_upsert(request, rest[2], rest[3])
            if head == "jobs" and len(rest) >= 2 and rest[1] == "ingest":
                return self.bulk.ingest(request, v, rest[2:])
            if head == "jobs" and len(rest) >= 2 and rest[1] == "query":
                return self.bulk.query(request, v, rest[2:])
        except UnknownObject as exc:
            return sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {exc.args[0]}")
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    # --- login --------------------------------------------------------------------------------

    def _new_session(self, username: str) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = username
        return token

    def _password_ok(self, username, password, allow_without_token: bool = False) -> bool:
        creds = self.credentials
        expected = creds["password"] + creds.get("security_token", "")
        if not isinstance(username, str) or username != creds["username"]:
            return False
        if same_secret(password, expected):
            return True
        return allow_without_token and same_secret(password, creds["password"])

    def soap_login(self, request: Request) -> Response:
        text = request.body.decode("utf-8", "replace")

        def element(tag: str) -> str | None:
            match = re.search(rf"<(?:[\w-]+:)?{tag}>(.*?)</(?:[\w-]+:)?{tag}>", text, re.S)
            return html.unescape(match.group(1)) if match else None

        username, password = element("username"), element("password")
        version = request.segments[3] if len(request.segments) > 3 else "59.0"
        if username is None or password is None or not self._password_ok(username, password):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
                "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, "
                "password, security token; or user locked out.</faultstring><detail>"
                '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
                "<sf:exceptionMessage>Invalid username, password, security token; or user locked out."
                "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
                "</soapenv:Envelope>"
            )
            return Response(500, fault.encode(), content_type="text/xml;charset=UTF-8")
        token = self._new_session(username)
        base = request.base_url
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{base}/services/Soap/m/{version}/{self.org_id}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/{version}/{self.org_id}</serverUrl>"
            f"<sessionId>{html.escape(token)}</sessionId><userId>{self.user_id}</userId>"
            f"<userInfo><organizationId>{self.org_id}</organizationId>"
            f"<organizationName>Northstar Sandbox</organizationName><userId>{self.user_id}</userId>"
            f"<userName>{html.escape(username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), content_type="text/xml;charset=UTF-8")

    def oauth_token(self, request: Request) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        creds = self.credentials
        basic = request.basic_auth()
        client_id = form.get("client_id") or (basic[0] if basic else None)
        client_secret = form.get("client_secret") or (basic[1] if basic else None)
        client_ok = client_id == creds.get("client_id") and same_secret(client_secret, creds.get("client_secret"))
        if grant == "password":
            if client_id is not None and not client_ok:
                return Response.json({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
            if not self._password_ok(form.get("username", ""), form.get("password", ""), allow_without_token=True):
                return Response.json({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
            username = form["username"]
        elif grant == "client_credentials":
            if not client_ok:
                return Response.json({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
            username = creds["username"]
        else:
            return Response.json(
                {"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400
            )
        token = self._new_session(username)
        return Response.json(
            {
                "access_token": token,
                "instance_url": request.base_url,
                "id": f"{request.base_url}/id/{self.org_id}/{self.user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )

    # --- informational ------------------------------------------------------------------------

    @staticmethod
    def resources(v: str) -> dict:
        base = f"/services/data/{v}"
        return {
            name: f"{base}/{name}"
            for name in ("sobjects", "query", "queryAll", "limits", "composite", "jobs/ingest", "jobs/query")
        }

    def limits(self) -> dict:
        used, maximum = self.faults.usage()
        return {
            "DailyApiRequests": {"Max": maximum, "Remaining": max(0, maximum - used)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - self.bulk.query_count},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000 - self.bulk.ingest_count},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        }

    # --- query --------------------------------------------------------------------------------

    def run_query(self, soql: str, include_deleted: bool) -> tuple[Query, list[str] | int]:
        query = parse(soql, self.store)
        if query.count_only:
            n = self.store.count_where(query.obj, query.where_sql, query.params, include_deleted)
            if query.offset:
                n = max(0, n - query.offset)
            if query.limit is not None:
                n = min(n, query.limit)
            return query, n
        if query.is_aggregate:
            return query, 0  # answered whole by aggregate_records
        ids = self.store.select_ids(
            query.obj, query.where_sql, query.params, query.order_sql, query.limit, query.offset, include_deleted
        )
        return query, ids

    def aggregate_records(self, query: Query, include_deleted: bool) -> list[dict]:
        """AggregateResult records: grouped fields by name, aggregates by alias or expr0, expr1, ..."""
        rows = self.store.aggregate(
            query.obj, [sql for _, sql, _ in query.aggregate_columns], query.where_sql, query.params,
            query.group_sql, query.order_sql, query.limit, query.offset, include_deleted)
        converters = []
        for _, _, item in query.aggregate_columns:
            if isinstance(item, Aggregate):
                if item.function in {"COUNT", "COUNT_DISTINCT"}:
                    converters.append(lambda value: int(value or 0))
                elif item.function in {"SUM", "AVG"}:
                    converters.append(lambda value: None if value is None else float(value))
                else:
                    converters.append(output_converter(item.path.spec.type))
            else:
                converters.append(output_converter(item.spec.type))
        names = [name for name, _, _ in query.aggregate_columns]
        return [{"attributes": {"type": "AggregateResult"},
                 **{n: conv(value) for n, conv, value in zip(names, converters, row, strict=True)}} for row in rows]

    def query(self, request: Request, v: str, kind: str) -> Response:
        soql = request.query.get("q")
        if soql is None:
            return sf_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query, result = self.run_query(soql, include_deleted=kind == "queryAll")
        except SoqlError as exc:
            return sf_error(400, exc.code, exc.message)
        if query.count_only:
            return Response.json({"totalSize": result, "done": True, "records": []})
        if query.is_aggregate:
            records = self.aggregate_records(query, include_deleted=kind == "queryAll")
            return Response.json({"totalSize": len(records), "done": True, "records": records})
        cursor = Cursor(query.obj, query.fields, result, kind, query.paths)
        return self._page(v, cursor, None, 0, self._batch_size(request))

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.header("sforce-query-options") or ""
        match = re.search(r"batchSize\s*=\s*(\d+)", options, re.I)
        if not match:
            return DEFAULT_PAGE
        return max(200, min(DEFAULT_PAGE, int(match.group(1))))

    def _page(self, v: str, cursor: Cursor, locator: str | None, offset: int, size: int) -> Response:
        page_ids = cursor.ids[offset : offset + size]
        rows = self.store.select_by_ids(cursor.obj, cursor.fields, page_ids)
        records = materialize(self.store, cursor.obj, cursor.paths, rows, v)
        next_offset = offset + len(page_ids)
        body = {"totalSize": len(cursor.ids), "done": next_offset >= len(cursor.ids), "records": records}
        if not body["done"]:
            if locator is None:
                with self._lock:
                    self._locator_seq += 1
                    locator = new_id("01g", self._locator_seq)
                    self._cursors[locator] = cursor
                    cursor.page_size = size  # type: ignore[attr-defined]
                    while len(self._cursors) > 200:
                        self._cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/{v}/{cursor.kind}/{locator}-{next_offset}"
        elif locator is not None:
            with self._lock:
                self._cursors.pop(locator, None)
        return Response.json(body)

    def query_more(self, v: str, token: str) -> Response:
        locator, _, offset_text = token.rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit():
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(v, cursor, locator, int(offset_text), getattr(cursor, "page_size", DEFAULT_PAGE))

    @staticmethod
    def record_json(v: str, obj: str, row: dict, fields: list[str]) -> dict:
        record = {"attributes": {"type": obj, "url": f"/services/data/{v}/sobjects/{obj}/{row['Id']}"}}
        for name in fields:
            record[name] = row.get(name)
        return record

    # --- sObjects -----------------------------------------------------------------------------

    def _object_summary(self, v: str, name: str) -> dict:
        describe = self.store.describe(name)
        base = f"/services/data/{v}/sobjects/{name}"
        summary = {k: describe[k] for k in (
            "name", "label", "labelPlural", "keyPrefix", "custom", "createable", "updateable",
            "deletable", "queryable", "retrieveable", "searchable", "layoutable", "replicateable",
        )}
        summary["urls"] = {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}
        return summary

    def sobjects(self, request: Request, v: str, rest: list[str]) -> Response:
        method = request.method
        if not rest:
            if method != "GET":
                return sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
            return Response.json({
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [self._object_summary(v, name) for name in self.store.objects()],
            })
        try:
            obj = self.store.resolve_object(rest[0])
        except UnknownObject:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "GET":
                return Response.json({"objectDescribe": self._object_summary(v, obj), "recentItems": []})
            if method == "POST":
                return self.create(request, v, obj)
        elif len(rest) == 2 and rest[1] in {"updated", "deleted"} and method == "GET":
            return self.changed_since(request, obj, rest[1])
        elif len(rest) == 2 and rest[1] == "describe" and method == "GET":
            describe = self.store.describe(obj)
            describe["urls"] = {k: u.replace("/v59.0/", f"/{v}/") for k, u in describe["urls"].items()}
            return Response.json(describe)
        elif len(rest) == 2:
            return self.by_id(request, v, obj, rest[1])
        elif len(rest) == 3:
            return self.by_external_id(request, v, obj, rest[1], rest[2])
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def coerce(self, obj: str, data: dict) -> dict:
        """Validate and convert a JSON record body to canonical field names (raises FieldError)."""
        specs = self.store.fields(obj)
        lower = {name.lower(): name for name in specs}
        values = {}
        for key, value in data.items():
            if key == "attributes":
                continue
            name = lower.get(str(key).lower())
            if name is None:
                raise FieldError("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj}", [key])
            if name in READ_ONLY_FIELDS:
                raise FieldError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.",
                    [name],
                )
            try:
                values[name] = storage_converter(specs[name].type)(value)
            except (TypeError, ValueError):
                raise FieldError(
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {specs[name].type} from value {value!r} for field {name}",
                    [name],
                ) from None
        return values

    def _check_unique(self, obj: str, values: dict, exclude_id: str | None = None) -> None:
        for name, spec in self.store.fields(obj).items():
            if spec.unique and values.get(name) not in (None, ""):
                clash = [i for i in self.store.find_ids(obj, name, values[name]) if i != exclude_id]
                if clash:
                    raise FieldError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: {clash[0]}",
                        [],
                    )

    def insert_one(self, obj: str, values: dict, stamp: datetime) -> str:
        record_id = self.store.allocate_ids(obj, 1)[0]
        text = format_datetime(stamp)
        self.store.insert_records(
            obj,
            [{**values, "Id": record_id, "CreatedDate": text, "LastModifiedDate": text, "SystemModstamp": text}],
        )
        return record_id

    def create(self, request: Request, v: str, obj: str) -> Response:
        try:
            values = self.rules.normalize(obj, self.coerce(obj, request.json() or {}))
            self.rules.check(obj, values, creating=True)
            self._check_unique(obj, values)
        except (FieldError, RecordError) as exc:
            return sf_error(400, exc.code, exc.message, exc.fields)
        except ValueError:
            return sf_error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        record_id = self.insert_one(obj, values, self.now())
        self.faults.count_write(f"POST sobjects/{obj}")
        return Response.json({"id": record_id, "success": True, "errors": []}, 201,
                             headers={"Location": f"/services/data/{v}/sobjects/{obj}/{record_id}"})

    def _fields_param(self, request: Request, obj: str) -> list[str]:
        specs = self.store.fields(obj)
        wanted = request.query.get("fields")
        if not wanted:
            return list(specs)
        lower = {name.lower(): name for name in specs}
        return [lower[f.strip().lower()] for f in wanted.split(",") if f.strip().lower() in lower]

    def by_id(self, request: Request, v: str, obj: str, record_id: str) -> Response:
        record_id = normalize_id(record_id)  # a 15-character id addresses the same record
        row = self.store.get_record(obj, record_id)
        if row is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            return Response.json(self.record_json(v, obj, row, self._fields_param(request, obj)))
        if request.method == "PATCH":
            try:
                values = self.rules.normalize(obj, self.coerce(obj, request.json() or {}))
                self.rules.check(obj, values, creating=False)
                self._check_unique(obj, values, exclude_id=record_id)
            except (FieldError, RecordError) as exc:
                return sf_error(400, exc.code, exc.message, exc.fields)
            self.store.update_records(obj, [{"Id": record_id, **values}], stamp=self.now())
            self.faults.count_write(f"PATCH sobjects/{obj}")
            return Response.empty(204)
        if request.method == "DELETE":
            self.store.delete_records(obj, [record_id], stamp=self.now())
            self.faults.count_write(f"DELETE sobjects/{obj}")
            return Response.empty(204)
        return sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed")

    def _external_field(self, obj: str, field_name: str) -> str | None:
        for name, spec in self.store.fields(obj).items():
            if name.lower() == field_name.lower() and (spec.external_id or name == "Id"):
                return name
        return None

    def by_external_id(self, request: Request, v: str, obj: str, field_name: str, value: str) -> Response:
        ext = self._external_field(obj, field_name)
        if ext is None:
            return sf_error(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        if ext == "Id":
            value = normalize_id(value)
        matches = self.store.find_ids(obj, ext, value)
        if request.method == "GET":
            if not matches:
                return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            if len(matches) > 1:
                return Response.json([f"/services/data/{v}/sobjects/{obj}/{i}" for i in matches], 300)
            row = self.store.get_record(obj, matches[0])
            return Response.json(self.record_json(v, obj, row, self._fields_param(request, obj)))
        if request.method == "DELETE":
            if not matches:
                return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            self.store.delete_records(obj, matches[:1], stamp=self.now())
            self.faults.count_write(f"DELETE sobjects/{obj}")
            return Response.empty(204)
        if request.method not in {"PATCH", "POST"}:
            return sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed")
        try:
            body = {k: val for k, val in (request.json() or {}).items() if k.lower() != ext.lower()}
            values = self.rules.normalize(obj, self.coerce(obj, body))
        except FieldError as exc:
            return sf_error(400, exc.code, exc.message, exc.fields)
        failure = self.faults.record_failure(ext, value)
        if failure:
            return sf_error(400, failure[0], failure[1], [])
        if len(matches) > 1:
            return Response.json([f"/services/data/{v}/sobjects/{obj}/{i}" for i in matches], 300)
        stamp = self.now()
        # Before API 46.0 an upsert that updates answers 204 with no body, and a create carries no
        # "created" flag (the client then sees only the status code).
        modern = _api_version(v) >= 46.0
        if matches:
            try:
                self.rules.check(obj, values, creating=False)
            except RecordError as exc:
                return sf_error(400, exc.code, exc.message, exc.fields)
            self.store.update_records(obj, [{"Id": matches[0], **values}], stamp=stamp)
            self.faults.count_write(f"PATCH sobjects/{obj}/{ext}")
            if not modern:
                return Response.empty(204)
            return Response.json({"id": matches[0], "success": True, "errors": [], "created": False}, 200)
        if ext == "Id":
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            self.rules.check(obj, {**values, ext: value}, creating=True)
            self._check_unique(obj, {**values, ext: value})
        except (FieldError, RecordError) as exc:
            return sf_error(400, exc.code, exc.message, exc.fields)
        record_id = self.insert_one(obj, {**values, ext: value}, stamp)
        self.faults.count_write(f"PATCH sobjects/{obj}/{ext}")
        body = {"id": record_id, "success": True, "errors": []}
        return Response.json({**body, "created": True} if modern else body, 201)

    def changed_since(self, request: Request, obj: str, kind: str) -> Response:
        """``sobjects/<type>/updated`` and ``/deleted``: ids changed or deleted within [start, end]."""
        try:
            start = parse_datetime(request.query["start"])
            end = parse_datetime(request.query["end"])
        except KeyError as exc:
            return sf_error(400, "MISSING_ARGUMENT", f"Missing parameter: {exc.args[0]}")
        except ValueError:
            return sf_error(400, "INVALID_REPLICATION_DATE", "Invalid startDate or endDate")
        if end < start:
            return sf_error(400, "INVALID_REPLICATION_DATE", "EndDate can not be before StartDate")
        # Replication works at minute granularity: the window covers whole minutes up to end.
        latest = end.replace(second=0, microsecond=0)
        window = [format_datetime(start), format_datetime(latest)]
        if kind == "updated":
            ids = self.store.select_ids(obj, '"SystemModstamp" >= ? and "SystemModstamp" < ?', window,
                                        '"SystemModstamp"')
            return Response.json({"ids": ids, "latestDateCovered": format_datetime(latest)})
        rows = self.store.select(obj, ["Id", "SystemModstamp"],
                                 '"IsDeleted" = 1 and "SystemModstamp" >= ? and "SystemModstamp" < ?', window,
                                 '"SystemModstamp"', include_deleted=True)
        return Response.json({
            "deletedRecords": [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in rows],
            "earliestDateAvailable": format_datetime(start), "latestDateCovered": format_datetime(latest),
        })

    # --- sObject Collections ------------------------------------------------------------------

    def collections_upsert(self, request: Request, obj_name: str, field_name: str) -> Response:
        obj = self.store.resolve_object(obj_name)
        ext = self._external_field(obj, field_name)
        if ext is None:
            return sf_error(400, "INVALID_FIELD", f"Field name provided, {field_name} is not an External ID "
                            f"or indexed field for {obj}")
        try:
            body = request.json() or {}
        except ValueError:
            return sf_error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return sf_error(400, "INVALID_FIELD", "records: the request must contain a list of records")
        if len(records) > MAX_COLLECTION:
            return sf_error(400, "EXCEEDED_ID_LIMIT",
                            "record limit reached. cannot submit more than 200 records into this call")
        all_or_none = bool(body.get("allOrNone", False))
        keys = [str(r.get(ext)) if isinstance(r, dict) and r.get(ext) not in (None, "") else None
                for r in records]
        if ext == "Id":
            keys = [normalize_id(k) for k in keys]
        existing = self.store.ids_by_values(obj, ext, [k for k in keys if k is not None])
        live = self.rules.live_references(obj, [r for r in records if isinstance(r, dict)])
        seen: dict[str, int] = {}
        for key in keys:
            if key is not None:
                seen[key] = seen.get(key, 0) + 1
        plans: list[tuple[str, str | None, dict] | tuple[str, str, list]] = []
        for record, key in zip(records, keys, strict=True):
            try:
                if not isinstance(record, dict):
                    raise FieldError("INVALID_FIELD", "each record must be a JSON object", [])
                rtype = (record.get("attributes") or {}).get("type")
                if rtype and rtype.lower() != obj.lower():
                    raise FieldError("INVALID_TYPE", f"record type {rtype} does not match {obj}", [])
                if key is None:
                    raise FieldError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
                if seen[key] > 1:
                    raise FieldError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {key}", [ext])
                values = self.rules.normalize(
                    obj, self.coerce(obj, {k: val for k, val in record.items() if k.lower() != ext.lower()}))
                failure = self.faults.record_failure(ext, key)
                if failure:
                    raise FieldError(failure[0], failure[1], [])
                matches = existing.get(key, [])
                if len(matches) > 1:
                    raise FieldError(
                        "DUPLICATE_EXTERNAL_ID",
                        f"{ext}: more than one record found for external id field: {matches}", [ext],
                    )
                if matches:
                    self.rules.check(obj, values, creating=False, live=live)
                    plans.append(("update", matches[0], values))
                else:
                    if ext == "Id":
                        raise FieldError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                    values[ext] = key
                    self.rules.check(obj, values, creating=True, live=live)
                    plans.append(("insert", None, values))
            except (FieldError, RecordError) as exc:
                plans.append(("error", exc.code, [exc.message, exc.fields]))
        failed = any(plan[0] == "error" for plan in plans)
        results = []
        if all_or_none and failed:
            for kind, code, payload in plans:
                if kind == "error":
                    results.append({"success": False, "errors": [
                        {"statusCode": code, "message": payload[0], "fields": payload[1]}]})
                else:
                    results.append({"success": False, "errors": [{
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": "Record rolled back because not all records were valid and the request "
                                   "was using AllOrNone header",
                        "fields": [],
                    }]})
            return Response.json(results)
        stamp = self.now()
        text = format_datetime(stamp)
        inserts = [p for p in plans if p[0] == "insert"]
        new_ids = iter(self.store.allocate_ids(obj, len(inserts))) if inserts else iter(())
        to_insert, to_update = [], []
        for kind, code_or_id, payload in plans:
            if kind == "error":
                results.append({"success": False, "errors": [
                    {"statusCode": code_or_id, "message": payload[0], "fields": payload[1]}]})
            elif kind == "insert":
                record_id = next(new_ids)
                to_insert.append({**payload, "Id": record_id, "CreatedDate": text, "LastModifiedDate": text,
                                  "SystemModstamp": text})
                results.append({"id": record_id, "success": True, "errors": [], "created": True})
            else:
                to_update.append({"Id": code_or_id, **payload})
                results.append({"id": code_or_id, "success": True, "errors": [], "created": False})
        if to_insert:
            self.store.insert_records(obj, to_insert)
        if to_update:
            self.store.update_records(obj, to_update, stamp=stamp)
        if to_insert or to_update:
            self.faults.count_write(f"PATCH composite/sobjects/{obj}", len(to_insert) + len(to_update))
        return Response.json(results)


def _api_version(v: str) -> float:
    try:
        return float(v.lstrip("v"))
    except ValueError:
        return 59.0


def csv_text(rows: list[list[str]], line_ending: str = "\n", quote_all: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
                        lineterminator=line_ending)
    writer.writerows(rows)
    return buffer.getvalue()
