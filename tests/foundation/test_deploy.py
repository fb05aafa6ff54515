"""The deployment's small parts, without starting it: compose rendering, no open doors, alerts, users."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from northstar.stack import (
    SECRET_VARIABLES,
    StackError,
    interpolate,
    load_compose,
    render_service,
    stack_values,
)

pytestmark = pytest.mark.unit


def test_interpolation_follows_compose_rules():
    values = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$HOME", values) == "x-d-d--$HOME"
    with pytest.raises(StackError, match="UNSET is not set: put it in .env"):
        interpolate("${UNSET:?put it in .env}", values)


@pytest.fixture
def rendered(northstar_home):
    ports = dict.fromkeys(("postgres", "redis", "mlflow", "airflow", "salesforce", "servicenow"), 40000)
    values = stack_values(northstar_home, ports)
    compose = load_compose()
    return northstar_home, values, {name: render_service(compose, name, values, northstar_home)
                                    for name in compose["services"] if name not in ("postgres", "redis")}


def test_the_local_rendering_points_every_service_at_loopback_and_local_folders(rendered):
    cfg, values, services = rendered
    worker = services["airflow-worker"].environment
    assert worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert "@127.0.0.1:40000/airflow" in worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert worker["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert worker["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{values['REDIS_PASSWORD']}@127.0.0.1:40000/0"
    assert worker["AIRFLOW_HOME"] == str(cfg.stack_dir / "airflow")
    assert worker["NORTHSTAR_HOME"] == str(cfg.paths.var)
    assert worker["AIRFLOW__API__HOST"] == "127.0.0.1"
    mlflow = services["mlflow"]
    assert "--host=127.0.0.1" in mlflow.argv and "--app-name=basic-auth" in mlflow.argv
    assert mlflow.cwd == cfg.paths.var / "mlflow"
    assert mlflow.environment["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://mlflow:")
    assert services["sandbox"].argv[-1] == "127.0.0.1"


def test_generated_secrets_are_random_and_private(rendered):
    cfg, values, _ = rendered
    assert all(len(values[name]) >= 24 for name in SECRET_VARIABLES)
    assert len({values[name] for name in SECRET_VARIABLES}) == len(SECRET_VARIABLES)
    assert (cfg.stack_dir / ".env").stat().st_mode & 0o077 == 0


def test_no_open_doors_in_compose():
    compose = load_compose()
    services = compose["services"]
    airflow_env = services["airflow-apiserver"]["environment"]
    assert airflow_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    roles = dict(user.split(":") for user in airflow_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert "viewer" in roles.values() and list(roles.values()).count("admin") == 1
    assert "--app-name=basic-auth" in services["mlflow"]["command"]
    published = {name: spec.get("ports", []) for name, spec in services.items() if spec.get("ports")}
    # Only the Airflow UI/API is published beyond the host; MLflow and dbt docs on loopback only.
    assert set(published) == {"airflow-apiserver", "mlflow", "dbt-docs"}
    assert all(port.startswith("127.0.0.1:") for port in published["mlflow"] + published["dbt-docs"])
    for name, spec in services.items():
        assert "healthcheck" in spec or name == "airflow-init", name
    # One Fernet key and one JWT secret for every Airflow service (the shared anchor).
    keys = {services[n]["environment"]["AIRFLOW__CORE__FERNET_KEY"] for n in services if n.startswith("airflow-")}
    assert keys == {"${AIRFLOW_FERNET_KEY:?set AIRFLOW_FERNET_KEY in .env}"}


def test_every_compose_variable_is_documented_in_env_example():
    import re

    from northstar.settings import REPO_ROOT

    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", (REPO_ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^#? ?([A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), re.M))
    tuning = {"BIND_HOST", "AIRFLOW_API_HOST", "AIRFLOW_API_PORT", "AIRFLOW_API_WORKERS", "MLFLOW_HOST", "MLFLOW_PORT",
              "MLFLOW_WORKERS", "SANDBOX_HOST", "SANDBOX_SALESFORCE_PORT", "SANDBOX_SERVICENOW_PORT",
              "AIRFLOW_WORKER_CONCURRENCY", "AIRFLOW_TASK_HEARTBEAT_TIMEOUT", "AIRFLOW_USE_JOB_SCHEDULE",
              "DBT_DOCS_PUBLISH"}
    assert used - tuning <= documented, sorted(used - tuning - documented)


def test_setup_writes_the_airflow_users_passwords_file_privately(tmp_path):
    from northstar.bootstrap import write_airflow_passwords

    target = tmp_path / "auth" / "passwords.json"
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(target),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:admin,reviewer:viewer",
           "AIRFLOW_PASSWORD_OPS": "a" * 24, "AIRFLOW_PASSWORD_REVIEWER": "b" * 24}
    assert write_airflow_passwords(env) == target
    assert json.loads(target.read_text()) == {"ops": "a" * 24, "reviewer": "b" * 24}
    assert target.stat().st_mode & 0o077 == 0
    del env["AIRFLOW_PASSWORD_REVIEWER"]
    with pytest.raises(RuntimeError, match="AIRFLOW_PASSWORD_REVIEWER"):
        write_airflow_passwords(env)


def test_both_dags_promise_a_deadline():
    from datetime import timedelta

    from airflow.sdk.definitions.deadline import DagRunLogicalDateDeadline, DagRunQueuedAtDeadline

    from northstar.alerts import NOTIFIER, deadline_alerts

    nightly, intraday = deadline_alerts("nightly_client_value"), deadline_alerts("intraday_trade_recon")
    assert isinstance(nightly.reference, DagRunLogicalDateDeadline)
    # 01:30 firm-time schedule + 4h30 = 06:00 firm time
    assert nightly.interval == timedelta(hours=4, minutes=30)
    assert isinstance(intraday.reference, DagRunQueuedAtDeadline) and intraday.interval == timedelta(minutes=10)
    assert nightly.callback.path == intraday.callback.path == NOTIFIER


def test_deadline_alerts_stay_off_under_dags_test():
    """Airflow 3.3.2's `dags test` fails every run that carries a DeadlineAlert (dag_defaults.deadline)."""
    from northstar.dag_defaults import deadline, under_dags_test

    for argv in (["/venv/bin/airflow", "dags", "test", "nightly_client_value", "2026-10-30"],
                 ["/venv/lib/python3.11/site-packages/airflow/__main__.py", "dags", "test", "intraday_trade_recon"]):
        assert under_dags_test(argv)
        assert deadline("nightly_client_value", argv) is None
    for argv in (["/venv/bin/airflow", "dag-processor"], ["/venv/bin/airflow", "celery", "worker"],
                 ["/venv/bin/airflow", "dags", "list"], ["pytest", "dags", "test"]):
        assert not under_dags_test(argv)
    assert deadline("intraday_trade_recon", ["/venv/bin/airflow", "scheduler"]).name.startswith("intraday_trade_recon")


