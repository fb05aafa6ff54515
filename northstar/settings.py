"""The one place Northstar reads its configuration from.

Every path, endpoint and credential the stages use is resolved here, from environment variables
prefixed ``NORTHSTAR_`` with embedded defaults under the git-ignored ``var/`` folder at the
repository root. Secrets are read from Airflow connections (``salesforce_default``,
``servicenow_default``) when Airflow is configured, otherwise from environment variables, and
never appear in ``repr`` output or logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "NORTHSTAR_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def _path(name: str, default: Path) -> Path:
    value = _env(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Secret:
    """A credential value that never prints itself."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def reveal(self) -> str:
        return self.value


@dataclass(frozen=True)
class Paths:
    var: Path
    warehouse: Path
    landing: Path
    drop: Path
    truth: Path
    sandbox_state: Path
    mlflow_dir: Path
    airflow_home: Path
    dbt_project: Path
    dbt_profiles: Path
    dbt_target_dir: Path
    gx_root: Path

    def ensure(self) -> None:
        for folder in (
            self.var,
            self.warehouse.parent,
            self.landing,
            self.drop,
            self.truth,
            self.sandbox_state,
            self.mlflow_dir,
            self.airflow_home,
            self.gx_root,
        ):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Endpoint:
    """An external system the pipeline talks to (a real one or the sandbox)."""

    url: str
    username: str | None
    password: Secret | None
    security_token: Secret | None = None
    ca_bundle: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def host_port(self) -> str:
        parsed = urlparse(self.url)
        return parsed.netloc


@dataclass(frozen=True)
class Settings:
    paths: Paths
    scale: str
    seed: int
    timezone: str
    sandbox_host: str
    salesforce_port: int
    servicenow_port: int
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    kill_switch: bool
    # Where the break-anomaly model may take labels from besides ServiceNow close codes: a folder of
    # known outcomes (the sandbox's truth stands in for an ops team's records in the demo). Unset in
    # production, where only the incidents people resolved teach the model.
    anomaly_truth_labels: Path | None = None
    # Where `make ui` serves each surface (always on 127.0.0.1). Defaults are the tools' usual ports;
    # change one when it clashes with something else on the machine.
    airflow_port: int = 8080
    mlflow_port: int = 5000
    dbt_docs_port: int = 8081
    data_docs_port: int = 8082
    dashboard_port: int = 8083

    @property
    def sandbox_ca_cert(self) -> Path:
        return self.paths.sandbox_state / "cert.pem"

    @property
    def sandbox_salesforce_url(self) -> str:
        return f"https://{self.sandbox_host}:{self.salesforce_port}"

    @property
    def sandbox_servicenow_url(self) -> str:
        return f"https://{self.sandbox_host}:{self.servicenow_port}"

    @property
    def sandbox_secrets_file(self) -> Path:
        return self.paths.var / "sandbox-credentials.json"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def airflow_passwords_file(self) -> Path:
        """The Airflow UI login (simple auth manager): ``{"admin": "<generated>"}``, mode 0600."""
        return self.paths.var / "airflow-passwords.json"

    @property
    def stack_dir(self) -> Path:
        """Where ``python -m northstar stack`` keeps its Postgres, Redis, Airflow home, logs and .env."""
        return _path("STACK_DIR", self.paths.var / "stack")


def load_settings() -> Settings:
    var = _path("HOME", REPO_ROOT / "var")
    paths = Paths(
        var=var,
        warehouse=_path("WAREHOUSE", var / "warehouse" / "northstar.duckdb"),
        landing=_path("LANDING", var / "landing"),
        drop=_path("DROP", var / "drop"),
        truth=_path("TRUTH", var / "truth"),
        sandbox_state=_path("SANDBOX_STATE", var / "sandbox"),
        mlflow_dir=_path("MLFLOW_DIR", var / "mlflow"),
        airflow_home=Path(os.environ.get("AIRFLOW_HOME", str(var / "airflow"))).resolve(),
        dbt_project=_path("DBT_PROJECT", REPO_ROOT / "dbt_project"),
        dbt_profiles=_path("DBT_PROFILES", REPO_ROOT / "dbt_project"),
        dbt_target_dir=_path("DBT_TARGET_PATH", var / "dbt" / "target"),
        gx_root=_path("GX_ROOT", var / "gx"),
    )
    mlflow_dir = paths.mlflow_dir
    return Settings(
        paths=paths,
        scale=_env("SCALE", "demo"),
        seed=int(_env("SEED", "7")),
        timezone=_env("TIMEZONE", "America/New_York"),
        sandbox_host=_env("SANDBOX_HOST", "127.0.0.1"),
        salesforce_port=int(_env("SALESFORCE_PORT", "8443")),
        servicenow_port=int(_env("SERVICENOW_PORT", "8444")),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}"),
        mlflow_artifact_root=_env("MLFLOW_ARTIFACT_ROOT", str(mlflow_dir / "artifacts")),
        kill_switch=_env("KILL_SWITCH", "false").lower() in {"1", "true", "yes", "on"},
        anomaly_truth_labels=Path(_env("ANOMALY_TRUTH_LABELS")).resolve() if _env("ANOMALY_TRUTH_LABELS") else None,
        airflow_port=int(_env("AIRFLOW_PORT", "8080")),
        mlflow_port=int(_env("MLFLOW_PORT", "5000")),
        dbt_docs_port=int(_env("DBT_DOCS_PORT", "8081")),
        data_docs_port=int(_env("DATA_DOCS_PORT", "8082")),
        dashboard_port=int(_env("DASHBOARD_PORT", "8083")),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


