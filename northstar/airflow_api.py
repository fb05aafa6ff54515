"""Airflow's public REST API (v2) as Northstar drives it: log in, trigger a DAG run, wait, read back.

A run triggered here is a scheduler-driven run (queued by the API server, scheduled by the
scheduler, executed by whatever executor the deployment uses), not ``airflow dags test``. The
demo, the UI launcher and the deployment tests share this one client.

Authentication is a JWT from the auth manager's ``/auth/token`` endpoint (the simple auth
manager takes a username and password; the token is sent as a bearer token and refreshed on 401).
The password is never logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

FINISHED_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    pass


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float  # from start_date to end_date as the scheduler recorded them
    detail: dict

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


class AirflowApi:
    """A small client for ``/api/v2`` on one Airflow API server (e.g. ``http://127.0.0.1:8080``)."""

    def __init__(self, base_url: str, username: str, password: str, timeout_s: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._session.trust_env = False  # always straight to the API server, never through a proxy
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"AirflowApi({self.base_url!r}, user={self._username!r})"

    # --- plumbing -------------------------------------------------------------------------------

    def login(self) -> str:
        response = self._session.post(
            f"{self.base_url}/auth/token",
            json={"username": self._username, "password": self._password},
            timeout=self._timeout_s,
        )
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"login as {self._username!r} failed: HTTP {response.status_code}")
        self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One call to ``/api/v2<path>``; logs in first and once more when the token has expired."""
        if self._token is None:
            self.login()
        url = f"{self.base_url}/api/v2{path}"
        extra_headers = kwargs.pop("headers", {})
        for attempt in (1, 2):
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}"}
            response = self._session.request(method, url, headers=headers, timeout=self._timeout_s, **kwargs)
            if response.status_code == 401 and attempt == 1:
                self.login()
                continue
            return response
        return response

    def _json(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs) -> dict:
        response = self.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise AirflowApiError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    # --- what callers use -------------------------------------------------------------------------

    def healthy(self) -> bool:
        """True when the API server answers and reports a healthy metadata database and scheduler."""
        try:
            response = self._session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        if response.status_code != 200:
            return False
        health = response.json()
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180.0, poll_s: float = 2.0) -> dict:
        """Wait until the DAG processor has parsed ``dag_id`` into the metadata database."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.request("GET", f"/dags/{quote(dag_id)}")
            if response.status_code == 200:
                return response.json()
            if time.monotonic() > deadline:
                raise AirflowApiError(f"DAG {dag_id} not parsed within {timeout_s:.0f}s (last HTTP {response.status_code})")
            time.sleep(poll_s)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._json("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None = None, run_id: str | None = None,
                conf: dict | None = None, note: str | None = None) -> str:
        """Queue a run of ``dag_id`` (the scheduler picks it up); returns its run id.

        ``logical_date`` is an ISO timestamp with a timezone, or None for a run with no logical date
        (the run then uses its ``run_after`` time).
        """
        body: dict = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        if note:
            body["note"] = note
        created = self._json("POST", f"/dags/{quote(dag_id)}/dagRuns", expect=(200,), json=body)
        log.info("triggered %s run %s", dag_id, created["dag_run_id"])
        return created["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self._json("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}")

    def wait(self, dag_id: str, run_id: str, timeout_s: float = 900.0, poll_s: float = 3.0) -> DagRunResult:
        """Poll a run until it succeeds or fails; raises AirflowApiError on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in FINISHED_STATES:
                return DagRunResult(dag_id, run_id, run["state"], _seconds(run), run)
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} run {run_id} still {run['state']} after {timeout_s:.0f}s")
            time.sleep(poll_s)

    def trigger_and_wait(self, dag_id: str, logical_date: str | None = None, timeout_s: float = 900.0,
                         **kwargs) -> DagRunResult:
        return self.wait(dag_id, self.trigger(dag_id, logical_date, **kwargs), timeout_s=timeout_s)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        body = self._json("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                          params={"limit": 100})
        return body["task_instances"]

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of one task instance (hostname, state, times), oldest first."""
        body = self._json("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                                 f"{quote(task_id)}/tries")
        return body["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """One try's log as text, fetched through the API server (which reads it from the worker)."""
        body = self._json(
            "GET",
            f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id)}/logs/{try_number}",
            params={"full_content": "true"}, headers={"Accept": "application/json"},
        )
        content = body.get("content")
        if isinstance(content, list):  # structured log lines
            return "\n".join(line.get("event", "") if isinstance(line, dict) else str(line) for line in content)
        return str(content or "")


def _seconds(run: dict) -> float:
    from datetime import datetime

    start, end = run.get("start_date"), run.get("end_date")
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