class _Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_a_missed_deadline_lands_in_the_log_and_in_slack(northstar_home, monkeypatch):
    import asyncio

    from northstar.alerts import deadline_missed

    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NORTHSTAR_DEADLINE_ALERTS", "log,slack,email")
    monkeypatch.setenv("NORTHSTAR_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv("NORTHSTAR_ALERT_EMAIL_TO", "ops@example.com")
    monkeypatch.setenv("NORTHSTAR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NORTHSTAR_SMTP_PORT", "1")  # nothing listens: e-mail fails, the others still go
    context = {"dag_run": {"dag_run_id": "scheduled__2026-10-30", "state": "running"},
               "deadline": {"deadline_time": "2026-10-30T10:00:00+00:00"}}
    try:
        # its own thread and loop, as Airflow's triggerer runs it (and safe beside a browser test's loop)
        with ThreadPoolExecutor(1) as pool:
            outcome = pool.submit(asyncio.run, deadline_missed(
                dag_id="nightly_client_value", promise="finished by 06:00 firm time", context=context)).result()
    finally:
        server.shutdown()
    # text, as Airflow stores a callback's output (a dict stopped the triggerer on Postgres)
    assert isinstance(outcome, str)
    outcome = json.loads(outcome)
    assert outcome["log"] == "sent" and outcome["slack"] == "sent" and outcome["email"].startswith("failed")
    lines = (northstar_home.paths.var / "alerts" / "deadlines.log").read_text().splitlines()
    assert json.loads(lines[-1])["run_id"] == "scheduled__2026-10-30"
    assert "missed its deadline" in _Webhook.received[-1]["text"]
