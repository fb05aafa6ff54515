"""The ServiceNow connection: Basic auth, TLS trust, retries, and the Table API calls over them.

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
* Every response is counted (``client.counter.calls``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import requests

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


class ServiceNowClient:
    """Table API over plain requests (Basic auth, TLS trust as in the sandbox README), with retries."""

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

    def request(self, method: str, path: str, params: dict | None = None, body: dict | None = None):
        """One API call under the retry policy; the response of a 2xx/3xx, else an exception (module doc)."""
        attempt, reauthed = 0, False
        while True:
            try:
                response = self.session.request(method, f"{self.base}{path}", params=params, json=body, timeout=60)
            except requests.exceptions.SSLError as exc:  # wrong server or trust: retrying will not help
                raise Transient(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
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
                    raise ServiceNowError(status, message)
            if attempt + 1 >= self.retry.max_attempts:
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
