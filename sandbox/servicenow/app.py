"""The ServiceNow emulator: Table API (``incident``, read-only ``sys_user_group``) and Batch API.

Answers what pysnc 1.2.1 and plain requests send (wire-contracts note, section 4): encoded queries,
``sysparm_*`` parameters, ``X-Total-Count``/``Link`` headers, full records with every column (empty
ones as ""), the incident state model (priority from impact x urgency, close info required to
resolve or close, resolved/closed stamps, reopen counting) and the error envelope.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from sandbox.faults import Faults
from sandbox.server import Request, Response, SandboxApp, same_secret
from sandbox.servicenow.store import GROUP_COLUMNS, INCIDENT_COLUMNS, TABLES, ServiceNowStore

REFERENCE_FIELDS = {
    "incident": {
        "assignment_group": "sys_user_group", "assigned_to": "sys_user", "caller_id": "sys_user",
        "opened_by": "sys_user", "resolved_by": "sys_user", "closed_by": "sys_user", "company": "core_company",
        "location": "cmn_location", "cmdb_ci": "cmdb_ci", "problem_id": "problem", "parent_incident": "incident",
    },
    "sys_user_group": {"manager": "sys_user", "parent": "sys_user_group"},
}
CHOICES = {
    "state": {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"},
    "impact": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    "urgency": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
    "priority": {"1": "1 - Critical", "2": "2 - High", "3": "3 - Moderate", "4": "4 - Low", "5": "5 - Planning"},
    "severity": {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"},
}
CHOICES["incident_state"] = CHOICES["state"]
NUMERIC_FIELDS = {"state", "incident_state", "impact", "urgency", "priority", "severity", "reopen_count",
                  "reassignment_count", "sys_mod_count", "escalation", "notify"}
READ_ONLY = {"sys_id", "number", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by",
             "sys_mod_count", "priority", "reopen_count", "resolved_at", "closed_at", "active", "incident_state"}
JOURNAL_FIELDS = {"work_notes", "comments"}
OPERATORS = ("NOT LIKE", "NOT IN", "ISNOTEMPTY", "ISEMPTY", "STARTSWITH", "ENDSWITH", "LIKE", "IN",
             "!=", ">=", "<=", "=", ">", "<")
PRIORITY = {(1, 1): 1, (1, 2): 2, (2, 1): 2, (1, 3): 3, (2, 2): 3, (3, 1): 3, (2, 3): 4, (3, 2): 4, (3, 3): 5}
_FIELD = re.compile(r"^([a-z0-9_]+)")


def sn_error(status: int, message: str, detail: str | None = None) -> Response:
    return Response.json({"error": {"message": message, "detail": detail}, "status": "failure"}, status)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):  # {"value": ..., "display_value": ...} echoed back by a client
        return _text(value.get("value", ""))
    return str(value)


def encoded_query_sql(query: str, columns: tuple[str, ...]) -> tuple[str, list, str]:
    """Translate a sysparm_query to (where, params, order by); parts that do not parse are ignored."""
    query = query.replace("^^", "\x00")
    or_groups = []
    orders = []
    for group in query.split("^NQ"):
        clauses: list[list[tuple[str, list]]] = []
        for raw_part in group.split("^"):
            part = raw_part.replace("\x00", "^").strip()
            if not part:
                continue
            if part.startswith("ORDERBYDESC"):
                if part[11:] in columns:
                    orders.append(f'"{part[11:]}" desc')
                continue
            if part.startswith("ORDERBY"):
                if part[7:] in columns:
                    orders.append(f'"{part[7:]}" asc')
                continue
            is_or = part.startswith("OR") and not _starts_with_column(part, columns)
            condition = _condition(part[2:] if is_or else part, columns)
            if condition is None:
                continue
            if is_or and clauses:
                clauses[-1].append(condition)
            else:
                clauses.append([condition])
        if clauses:
            sql_parts, params = [], []
            for alternatives in clauses:
                sql_parts.append("(" + " or ".join(sql for sql, _ in alternatives) + ")")
                for _, p in alternatives:
                    params.extend(p)
            or_groups.append((" and ".join(sql_parts), params))
    where = " or ".join(f"({sql})" for sql, _ in or_groups)
    params = [p for _, ps in or_groups for p in ps]
    return where, params, ", ".join(orders)


def _starts_with_column(part: str, columns) -> bool:
    match = _FIELD.match(part)
    return bool(match) and match.group(1) in columns and part[len(match.group(1)):].startswith(OPERATORS)


def _condition(part: str, columns) -> tuple[str, list] | None:
    match = _FIELD.match(part)
    if not match or match.group(1) not in columns:
        return None
    name = match.group(1)
    rest = part[len(name):]
    op = next((o for o in OPERATORS if rest.startswith(o)), None)
    if op is None:
        return None
    value = rest[len(op):]
    col = f'"{name}"'
    numeric = name in NUMERIC_FIELDS
    cast = f"cast(nullif({col}, '') as integer)" if numeric else col
    if op == "ISEMPTY":
        return f"coalesce({col}, '') = ''", []
    if op == "ISNOTEMPTY":
        return f"coalesce({col}, '') != ''", []
    if op in {"IN", "NOT IN"}:
        values = [v for v in value.split(",")]
        placeholders = ", ".join("?" for _ in values)
        if op == "IN":
            return f"{col} in ({placeholders})", values
        return f"coalesce({col}, '') not in ({placeholders})", values
    if op == "LIKE":
        return f"{col} like ? escape '\\'", [f"%{_like(value)}%"]
    if op == "NOT LIKE":
        return f"coalesce({col}, '') not like ? escape '\\'", [f"%{_like(value)}%"]
    if op == "STARTSWITH":
        return f"{col} like ? escape '\\'", [f"{_like(value)}%"]
    if op == "ENDSWITH":
        return f"{col} like ? escape '\\'", [f"%{_like(value)}"]
    if op == "=":
        return f"coalesce({col}, '') = ?", [value]
    if op == "!=":
        return f"coalesce({col}, '') != ?", [value]
    if numeric:
        try:
            return f"{cast} {op} ?", [int(value)]
        except ValueError:
            return None
    return f"{col} {op} ?", [value]


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ServiceNowApp(SandboxApp):
    name = "servicenow"

    def __init__(self, db_path: Path, credentials: dict, faults: Faults | None = None):
        super().__init__(faults or Faults(daily_limit=100000))
        self.store = ServiceNowStore(db_path)
        self.credentials = credentials

    def admin_credentials(self) -> tuple[str, str]:
        return self.credentials["username"], self.credentials["password"]

    max_body_bytes = 10 * 1024 * 1024  # a ServiceNow instance's default REST request limit

    def error(self, status: int, code: str, message: str) -> Response:
        return sn_error(status, message, code)

    def unauthenticated(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox/"):
            return super().unauthenticated(request)
        return sn_error(401, "User Not Authenticated", "Required to provide Auth information")

    def authorized_before_body(self, request: Request) -> bool:
        if request.segments[:2] == ["api", "now"]:
            return self._authorized(request)
        return super().authorized_before_body(request)

    def _authorized(self, request: Request) -> bool:
        auth = request.basic_auth()
        if auth is None:
            return False
        user, password = auth
        return user == self.credentials["username"] and same_secret(password, self.credentials["password"])

    # --- entry --------------------------------------------------------------------------------

    def dispatch(self, request: Request, nested: bool = False) -> Response:
        segs = request.segments
        if segs[:2] != ["api", "now"]:
            return sn_error(400, "Requested URI does not represent any resource", None)
        rest = segs[2:]
        version = rest[0] if rest and rest[0] in {"v1", "v2"} else None
        if version:
            rest = rest[1:]
        label_table = rest[1] if len(rest) > 1 else (rest[0] if rest else "")
        self.faults.count_request(f"{request.method} {rest[0] if rest else ''}/{label_table}".rstrip("/"))
        if not nested:
            if not self._authorized(request):
                return sn_error(401, "User Not Authenticated", "Required to provide Auth information")
            fault = self.faults.before_api_call()
            if fault == "limit":
                return sn_error(429, "Too Many Requests", "Rate limit exceeded (sandbox fault)")
            if fault == "unavailable":
                return sn_error(503, "Service Unavailable", "The instance is temporarily unavailable (sandbox fault)")
            if fault == "expired":
                return sn_error(401, "User Not Authenticated", "Session expired (sandbox fault)")
        if rest == ["batch"]:
            # Only the versioned v1 path exists on an instance: /api/now/batch and /api/now/v2/batch answer
            # "Requested URI does not represent any resource" (the docs give only /api/now/{version}/batch,
            # and the ServiceNow community confirms v1 is the one that works).
            if nested:
                return sn_error(400, "Batch requests cannot be nested", None)
            if version != "v1" or request.method != "POST":
                return sn_error(400, "Requested URI does not represent any resource", None)
            if self.faults.settings.batch_unavailable:
                return sn_error(404, "Requested URI does not represent any resource",
                                "The Batch API is not available on this instance (sandbox fault)")
            return self.batch(request)
        if not rest or rest[0] != "table" or len(rest) not in {2, 3}:
            return sn_error(400, "Requested URI does not represent any resource", None)
        table = rest[1]
        if table not in TABLES:
            return sn_error(400, f"Invalid table {table}", None)
        sys_id = rest[2] if len(rest) == 3 else None
        method = request.method
        if sys_id is None and method == "GET":
            return self.list(request, table)
        if sys_id is None and method == "POST":
            return self.create(request, table)
        if sys_id is not None and method == "GET":
            return self.get(request, table, sys_id)
        if sys_id is not None and method in {"PATCH", "PUT"}:
            return self.update(request, table, sys_id)
        if sys_id is not None and method == "DELETE":
            return self.delete(table, sys_id)
        return sn_error(405, "Method not Supported", f"{method} is not supported for this resource")

    # --- rendering ----------------------------------------------------------------------------

    def _group_names(self) -> dict[str, str]:
        return {r["sys_id"]: r["name"] for r in self.store.rows("sys_user_group", "", [], "", None, 0)}

    def render(self, request: Request, table: str, row: dict, groups: dict[str, str] | None = None) -> dict:
        params = request.query
        display = (params.get("sysparm_display_value") or "false").lower()
        exclude_links = (params.get("sysparm_exclude_reference_link") or "false").lower() == "true"
        wanted = [f.strip() for f in (params.get("sysparm_fields") or "").split(",") if f.strip()]
        columns = [c for c in wanted if c in row] if wanted else list(row)
        references = REFERENCE_FIELDS.get(table, {})
        groups = groups if groups is not None else self._group_names()
        out = {}
        for column in columns:
            value = row.get(column, "")
            shown = value
            if column in CHOICES:
                shown = CHOICES[column].get(value, value)
            elif references.get(column) == "sys_user_group":
                shown = groups.get(value, value)
            if column in references and value:
                link = f"{request.base_url}/api/now/table/{references[column]}/{value}"
                if display == "all":
                    item = {"display_value": shown, "value": value}
                    if not exclude_links:
                        item["link"] = link
                    out[column] = item
                elif exclude_links:
                    out[column] = shown if display == "true" else value
                else:
                    key = "display_value" if display == "true" else "value"
                    out[column] = {"link": link, key: shown if display == "true" else value}
                continue
            if display == "all":
                out[column] = {"display_value": shown, "value": value}
            elif display == "true":
                out[column] = shown
            else:
                out[column] = value
        return out

    # --- read ---------------------------------------------------------------------------------

    def list(self, request: Request, table: str) -> Response:
        params = request.query
        columns = TABLES[table]
        where, args, order = encoded_query_sql(params.get("sysparm_query") or "", columns)
        # Plain field=value pairs filter too, as on a real instance.
        simple = [(k, v) for k, v in params.items() if not k.startswith("sysparm_") and k in columns]
        if simple:
            extra = " and ".join(f'coalesce("{k}", \'\') = ?' for k, _ in simple)
            where = f"({where}) and {extra}" if where else extra
            args = [*args, *(v for _, v in simple)]
        try:
            limit = int(params.get("sysparm_limit") or 10000)
            offset = max(0, int(params.get("sysparm_offset") or 0))
        except ValueError:
            return sn_error(400, "Invalid sysparm_limit or sysparm_offset", None)
        total = self.store.count(table, where, args)
        rows = self.store.rows(table, where, args, order, max(0, limit), offset)
        groups = self._group_names()
        body = {"result": [self.render(request, table, row, groups) for row in rows]}
        headers = {}
        if (params.get("sysparm_no_count") or "false").lower() != "true":
            headers["X-Total-Count"] = str(total)
        if (params.get("sysparm_suppress_pagination_header") or "false").lower() != "true":
            headers["Link"] = self._link_header(request, limit, offset, total)
        return Response.json(body, headers=headers)

    @staticmethod
    def _link_header(request: Request, limit: int, offset: int, total: int) -> str:
        base = f"{request.base_url}{request.path}"
        others = {k: v for k, v in request.query.items() if k not in {"sysparm_offset", "sysparm_limit"}}

        def url(at: int) -> str:
            return f"{base}?{urlencode({**others, 'sysparm_limit': limit, 'sysparm_offset': at}, quote_via=quote)}"

        step = max(limit, 1)
        last = max(0, ((total - 1) // step) * step) if total else 0
        links = [f'<{url(0)}>;rel="first"', f'<{url(offset - step)}>;rel="prev"']
        if offset + step < total:
            links.append(f'<{url(offset + step)}>;rel="next"')
        links.append(f'<{url(last)}>;rel="last"')
        return ",".join(links)

    def get(self, request: Request, table: str, sys_id: str) -> Response:
        row = self.store.get(table, sys_id)
        if row is None:
            return sn_error(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        return Response.json({"result": self.render(request, table, row)})

    # --- write --------------------------------------------------------------------------------

    def _user(self) -> str:
        return self.credentials["username"]

    def _input_values(self, table: str, body: dict) -> dict:
        columns = TABLES[table]
        values = {}
        for key, value in body.items():
            if key not in columns or key in READ_ONLY or key in JOURNAL_FIELDS:
                continue  # unknown and read-only fields are ignored, as on a real instance
            text = _text(value)
            if key == "assignment_group" and text and not re.fullmatch(r"[0-9a-f]{32}", text):
                by_name = {name: sys_id for sys_id, name in self._group_names().items()}
                text = by_name.get(text, text)
            values[key] = text
        return values

    def _apply_state_rules(self, before: dict | None, record: dict) -> str | None:
        """Business rules for incident state changes; returns an error detail when refused."""
        try:
            impact, urgency = int(record.get("impact") or 3), int(record.get("urgency") or 3)
            record["priority"] = str(PRIORITY.get((impact, urgency), 5))
        except ValueError:
            record["priority"] = "5"
        state = record.get("state") or "1"
        if state not in CHOICES["state"]:
            state = {"4": "3", "5": "3"}.get(state, state)
        record["state"] = record["incident_state"] = state
        old_state = (before or {}).get("state")
        stamp, user = now_text(), self._user()
        if state in {"6", "7"} and old_state != state:
            missing = [label for key, label in (("close_code", "Resolution code"), ("close_notes", "Resolution notes"))
                       if not record.get(key)]
            if missing and self.faults.settings.strict_close_info:
                return "Data Policy Exception: \n The following fields are mandatory: " + ", ".join(missing)
            if not record.get("resolved_at"):
                record["resolved_at"], record["resolved_by"] = stamp, user
            if state == "7":
                record["closed_at"], record["closed_by"] = stamp, user
        if state in {"1", "2", "3"} and old_state in {"6", "7"}:
            record["reopen_count"] = str(int(record.get("reopen_count") or 0) + 1)
            record["resolved_at"] = record["resolved_by"] = ""
            record["closed_at"] = record["closed_by"] = ""
        record["active"] = "false" if state in {"7", "8"} else "true"
        return None

    def _record_fault(self, record: dict) -> Response | None:
        """The ``fail_records`` fault for an incident write, keyed by its correlation id (None: no fault)."""
        hit = self.faults.record_failure("correlation_id", record.get("correlation_id") or None)
        if hit is None:
            return None
        spec = self.faults.settings.fail_records or {}
        status = int(spec.get("status", 400))
        default = {
            400: ("Operation Failed", "Data Policy Exception: the record was rejected (sandbox fault)"),
            403: ("Operation Failed", "ACL Exception Update Failed due to security constraints (sandbox fault)"),
            429: ("Too Many Requests", "Rate limit exceeded (sandbox fault)"),
        }.get(status, ("Service Unavailable", "The instance could not process the record (sandbox fault)"))
        return sn_error(status, default[0], spec.get("message") or default[1])

    def create(self, request: Request, table: str) -> Response:
        if table != "incident":
            return sn_error(403, "Operation Failed", "ACL Exception Insert Failed due to security constraints")
        try:
            body = request.json() or {}
        except ValueError:
            return sn_error(400, "Exception while reading request", "The payload is not valid JSON.")
        if not isinstance(body, dict):
            return sn_error(400, "Exception while reading request", "The payload must be a JSON object.")
        stamp, user = now_text(), self._user()
        record = dict.fromkeys(INCIDENT_COLUMNS, "")
        record.update({
            "state": "1", "impact": "3", "urgency": "3", "severity": "3", "active": "true", "reopen_count": "0",
            "reassignment_count": "0", "sys_mod_count": "0", "contact_type": "integration", "made_sla": "true",
            "escalation": "0", "notify": "1", "approval": "not requested", "sys_class_name": "incident",
            "sys_domain": "global", "opened_at": stamp, "opened_by": "", "caller_id": "",
        })
        record.update(self._input_values(table, body))
        refused = self._record_fault(record)
        if refused is not None:
            return refused
        record["sys_id"] = uuid.uuid4().hex
        record.update({"sys_created_on": stamp, "sys_created_by": user, "sys_updated_on": stamp,
                       "sys_updated_by": user})
        error = self._apply_state_rules(None, record)
        if error:
            return sn_error(400, "Operation Failed", error)
        with self.store.write_lock:
            conn = self.store.connection()
            conn.execute("begin immediate")
            try:
                record["number"] = self.store.next_number()
                self.store.insert(table, record)
                conn.execute("commit")
            except Exception:
                conn.execute("rollback")
                raise
        self.faults.count_write(f"POST table/{table}")
        headers = {"Location": f"{request.base_url}/api/now/table/{table}/{record['sys_id']}"}
        if (request.header("x-no-response-body") or "").lower() == "true":
            return Response.empty(201, headers)
        return Response.json({"result": self.render(request, table, record)}, 201, headers)

    def update(self, request: Request, table: str, sys_id: str) -> Response:
        if table != "incident":
            return sn_error(403, "Operation Failed", "ACL Exception Update Failed due to security constraints")
        try:
            body = request.json() or {}
        except ValueError:
            return sn_error(400, "Exception while reading request", "The payload is not valid JSON.")
        with self.store.write_lock:
            conn = self.store.connection()
            conn.execute("begin immediate")
            try:
                before = self.store.get(table, sys_id)
                if before is None:
                    conn.execute("rollback")
                    return sn_error(404, "No Record found",
                                    "Record doesn't exist or ACL restricts the record retrieval")
                record = {**before, **self._input_values(table, body)}
                refused = self._record_fault(before)
                if refused is not None:
                    conn.execute("rollback")
                    return refused
                error = self._apply_state_rules(before, record)
                if error:
                    conn.execute("rollback")
                    return sn_error(400, "Operation Failed", error)
                record["sys_updated_on"], record["sys_updated_by"] = now_text(), self._user()
                record["sys_mod_count"] = str(int(before.get("sys_mod_count") or 0) + 1)
                changes = {k: v for k, v in record.items() if before.get(k) != v}
                self.store.update(table, sys_id, changes)
                conn.execute("commit")
            except Exception:
                conn.execute("rollback")
                raise
        self.faults.count_write(f"{request.method} table/{table}")
        return Response.json({"result": self.render(request, table, record)})

    def delete(self, table: str, sys_id: str) -> Response:
        if table != "incident":
            return sn_error(403, "Operation Failed", "ACL Exception Delete Failed due to security constraints")
        with self.store.write_lock:
            deleted = self.store.delete(table, sys_id)
        if not deleted:
            return sn_error(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        self.faults.count_write(f"DELETE table/{table}")
        return Response.empty(204)

    # --- batch --------------------------------------------------------------------------------

    def batch(self, request: Request) -> Response:
        """``POST /api/now/v1/batch``: each request runs as if sent alone, in order; none undoes another."""
        try:
            body = request.json() or {}
        except ValueError:
            return sn_error(400, "Exception while reading request", "The payload is not valid JSON.")
        items = body.get("rest_requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return sn_error(400, "Exception while reading request", "rest_requests is required")
        for item in items:
            if not isinstance(item, dict) or any(not item.get(k) for k in ("id", "method", "url")):
                return sn_error(400, "Exception while reading request",
                                "every rest_requests item needs id, method and url")
        limit = self.faults.settings.batch_serve_limit
        served, unserviced = [], []
        for item in items:
            if limit is not None and len(served) >= limit:
                unserviced.append(str(item["id"]))  # the batch reached its limit: not processed at all
                continue
            response = self._batch_item(request, item)
            entry = {
                "id": str(item["id"]),
                "status_code": response.status,
                "status_text": _status_text(response.status),
                "body": base64.b64encode(response.body).decode(),
                "execution_time": 1,
            }
            if response.status >= 400:
                try:
                    entry["error_message"] = json.loads(response.body)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    entry["error_message"] = _status_text(response.status)
            if not item.get("exclude_response_headers"):
                entry["headers"] = [{"name": k, "value": v} for k, v in
                                    {"Content-Type": "application/json", **response.headers}.items()]
            served.append(entry)
        return Response.json({
            "batch_request_id": str(body.get("batch_request_id", "")),
            "serviced_requests": served,
            "unserviced_requests": unserviced,
        })

    def _batch_item(self, request: Request, item: dict) -> Response:
        parts = urlsplit(str(item["url"]))
        headers = {str(h["name"]).lower(): str(h.get("value", "")) for h in item.get("headers") or []
                   if isinstance(h, dict) and "name" in h}
        try:
            payload = base64.b64decode(item["body"], validate=True) if item.get("body") else b""
        except (ValueError, TypeError):
            return sn_error(400, "Exception while reading request", "The body is not valid base64.")
        inner = Request(
            method=str(item["method"]).upper(), path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)), headers=headers, body=payload,
            base_url=request.base_url,
        )
        return self.dispatch(inner, nested=True)


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


__all__ = ["ServiceNowApp", "encoded_query_sql", "GROUP_COLUMNS"]
