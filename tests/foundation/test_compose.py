"""The deployment file: parsed by the compose CLI when present, and checked for the stack it promises."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from northstar.settings import REPO_ROOT

pytestmark = pytest.mark.unit

COMPOSE = REPO_ROOT / "docker-compose.yml"
AIRFLOW_COMPONENTS = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose CLI not installed (make system-deps)")
def test_compose_cli_accepts_the_file():
    from northstar.stack import SECRET_VARIABLES

    env = {**os.environ, **dict.fromkeys(SECRET_VARIABLES, "test-only")}
    proc = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True, text=True, cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr


def test_full_stack_is_declared(compose):
    services = set(compose["services"])
    assert AIRFLOW_COMPONENTS <= services
    assert {"postgres", "redis", "mlflow", "sandbox", "dbt-docs", "airflow-init"} <= services


def test_airflow_runs_on_celery_with_postgres_and_redis(compose):
    for name in AIRFLOW_COMPONENTS:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert compose["services"][name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_no_secret_is_written_in_the_file():
    text = COMPOSE.read_text()
    # Every password and secret is an interpolation from the operator's .env.
    for line in text.splitlines():
        lowered = line.lower()
        key = line.split(":", 1)[0].strip()
        if key.endswith("_FILE"):  # where a secret is kept, not the secret
            continue
        if ("password" in lowered or "secret" in lowered) and ":" in line and not line.strip().startswith("#"):
            value = line.split(":", 1)[1]
            assert "${" in value or "$$" in value or value.strip() == "", line
