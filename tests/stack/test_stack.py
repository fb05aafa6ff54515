"""The production topology, exercised: Airflow on Celery (two workers) with Postgres and Redis, MLflow
on Postgres, both DAGs triggered through the REST API as scheduler-driven runs.

One stack serves the module (tests/stack/conftest.py). The DAG test triggers the intraday and the
nightly run together (the second run competes for the one-slot `warehouse` pool), kills the worker
running `send_incidents` while it writes to ServiceNow, and then checks what a person would check:
both runs succeeded, tasks ran on both workers, warehouse writers never overlapped, every break has
exactly one incident, the models are in MLflow's Postgres store with `@champion`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from northstar.airflow_api import AirflowApi
from northstar.stack import LOCAL_OVERRIDES, LOCAL_SERVICES, load_compose, render_service

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3000)]

NIGHTLY, INTRADAY = "nightly_client_value", "intraday_trade_recon"
MODELS = ("northstar-clv", "northstar-churn", "northstar-break-anomaly")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_each_process_runs_what_compose_declares(stack):
    """Compose stays honest: every service runs compose's command and environment, rendered."""
    compose = load_compose()
    for name, service in LOCAL_SERVICES:
        rendered = render_service(compose, service, stack.values, stack.cfg)
        pid = stack.state.pids[name]
        running_env = _environ(pid)
        expected = {**rendered.environment, **LOCAL_OVERRIDES.get(name, {})}
        assert {k: running_env.get(k) for k in expected} == expected, name
        # Compose owns every Airflow/Northstar/MLflow setting: nothing else leaks in from the caller.
        owned = {k for k in running_env if k.startswith(("AIRFLOW", "MLFLOW_", "NORTHSTAR_"))}
        assert owned - set(expected) <= {"NORTHSTAR_STACK_ID", "NORTHSTAR_STACK_SERVICE"}, name
        # Airflow rewrites its process title, so the command is the one recorded at launch.
        launched = stack.state.argv[name]
        assert launched[-(len(rendered.argv) - 1):] == rendered.argv[1:], name
        assert Path(launched[0]).name in (rendered.argv[0], "python") or launched[0] == sys.executable, name


def _listening_inodes() -> dict[str, str]:
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes[fields[9]] = fields[1]
    return inodes


def _address(hex_address: str) -> str:
    host = hex_address.split(":")[0]
    if len(host) == 8:
        return ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return "::1" if host == "00000000000000000000000001000000" else host


def test_nothing_listens_beyond_loopback(stack):
    listening = _listening_inodes()
    found = {}
    for pid in stack._stack_processes():
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            if link.startswith("socket:[") and link[8:-1] in listening:
                found[link] = (_environ(pid).get("NORTHSTAR_STACK_SERVICE"), _address(listening[link[8:-1]]))
    services = {service for service, _ in found.values()}
    assert {"postgres", "redis", "mlflow", "sandbox", "airflow-apiserver"} <= services
    assert {address for _, address in found.values()} == {"127.0.0.1"}, found


def _api(stack) -> AirflowApi:
    return AirflowApi(stack.airflow_url(), "ops", stack.values["AIRFLOW_OPS_PASSWORD"])


def test_viewer_cannot_trigger_and_strangers_cannot_log_in(stack):
    from northstar.airflow_api import AirflowApiError

    viewer = AirflowApi(stack.airflow_url(), "reviewer", stack.values["AIRFLOW_REVIEWER_PASSWORD"])
    viewer.wait_for_dag(INTRADAY)
    assert viewer.request("POST", f"/dags/{INTRADAY}/dagRuns", json={"logical_date": None}).status_code == 403
    with pytest.raises(AirflowApiError):
        AirflowApi(stack.airflow_url(), "ops", "not-the-password").login()
    import requests

    assert requests.get(f"{stack.mlflow_url()}/api/2.0/mlflow/registered-models/search", timeout=10).status_code == 401