def reset_cache() -> None:
    """Forget cached settings (tests change NORTHSTAR_* variables between cases)."""
    settings.cache_clear()


# --- credentials -------------------------------------------------------------------------------


def sandbox_credentials(cfg: Settings | None = None) -> dict:
    """The sandbox's generated credentials (made by ``python -m northstar setup``).

    They are random per installation and live in ``var/`` (git-ignored), so no password is in the
    code. Returns an empty dict when setup has not run yet.
    """
    cfg = cfg or settings()
    if cfg.sandbox_secrets_file.exists():
        return json.loads(cfg.sandbox_secrets_file.read_text())
    return {}


def _airflow_connection(conn_id: str):
    """The Airflow connection if Airflow is importable and the connection exists, else None."""
    if os.environ.get(ENV_PREFIX + "NO_AIRFLOW_CONNECTIONS"):
        return None
    try:
        from airflow.sdk import BaseHook  # Airflow 3 task SDK
    except Exception:  # noqa: BLE001 - Airflow is optional for the CLIs
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - missing connection or no metadata DB: fall back to env
        return None


def salesforce_endpoint(cfg: Settings | None = None) -> Endpoint:
    """Where and how to log in to Salesforce.

    Order: the ``salesforce_default`` Airflow connection, then ``NORTHSTAR_SALESFORCE_*``
    environment variables, then the sandbox's generated credentials.
    """
    cfg = cfg or settings()
    conn = _airflow_connection("salesforce_default")
    if conn is not None and conn.login:
        extra = conn.extra_dejson or {}
        url = extra.get("instance_url") or cfg.sandbox_salesforce_url
        token = extra.get("security_token")
        ca = extra.get("ca_bundle")
        return Endpoint(
            url=url,
            username=conn.login,
            password=Secret(conn.password or ""),
            security_token=Secret(token) if token else None,
            ca_bundle=Path(ca) if ca else None,
            extra={k: v for k, v in extra.items() if k in {"domain", "version"}},
        )
    creds = sandbox_credentials(cfg).get("salesforce", {})
    url = _env("SALESFORCE_URL", cfg.sandbox_salesforce_url)
    username = _env("SALESFORCE_USERNAME", creds.get("username"))
    password = _env("SALESFORCE_PASSWORD", creds.get("password"))
    token = _env("SALESFORCE_SECURITY_TOKEN", creds.get("security_token"))
    ca = _env("SALESFORCE_CA_BUNDLE", str(cfg.sandbox_ca_cert) if url == cfg.sandbox_salesforce_url else None)
    return Endpoint(
        url=url,
        username=username,
        password=Secret(password) if password else None,
        security_token=Secret(token) if token else None,
        ca_bundle=Path(ca) if ca else None,
    )


def servicenow_endpoint(cfg: Settings | None = None) -> Endpoint:
    """Where and how to reach ServiceNow (``servicenow_default`` connection, env, then sandbox)."""
    cfg = cfg or settings()
    conn = _airflow_connection("servicenow_default")
    if conn is not None and conn.login:
        extra = conn.extra_dejson or {}
        host = conn.host or ""
        url = host if host.startswith("https://") else extra.get("instance_url", cfg.sandbox_servicenow_url)
        ca = extra.get("ca_bundle")
        return Endpoint(
            url=url,
            username=conn.login,
            password=Secret(conn.password or ""),
            ca_bundle=Path(ca) if ca else None,
        )
    creds = sandbox_credentials(cfg).get("servicenow", {})
    url = _env("SERVICENOW_URL", cfg.sandbox_servicenow_url)
    username = _env("SERVICENOW_USERNAME", creds.get("username"))
    password = _env("SERVICENOW_PASSWORD", creds.get("password"))
    ca = _env("SERVICENOW_CA_BUNDLE", str(cfg.sandbox_ca_cert) if url == cfg.sandbox_servicenow_url else None)
    return Endpoint(
        url=url,
        username=username,
        password=Secret(password) if password else None,
        ca_bundle=Path(ca) if ca else None,
    )
