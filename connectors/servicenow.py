"""The ServiceNow connection: Basic auth, TLS trust, retries, and the Table and Batch API calls over them.

``activate`` raises, updates and resolves incidents through :class:`ServiceNowClient`; ``ingest`` reads
back the incidents people resolved. Only the transport lives here, plus the few marks both sides must
agree on to recognise Northstar's incidents on the instance (:data:`CORRELATION_DISPLAY`,
:data:`AUTO_RESOLVE_MARKER`) and ServiceNow's own incident state codes; the correlation id's prefix is reference
data (seed ``incident_rules``, read through :func:`northstar.reference.incident_rules`).
What an incident says, and when it is opened or resolved, is ``activate``'s business.

* Auth is HTTP Basic (no session): a 401 is retried once as it is, then raised.
* 429 and 5xx (:data:`TRANSIENT_STATUSES`), connection errors and timeouts back off under a
  :class:`~connectors.retry.RetryPolicy`; when the budget is spent :class:`Transient` is raised.
* A certificate that does not verify is never retried (the wrong server, or wrong trust): it is raised
  as :class:`Transient` at once, so callers treat it like an unreachable instance.
* Any other 4xx is :class:`ServiceNowError` with the instance's message.
* Every response is counted (``client.counter.calls``); a request that reached the instance and got no
  answer (dropped connection, read timeout) is counted in ``client.unanswered``: the instance counted
  it, and may have applied it. ``client.calls`` is the sum, what the instance was asked.
* A write must not be repeated blindly: a request whose answer was lost may have been applied. Writes
  pass ``retry_transient=False`` and get :class:`Transient` at the first fault, so the caller can look
  at the server before deciding again (``activate.servicenow`` looks its incidents up by correlation id).

The Batch API (:meth:`ServiceNowClient.batch`): ``POST /api/now/v1/batch`` (only v1 exists) with
``batch_request_id`` and ``rest_requests`` ``[{id, method, url (relative, with its query), headers,
body (base64)}]``; the answer lists ``serviced_requests`` ``[{id, status_code, body (base64), ...}]``,
each the sub-request's own result, and ``unserviced_requests``, the ids a batch left unprocessed when it
reached the instance's time or size limit. An instance that does not expose the Batch API answers 404
(or, as ServiceNow does for any path it does not serve, 400 "Requested URI does not represent any
resource"): :class:`BatchUnavailable`.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connectors.http import http_session
from connectors.retry import CallCounter, RetryPolicy
from northstar.errors import ExpectedError
from northstar.settings import Endpoint

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

# ServiceNow's incident states (out of the box)
OPEN_STATES = frozenset({"1", "2", "3"})  # New, In Progress, On Hold
RESOLVED, CLOSED, CANCELED = "6", "7", "8"

# How Northstar's incidents are recognised on the instance: the push sets these, the read-back filters on them.
CORRELATION_DISPLAY = "NORTHSTAR_RECON"
AUTO_RESOLVE_MARKER = "[northstar auto-resolve]"  # close notes of incidents Northstar resolved itself


class ServiceNowCredentialsMissing(ExpectedError):
    """No ServiceNow user/password configured."""


class ServiceNowError(RuntimeError):
    """The instance refused a request (a 4xx other than a first 401): retrying will not change its mind."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Transient(RuntimeError):
    """A 429 / 5xx / connection fault outlasted the back-off (or TLS failed to verify)."""


class BatchUnavailable(ServiceNowError):
    """The instance does not serve the Batch API (404, or 400 "Requested URI does not represent any resource")."""


BATCH_PATH = "/api/now/v1/batch"
NO_SUCH_RESOURCE = "Requested URI does not represent any resource"


@dataclass(frozen=True)
class SubRequest:
    """One request inside a Batch API call: what :meth:`ServiceNowClient.request` would have sent alone."""

    id: str
    method: str
    path: str  # e.g. /api/now/table/incident/<sys_id>
    params: dict | None = None
    body: dict | None = None

    def wire(self) -> dict:
        url = self.path + (f"?{urlencode(self.params, quote_via=quote)}" if self.params else "")
        item = {
            "id": self.id, "method": self.method, "url": url, "exclude_response_headers": True,
            "headers": [{"name": "Content-Type", "value": "application/json"},
                        {"name": "Accept", "value": "application/json"}],
        }
        if self.body is not None:
            item["body"] = base64.b64encode(json.dumps(self.body).encode()).decode()
        return item


@dataclass(frozen=True)
class SubResponse:
    """A serviced sub-request: its own status, its JSON body (None when empty or not JSON), its error text."""

    id: str
    status: int
    body: dict | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES


@dataclass
class BatchAnswer:
    """The result of one Batch API call, per sub-request id."""

    served: dict[str, SubResponse] = field(default_factory=dict)
    unserviced: list[str] = field(default_factory=list)  # not processed: send again
    missing: list[str] = field(default_factory=list)  # absent from both lists: outcome unknown


