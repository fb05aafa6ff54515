"""DAG runs the way production makes them: a running scheduler, runs triggered through Airflow's
REST API (``northstar.airflow_api``: public API v2, JWT from the simple auth manager), one logical
date per trading-day slot.

``python -m northstar demo`` uses this so that every run, its task logs and its true durations are
in the Airflow metadata and log folder that ``make ui`` shows. ``AirflowStack`` starts the API
server, scheduler and DAG processor of ``northstar.ui`` on a free port with cron scheduling off
(``use_job_schedule``: only the runs we trigger run), and stops them, children included.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from northstar.airflow_api import FINISHED_STATES, AirflowApi, AirflowApiError
from northstar.settings import Settings
from northstar.stack import free_port

log = logging.getLogger(__name__)

TASK_DONE = {"success", "failed", "skipped", "upstream_failed", "removed"}


class DagRunFailed(RuntimeError):
    pass


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, str]


class AirflowStack:
    """Airflow's API server, scheduler and DAG processor for the length of a ``with`` block; ``api``
    is the REST client (``northstar.airflow_api``) logged in as the launcher's user."""

    def __init__(self, cfg: Settings, extra_env: dict[str, str] | None = None, port: int | None = None,
                 startup_timeout_s: float = 300.0):
        self.cfg = dataclasses.replace(cfg, airflow_port=port or free_port())
        self.extra_env = {
            # Only the runs we trigger: the cron and asset schedules stay with a real deployment.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            **(extra_env or {}),
        }
        self.startup_timeout_s = startup_timeout_s
        self.running = []
        self.api: AirflowApi | None = None

    @property
    def url(self) -> str:
        return self.cfg.airflow_url

    def __enter__(self) -> AirflowStack:
        from northstar.ui import airflow_login, airflow_services, launch

        log_dir = self.cfg.paths.var / "demo"
        log_dir.mkdir(parents=True, exist_ok=True)
        for service in airflow_services(self.cfg):
            if service.name == "Airflow triggerer":  # no deferrable task or asset watcher is needed here
                continue
            service.env.update(self.extra_env)
            self.running.append(launch(service, log_dir))
        try:
            user, password = airflow_login(self.cfg)
            # On SQLite under load a call can stall for a minute while the scheduler writes.
            self.api = AirflowApi(self.url, user, password, timeout_s=120.0)
            self._wait_until_up()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        from northstar.ui import stop_all

        stop_all(self.running)
        self.running = []

    def check_alive(self) -> None:
        for r in self.running:
            code = r.process.poll()
            if code is not None:
                from northstar.ui import log_tail

                raise DagRunFailed(f"{r.service.name} exited with code {code}; last lines of {r.log}:\n{log_tail(r.log)}")

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if self.api.healthy():
                return
            time.sleep(1)
        raise DagRunFailed(f"Airflow did not become healthy on {self.url} within {self.startup_timeout_s:.0f}s")


@dataclass(frozen=True)
class Slot:
    """One run to make: a DAG, its logical date (ISO, with the firm's UTC offset) and its run id."""

    dag_id: str
    logical_date: str
    run_id: str


def watch_run(api: AirflowApi, dag_id: str, run_id: str, progress: Callable[[str], None] | None = None,
              timeout_s: float = 3600.0, poll_s: float = 3.0,
              check_alive: Callable[[], None] | None = None) -> RunResult:
    """Poll a run until it finishes; ``progress`` gets a line whenever tasks done / current task change.

    ``seconds`` is the run's duration as the scheduler recorded it (start to end date). A slow or
    busy API server (SQLite under load) is asked again rather than failing the run.
    """
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout_s:
        if check_alive:
            check_alive()
        try:
            run = api.dag_run(dag_id, run_id)
            tasks = {ti["task_id"]: ti["state"] or "none" for ti in api.task_instances(dag_id, run_id)}
        except (requests.RequestException, AirflowApiError) as exc:
            log.info("Airflow API slow or busy (%s); asking again", type(exc).__name__)
            time.sleep(poll_s)
            continue
        done = sum(1 for s in tasks.values() if s in TASK_DONE)
        current = sorted(t for t, s in tasks.items() if s in {"running", "queued", "scheduled"})
        line = f"{dag_id}: {done}/{len(tasks)} tasks done" + (f", now {', '.join(current)}" if current else "")
        if progress and line != last:
            progress(f"{line} ({time.monotonic() - started:.0f}s)")
            last = line
        if run["state"] in FINISHED_STATES:
            return RunResult(dag_id, run_id, run["state"], _recorded_seconds(run) or time.monotonic() - started,
                             tasks)
        time.sleep(poll_s)
    raise DagRunFailed(f"{dag_id} run {run_id} did not finish within {timeout_s:.0f}s")


def failure_detail(api: AirflowApi, result: RunResult, lines: int = 40) -> str:
    """The last lines of each failed task's log, read through the API server (as the UI reads them)."""
    detail = []
    for task_id, state in result.tasks.items():
        if state != "failed":
            continue
        try:
            tries = api.task_tries(result.dag_id, result.run_id, task_id)
            text = api.task_log(result.dag_id, result.run_id, task_id, try_number=tries[-1]["try_number"] if tries else 1)
        except (requests.RequestException, AirflowApiError) as exc:
            text = f"(log not readable through the API: {exc})"
        detail.append(f"--- {task_id}:\n" + "\n".join(text.splitlines()[-lines:]))
    return "\n".join(detail)


def trigger_runs(api: AirflowApi, slots: list[Slot], progress: Callable[[str], None] = print,
                 check_alive: Callable[[], None] | None = None, timeout_s: float = 3600.0) -> list[RunResult]:
    """Make each run through the REST API of a running scheduler, one after the other, as a trading day
    would see them; raise ``DagRunFailed`` (with the failed tasks' log tails) when one does not succeed.

    Each DAG is unpaused only while its runs go and paused again after, so the scheduler starts
    nothing of its own afterwards (a cron tick, a drop-folder event) when a person opens the UI.
    """
    results: list[RunResult] = []
    dag_ids = list(dict.fromkeys(slot.dag_id for slot in slots))
    for dag_id in dag_ids:
        api.wait_for_dag(dag_id, timeout_s=300.0)
    try:
        for dag_id in dag_ids:
            api.set_paused(dag_id, False)
        for number, slot in enumerate(slots, start=1):
            progress(f"run {number}/{len(slots)}: {slot.dag_id} at {slot.logical_date} "
                     f"(run id {slot.run_id}, triggered through {api.base_url}/api/v2)")
            api.trigger(slot.dag_id, slot.logical_date, run_id=slot.run_id)
            result = watch_run(api, slot.dag_id, slot.run_id, progress=lambda line: progress("  " + line),
                               timeout_s=timeout_s, check_alive=check_alive)
            if result.state != "success":
                failed = [t for t, state in result.tasks.items() if state == "failed"]
                raise DagRunFailed(f"DAG {slot.dag_id} run {slot.run_id} {result.state} after {result.seconds:.0f}s; "
                                   f"failed tasks: {', '.join(failed) or 'none'}\n{failure_detail(api, result)}")
            progress(f"  {slot.dag_id} succeeded in {result.seconds:.0f}s")
            results.append(result)
    finally:
        for dag_id in dag_ids:
            try:
                api.set_paused(dag_id, True)
            except (requests.RequestException, AirflowApiError) as exc:
                log.warning("could not pause %s again: %s", dag_id, exc)
    return results


def _recorded_seconds(run: dict) -> float | None:
    from datetime import datetime

    start, end = run.get("start_date"), run.get("end_date")
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
