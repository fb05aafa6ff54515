"""Fault injection and request statistics for the sandbox servers.

Each server owns one ``Faults`` object, switched per test over ``POST /__sandbox/faults`` (JSON, the
same Basic credentials as the API) or ``python -m sandbox faults``. The JSON keys:

``api_limit_after``   N: the next N API calls succeed, then every call is refused (Salesforce 403
                      REQUEST_LIMIT_EXCEEDED, ServiceNow 429) until faults are reset.
``unavailable``       N: the next N API calls answer 503.
``expire_session``    N: the next N API calls answer 401 (Salesforce INVALID_SESSION_ID; keep it 1, a
                      one-shot, so simple-salesforce's re-login succeeds).
``fail_records``      {"values": [...], "code": "DUPLICATE_VALUE" | "UNABLE_TO_LOCK_ROW" | ...,
                      "field": "Household_Id__c" (optional; default the job's external id or Id)}:
                      Bulk 2.0 ingest and sObject Collections rows whose key is listed fail.
                      ServiceNow: incident creates and updates whose ``correlation_id`` is listed fail
                      with HTTP ``status`` (default 400, a data policy; 503 or 429 for a transient
                      refusal), through the Table API and inside a Batch API call alike.
``fail_bulk_job``     "message": the next Bulk 2.0 job ends Failed with this errorMessage (one-shot).
``in_progress_polls`` N: each Bulk 2.0 job reports InProgress for N polls before JobComplete.
``delay_ms``          N: every API response is delayed by N milliseconds.
``strict_close_info`` bool (ServiceNow, default true): resolving/closing needs close_code+close_notes.
``batch_unavailable`` bool (ServiceNow): ``POST /api/now/v1/batch`` answers 404, as an instance or gateway
                      that does not expose the Batch API does.
``batch_serve_limit`` N (ServiceNow): a Batch API call services at most N of its requests and lists the
                      rest in ``unserviced_requests``, as a real instance does when a batch reaches its
                      time or size limit; null: no limit.
``lose_responses``    N: the next N API calls that write are applied, then the connection is closed
                      without an answer (a response lost on the way back: a proxy timeout, a dropped link).
``reset``             true: clear every fault before applying the rest of the body.

``GET /__sandbox/stats`` returns request and write counters; ``POST /__sandbox/reset-stats`` zeroes them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

FAULT_KEYS = {
    "api_limit_after", "unavailable", "expire_session", "fail_records", "fail_bulk_job",
    "in_progress_polls", "delay_ms", "strict_close_info", "batch_unavailable", "batch_serve_limit",
    "lose_responses",
}


def _count(value, *, nullable: bool = False, most: int = 10_000_000) -> str | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        return f"must be a whole number from 0 to {most}" + (" or null" if nullable else "")
    return None


def _invalid(key: str, value) -> str | None:
    """Why value is not a valid setting for key (None when it is)."""
    if key in {"api_limit_after", "batch_serve_limit"}:
        return _count(value, nullable=True)
    if key in {"unavailable", "expire_session", "in_progress_polls", "lose_responses"}:
        return _count(value)
    if key == "delay_ms":
        return _count(value, most=60_000)
    if key in {"strict_close_info", "batch_unavailable", "reset"}:
        return None if isinstance(value, bool) else "must be true or false"
    if key == "fail_bulk_job":
        return None if value is None or (isinstance(value, str) and value) else "must be a message or null"
    if key == "fail_records":
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("values"), list):
            return 'must be {"values": [...], "code": "...", "field": "...", "message": "..."} or null'
        extra = set(value) - {"values", "code", "field", "message", "status"}
        if extra:
            return f"unknown keys {sorted(extra)}"
        status = value.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            return "status must be an HTTP error status (400 to 599)"
        if any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in value["values"]):
            return "values must be strings or numbers"
        if any(k in value and not isinstance(value[k], str) for k in ("code", "field", "message")):
            return "code, field and message must be strings"
        return None
    return "unknown fault key"


@dataclass
class FaultSettings:
    api_limit_after: int | None = None
    unavailable: int = 0
    expire_session: int = 0
    fail_records: dict | None = None
    fail_bulk_job: str | None = None
    in_progress_polls: int = 0
    delay_ms: int = 0
    strict_close_info: bool = True
    batch_unavailable: bool = False
    batch_serve_limit: int | None = None
    lose_responses: int = 0


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)
    writes: Counter = field(default_factory=Counter)
    records_written: Counter = field(default_factory=Counter)
    api_calls: int = 0

    def as_json(self) -> dict:
        return {
            "requests": dict(self.requests),
            "writes": dict(self.writes),
            "records_written": dict(self.records_written),
            "total_requests": sum(self.requests.values()),
            "total_writes": sum(self.writes.values()),
            "total_records_written": sum(self.records_written.values()),
            "api_calls": self.api_calls,
        }


class Faults:
    """Thread-safe fault switches plus counters, shared by every request thread of one server."""

    def __init__(self, daily_limit: int = 15000):
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self.stats = Stats()
        self.daily_limit = daily_limit
        self._calls_since_limit = 0

    # --- admin ------------------------------------------------------------------------------

    def configure(self, body: dict) -> dict:
        """Apply fault switches; the whole body is validated first, so a bad one changes nothing."""
        if not isinstance(body, dict):
            raise ValueError("the fault settings must be a JSON object")
        unknown = set(body) - FAULT_KEYS - {"reset"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        problems = [f"{key}: {problem}" for key, value in body.items()
                    if (problem := _invalid(key, value)) is not None]
        if problems:
            raise ValueError("invalid fault settings: " + "; ".join(problems))
        with self._lock:
            if body.get("reset"):
                self.settings = FaultSettings()
            for key, value in body.items():
                if key != "reset":
                    setattr(self.settings, key, value)
            if "api_limit_after" in body:
                self._calls_since_limit = 0
            return self.describe()

    def describe(self) -> dict:
        data = asdict(self.settings)
        data["calls_since_limit_set"] = self._calls_since_limit
        return data

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    # --- per request ------------------------------------------------------------------------

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self.stats.requests[endpoint] += 1

    def count_write(self, endpoint: str, records: int = 1) -> None:
        with self._lock:
            self.stats.writes[endpoint] += 1
            self.stats.records_written[endpoint] += records

    def before_api_call(self) -> str | None:
        """Decide the fault for this API call: None, 'limit', 'unavailable' or 'expired'."""
        delay = self.settings.delay_ms
        if delay:
            time.sleep(delay / 1000)
        with self._lock:
            s = self.settings
            if s.api_limit_after is not None and self._calls_since_limit >= s.api_limit_after:
                return "limit"
            if s.unavailable > 0:
                s.unavailable -= 1
                return "unavailable"
            if s.expire_session > 0:
                s.expire_session -= 1
                return "expired"
            self.stats.api_calls += 1
            if s.api_limit_after is not None:
                self._calls_since_limit += 1
            return None

    def usage(self) -> tuple[int, int]:
        """(used, max) for Sforce-Limit-Info; an exhausted limit shows used == max."""
        with self._lock:
            used = self.stats.api_calls
            s = self.settings
            if s.api_limit_after is not None:
                maximum = used - self._calls_since_limit + s.api_limit_after
                return min(used, maximum), maximum
            return used, self.daily_limit

    def total_writes(self) -> int:
        with self._lock:
            return sum(self.stats.writes.values())

    def take_lost_response(self) -> bool:
        """True when this call's answer must be lost (one of ``lose_responses``); counts it down."""
        with self._lock:
            if self.settings.lose_responses > 0:
                self.settings.lose_responses -= 1
                return True
            return False

    def take_bulk_job_failure(self) -> str | None:
        with self._lock:
            message, self.settings.fail_bulk_job = self.settings.fail_bulk_job, None
            return message

    def record_failure(self, key_field: str, value) -> tuple[str, str] | None:
        """(code, message) when this record must fail, per the fail_records switch."""
        spec = self.settings.fail_records
        if not spec or value is None:
            return None
        wanted_field = spec.get("field")
        if wanted_field and wanted_field.lower() != key_field.lower():
            return None
        if str(value) not in {str(v) for v in spec.get("values", [])}:
            return None
        code = spec.get("code", "DUPLICATE_VALUE")
        messages = {
            "DUPLICATE_VALUE": f"duplicate value found: {key_field} duplicates value on record with id: {value}",
            "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record or 1 records",
        }
        return code, spec.get("message") or messages.get(code, f"{code} (sandbox fault)")