def _wait_for_running(api, dag_id, run_id, task_id, timeout_s=1200) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ti = next(t for t in api.task_instances(dag_id, run_id) if t["task_id"] == task_id)
        if ti["state"] == "running" and ti["hostname"]:
            return ti
        if ti["state"] in ("success", "failed", "upstream_failed", "skipped"):
            pytest.fail(f"{task_id} reached {ti['state']} before the worker could be killed")
        time.sleep(0.5)
    pytest.fail(f"{task_id} never ran")


def _overlaps(intervals):
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


@pytest.fixture(scope="module")
def runs(stack):
    """Both DAGs through the REST API at once; the worker sending incidents is killed mid-send."""
    from sandbox.server import admin_call

    api = _api(stack)
    for dag_id in (INTRADAY, NIGHTLY):
        api.wait_for_dag(dag_id)
        api.set_paused(dag_id, False)
    state = stack.cfg.paths.sandbox_state
    # Slow ServiceNow down so `send_incidents` is still writing when its worker dies.
    admin_call("servicenow", "POST", "faults", {"reset": True, "delay_ms": 400}, state_dir=state)
    admin_call("servicenow", "POST", "reset-stats", state_dir=state)
    started = time.monotonic()
    intraday = api.trigger(INTRADAY, logical_date="2026-10-30T10:00:00-04:00")
    nightly = api.trigger(NIGHTLY, logical_date="2026-10-30T01:30:00-04:00")
    sending = _wait_for_running(api, INTRADAY, intraday, "send_incidents")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        writes = admin_call("servicenow", "GET", "stats", state_dir=state)["writes"]
        if sum(writes.values()):
            break
        time.sleep(0.2)
    victim = f"airflow-{sending['hostname']}"
    killed_processes = stack.kill(victim)
    killed_at = time.monotonic() - started
    # ServiceNow at full speed again: the slowdown only had to hold the send open until the kill.
    admin_call("servicenow", "POST", "faults", {"reset": True}, state_dir=state)
    results = {dag_id: api.wait(dag_id, run_id, timeout_s=2400) for dag_id, run_id in
               ((INTRADAY, intraday), (NIGHTLY, nightly))}
    print(f"\nstack up {stack.state.started_s:.0f}s; worker {victim} killed at {killed_at:.0f}s "
          f"({killed_processes} processes); " + "; ".join(f"{d} {r.state} in {r.seconds:.0f}s" for d, r in results.items()))
    return {"api": api, "results": results, "victim": victim, "killed_try": sending["try_number"]}


def test_both_runs_succeed_on_both_workers(runs):
    api, results = runs["api"], runs["results"]
    assert {dag_id: r.state for dag_id, r in results.items()} == {INTRADAY: "success", NIGHTLY: "success"}
    hosts = {ti["hostname"] for r in results.values() for ti in api.task_instances(r.dag_id, r.run_id)
             if ti["state"] == "success"}
    assert {"worker-1", "worker-2"} <= hosts


def test_the_killed_task_was_retried_on_the_other_worker(runs):
    api, run = runs["api"], runs["results"][INTRADAY]
    tries = api.task_tries(INTRADAY, run.run_id, "send_incidents")
    assert len(tries) >= 2
    assert tries[0]["hostname"] == runs["victim"].removeprefix("airflow-") and tries[0]["state"] != "success"
    assert tries[-1]["state"] == "success"
    assert tries[-1]["hostname"] != tries[0]["hostname"]


def test_no_incident_written_twice(runs, stack):
    with sqlite3.connect(stack.cfg.paths.sandbox_state / "servicenow.db") as sn:
        per_break = dict(sn.execute("select correlation_id, count(*) from incident group by 1").fetchall())
    assert per_break and max(per_break.values()) == 1