class ServiceNowClient:
    """Table and Batch API over plain requests (Basic auth, TLS trust as in the sandbox README), with retries."""

    def __init__(self, endpoint: Endpoint, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not endpoint.username or endpoint.password is None:
            raise ServiceNowCredentialsMissing("ServiceNow credentials are not configured (servicenow_default connection, "
                                               "NORTHSTAR_SERVICENOW_*, or `python -m northstar setup` for the sandbox)")
        self.base = endpoint.url.rstrip("/")
        self.session = http_session(endpoint)
        self.session.auth = (endpoint.username, endpoint.password.reveal())
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        self.counter = CallCounter()
        self.counter.attach(self.session)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.retries = 0
        self.unanswered = 0

    @property
    def calls(self) -> int:
        """Requests the instance received: the answered ones and those whose answer was lost."""
        return self.counter.calls + self.unanswered

    def request(self, method: str, path: str, params: dict | None = None, body: dict | None = None,
                retry_transient: bool = True):
        """One API call under the retry policy; the response of a 2xx/3xx, else an exception (module doc).

        ``retry_transient=False`` (writes): a 429/5xx/connection fault raises :class:`Transient` at once.
        """
        attempt, reauthed = 0, False
        while True:
            try:
                response = self.session.request(method, f"{self.base}{path}", params=params, json=body, timeout=60)
            except requests.exceptions.SSLError as exc:  # wrong server or trust: retrying will not help
                raise Transient(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.unanswered += _reached(exc)
                status, message = 0, f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return response
                try:
                    error = response.json().get("error", {})
                    message = f"{error.get('message')}: {error.get('detail')}"
                except ValueError:
                    message = response.text[:500]
                if status == 401 and not reauthed:
                    reauthed = True  # Basic auth has no session: one plain retry
                    continue
                if status not in TRANSIENT_STATUSES:
                    if path == BATCH_PATH and (status == 404 or (status == 400 and NO_SUCH_RESOURCE in message)):
                        raise BatchUnavailable(status, message)
                    raise ServiceNowError(status, message)
            if not retry_transient or attempt + 1 >= self.retry.max_attempts:
                raise Transient(f"{method} {path}: HTTP {status}: {message}")
            delay = self.retry.delay(attempt)
            log.warning("servicenow: %s %s -> %s; retry %d in %.2fs", method, path, status or "error",
                        attempt + 1, delay)
            attempt += 1
            self.retries += 1
            self.sleep(delay)

    def query_table(self, table: str, query: str, fields: str, page_size: int = 500) -> list[dict]:
        """Every record of ``table`` matching the encoded ``query``, read page by page (``X-Total-Count``)."""
        records: list[dict] = []
        while True:
            response = self.request("GET", f"/api/now/table/{table}", params={
                "sysparm_query": query, "sysparm_fields": fields, "sysparm_limit": str(page_size),
                "sysparm_offset": str(len(records)), "sysparm_exclude_reference_link": "true"})
            page = response.json()["result"]
            records.extend(page)
            if not page or len(records) >= int(response.headers.get("X-Total-Count", len(records))):
                return records

    def batch(self, subrequests: Sequence[SubRequest], retry_transient: bool = True) -> BatchAnswer:
        """One Batch API call carrying ``subrequests`` (ids unique); each one's result by its id.

        The call itself follows :meth:`request` (pass ``retry_transient=False`` when it writes). An answer
        that cannot be read as a batch answer raises :class:`Transient`: whatever it did is unknown.
        """
        batch_id = uuid.uuid4().hex
        response = self.request("POST", BATCH_PATH, retry_transient=retry_transient, body={
            "batch_request_id": batch_id, "rest_requests": [r.wire() for r in subrequests]})
        try:
            data = response.json()
            if str(data.get("batch_request_id")) != batch_id:
                raise ValueError(f"batch_request_id {data.get('batch_request_id')!r} is not {batch_id!r}")
            answer = BatchAnswer()
            for item in data.get("serviced_requests") or []:
                answer.served[str(item["id"])] = _sub_response(item)
            answer.unserviced = [str(u["id"] if isinstance(u, dict) else u) for u in data.get("unserviced_requests") or []]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Transient(f"POST {BATCH_PATH}: unreadable batch answer ({type(exc).__name__}: {exc})") from exc
        known = set(answer.served) | set(answer.unserviced)
        answer.missing = [r.id for r in subrequests if r.id not in known]
        return answer


def _reached(exc: Exception) -> bool:
    """Whether a request that got no answer was sent at all (not a refused or timed-out connect)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _sub_response(item: dict) -> SubResponse:
    raw = base64.b64decode(item.get("body") or "")
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    status = int(item["status_code"])
    error = None
    if not 200 <= status < 300:
        detail = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        error = (f"HTTP {status}: {detail.get('message')}: {detail.get('detail')}" if detail
                 else f"HTTP {status}: {item.get('error_message') or item.get('status_text') or raw[:300]!r}")
    return SubResponse(id=str(item["id"]), status=status, body=body if isinstance(body, dict) else None, error=error)
