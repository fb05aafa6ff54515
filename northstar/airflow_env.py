"""The Airflow environment Northstar runs in by default: home under ``var/airflow``, SQLite metadata.

Everything here can be overridden by setting the same ``AIRFLOW__*`` variables yourself (a firm's
deployment points them at Postgres and Celery; see docker-compose.yml).
"""

from __future__ import annotations

import os

from northstar.settings import REPO_ROOT, Settings, settings


def airflow_environment(cfg: Settings | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for any ``airflow`` command, layered over ``base`` (default: os.environ)."""
    cfg = cfg or settings()
    env = dict(os.environ if base is None else base)
    home = cfg.paths.airflow_home
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor forks this many workers up front (default 32); a few cover both DAGs here.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": cfg.timezone,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # One user, `admin`, whose generated password `make ui` keeps in var/ (0600) and prints.
        # Never all-admins: anyone who reaches the port could trigger or clear runs.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.airflow_passwords_file),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(cfg.airflow_port),
        "AIRFLOW__API__WORKERS": "1",
        # Task runners report to the API server's execution API; it must be ours, not :8080. On a
        # loaded machine with SQLite it can stall for tens of seconds: wait instead of failing.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cfg.airflow_url}/execution/",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env