def test_warehouse_writers_never_overlap(runs):
    """Every try of every `warehouse` pool task that ran on a worker, both runs, the killed try
    included: no two at once. (A skipped task ran nowhere: Airflow stamps it start = end = skip time.)"""
    api = runs["api"]
    intervals = []
    for run in runs["results"].values():
        for ti in api.task_instances(run.dag_id, run.run_id):
            if ti["pool"] != "warehouse":
                continue
            for attempt in api.task_tries(run.dag_id, run.run_id, ti["task_id"]):
                if attempt["start_date"] and attempt["hostname"]:
                    intervals.append((attempt["start_date"], attempt["end_date"] or "9999", ti["task_id"]))
    assert len(intervals) >= 15
    assert _overlaps([(start, end) for start, end, _ in intervals]) == []


def test_task_logs_read_back_through_the_api(runs):
    api, run = runs["api"], runs["results"][NIGHTLY]
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(NIGHTLY, run.run_id)}
    assert states["send_salesforce_push"] == "success" and states["build_warehouse"] == "success"
    text = api.task_log(NIGHTLY, run.run_id, "build_warehouse", 1)
    assert "dbt" in text.lower() and len(text) > 200


def _logged_model(client, version):
    """The logged model a registered version was made from. Over REST a version carries no model_id
    (MLflow 3.17's ModelVersion proto has none), so read it from the version's ``models:/m-<id>``
    source, or find it by the training run."""
    from ml.registry import logged_model_id

    model_id = logged_model_id(version.source)
    if model_id is not None:
        return client.get_logged_model(model_id)
    experiment_id = client.get_run(version.run_id).info.experiment_id
    found = client.search_logged_models(experiment_ids=[experiment_id],
                                        filter_string=f"source_run_id = '{version.run_id}'")
    assert len(found) == 1, (version.name, version.version, version.source, found)
    return found[0]


def test_models_registered_in_mlflow_on_postgres(runs, stack):
    import psycopg2
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = stack.values["MLFLOW_ADMIN_PASSWORD"]
    try:
        client = MlflowClient(tracking_uri=stack.mlflow_url(), registry_uri=stack.mlflow_url())
        models = {m.name: m for m in client.search_registered_models()}
        # the workers sent the artifacts through the server, into compose's artifacts destination
        champions = {name: _logged_model(client, client.get_model_version_by_alias(name, "champion"))
                     for name in MODELS}
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME")
        os.environ.pop("MLFLOW_TRACKING_PASSWORD")
    destination = stack.cfg.paths.var / "mlflow" / "artifacts"
    for name in MODELS:
        assert "champion" in (models[name].aliases or {}), name
        location = champions[name].artifact_location
        assert location.startswith("mlflow-artifacts:/"), location
        assert (destination / location.removeprefix("mlflow-artifacts:/") / "MLmodel").is_file(), location
    with psycopg2.connect(host="127.0.0.1", port=stack.state.ports["postgres"], user="mlflow",
                          password=stack.values["MLFLOW_DB_PASSWORD"], dbname="mlflow") as pg, pg.cursor() as cur:
        cur.execute("select name, alias from registered_model_aliases where alias = 'champion'")
        assert {name for name, _ in cur.fetchall()} >= set(MODELS)


def test_a_missed_deadline_lands_in_the_log(runs, stack):
    """The nightly run's deadline (06:00 firm time on its logical date) had passed when it was
    triggered: the scheduler marks it missed and the triggerer runs Northstar's notifier, which
    appends the alert to the log a person reads (northstar/alerts.py)."""
    nightly = runs["results"][NIGHTLY]
    path = stack.cfg.paths.var / "alerts" / "deadlines.log"
    alerts = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    assert [a for a in alerts if a["dag_id"] == NIGHTLY and a["run_id"] == nightly.run_id
            and a["promise"] == "finished by 06:00 firm time"], alerts


def test_every_service_but_the_killed_worker_is_still_running(runs, stack):
    """Nothing else fell over on the way (the triggerer once died storing the notifier's result)."""
    assert {name for name, alive in stack.status().items() if not alive} == {runs["victim"]}
