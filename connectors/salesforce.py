"""The Salesforce connection: login, TLS trust, retries and re-authentication.

``ingest`` extracts through it and ``activate`` pushes through it; both get the same login, the same
back-off and the same idea of which fault is worth retrying (:func:`is_retryable`).

Login is the SOAP partner login (username + password + security token) that simple-salesforce
performs, which works unchanged for a real org and for the sandbox:

* a real org: the ``domain`` is ``login`` (production), ``test`` (sandbox orgs) or
  ``<mydomain>.my``; it comes from the connection's ``domain`` extra, or is derived from an
  ``https://<x>.salesforce.com`` instance URL;
* any other host (the sandbox on ``127.0.0.1:PORT``): ``domain="<host:port>/services/Soap/u/<v>?"``,
  which makes simple-salesforce post to ``https://<host:port>/services/Soap/u/<v>?.salesforce.com/...``
  (the junk lands in the query string). The instance URL comes back in the login response.

TLS trust is :func:`connectors.http.http_session`'s rule: a configured CA bundle, and the environment
ignored.

simple-salesforce retries nothing but an expired session on REST calls; the pipeline adds bounded
exponential back-off for ``REQUEST_LIMIT_EXCEEDED``, 5xx and connection errors, and one
re-login for an expired session on any call (Bulk API 2.0 calls never refresh by themselves).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from connectors.http import http_session
from connectors.retry import RetryPolicy
from northstar.errors import ExpectedError
from northstar.settings import Endpoint

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "59.0"
T = TypeVar("T")


class SalesforceCredentialsMissing(ExpectedError):
    """No username/password configured (neither Airflow connection, environment nor sandbox setup)."""


def soap_domain(endpoint: Endpoint, version: str) -> str:
    """The ``domain`` argument for simple-salesforce's SOAP login (see the module docstring)."""
    if endpoint.extra.get("domain"):
        return str(endpoint.extra["domain"])
    parsed = urlparse(endpoint.url)
    host = parsed.hostname or ""
    if host.endswith(".salesforce.com"):
        return host.removesuffix(".salesforce.com")
    return f"{parsed.netloc}/services/Soap/u/{version}?"


def login(endpoint: Endpoint, version: str | None = None) -> Salesforce:
    """A logged-in simple-salesforce client for this endpoint."""
    if not endpoint.username or endpoint.password is None:
        raise SalesforceCredentialsMissing(
            "Salesforce credentials are not configured: set the salesforce_default Airflow connection, "
            "NORTHSTAR_SALESFORCE_USERNAME/_PASSWORD/_SECURITY_TOKEN, or run `python -m northstar setup` "
            "for the sandbox"
        )
    version = version or str(endpoint.extra.get("version") or DEFAULT_API_VERSION)
    token = endpoint.security_token.reveal() if endpoint.security_token else ""
    log.info("salesforce: logging in to %s as configured user", urlparse(endpoint.url).netloc)
    return Salesforce(
        username=endpoint.username,
        password=endpoint.password.reveal(),
        security_token=token,
        domain=soap_domain(endpoint, version),
        version=version,
        session=http_session(endpoint),
        client_id="northstar",
    )


def is_retryable(exc: Exception) -> bool:
    """A fault worth retrying: the org's API limit, a 5xx, a dropped connection or a timeout."""
    if isinstance(exc, SalesforceRefusedRequest):
        return "REQUEST_LIMIT_EXCEEDED" in str(exc.content)
    if isinstance(exc, SalesforceGeneralError):
        return int(getattr(exc, "status", 0) or 0) >= 500
    if isinstance(exc, requests.exceptions.SSLError):
        # A certificate that does not verify is the wrong server or a misconfiguration, not a blip:
        # retrying it only delays the failure (and could reach a foreign server's API).
        return False
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class SalesforceConnection:
    """A client plus the retry/re-login policy; ``call`` runs one API operation under that policy."""

    def __init__(
        self,
        connect: Callable[[], Salesforce],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._connect = connect
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.sf = connect()
        self.retries = 0
        self.relogins = 0

    def relogin(self) -> None:
        self.sf = self._connect()
        self.relogins += 1

    def call(self, operation: Callable[[Salesforce], T], what: str = "call") -> T:
        """Run ``operation(sf)``; retry transient faults, re-login once on an expired session."""
        attempt = 0
        relogged = False
        while True:
            try:
                return operation(self.sf)
            except SalesforceExpiredSession:
                if relogged:
                    raise
                log.warning("salesforce: session expired during %s; logging in again", what)
                self.relogin()
                relogged = True
            except Exception as exc:
                if not is_retryable(exc) or attempt + 1 >= self.retry.max_attempts:
                    raise
                delay = self.retry.delay(attempt)
                log.warning(
                    "salesforce: %s failed (%s); retry %d/%d in %.2fs",
                    what, type(exc).__name__, attempt + 1, self.retry.max_attempts - 1, delay,
                )
                attempt += 1
                self.retries += 1
                self._sleep(delay)
