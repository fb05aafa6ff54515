"""Retry policy and API-call counting, the same for every connector.

``RetryPolicy`` is the bounded exponential back-off each client applies to the faults its system calls
transient (which faults those are is the client's rule: :func:`connectors.salesforce.is_retryable`,
:data:`connectors.servicenow.TRANSIENT_STATUSES`). ``CallCounter`` counts what the external system was
actually asked, retries and logins included, for the send reports and the benches.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off: delay = min(max_delay, base_delay * 2**attempt)."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2**attempt))


class CallCounter:
    """Counts every HTTP response a requests.Session receives (login, REST, Bulk, retries included)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, response: requests.Response, *args, **kwargs) -> requests.Response:
        self.calls += 1
        return response

    def attach(self, session: requests.Session) -> None:
        if self not in session.hooks["response"]:
            session.hooks["response"].append(self)
