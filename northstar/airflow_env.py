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
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": cfg.timezone,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": os.environ.get("NORTHSTAR_AIRFLOW_PORT", "8080"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env
