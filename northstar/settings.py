"""The one place Northstar reads its configuration from.

Every path, endpoint and credential the stages use is resolved here, from environment variables
prefixed ``NORTHSTAR_`` with embedded defaults under the git-ignored ``var/`` folder at the
repository root. Secrets are read from Airflow connections (``salesforce_default``,
``servicenow_default``) when Airflow is configured, otherwise from environment variables, and
never appear in ``repr`` output or logs.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import secrets
import sys
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
    duckdb_temp: Path
    # The Spark engine's warehouse (NORTHSTAR_ENGINE=spark): table files under spark_warehouse, the
    # catalog in an embedded Derby metastore in spark_metastore (one Spark driver at a time, as DuckDB
    # has one writer). A cluster names its own (spark.sql.warehouse.dir, a Hive metastore).
    spark_warehouse: Path = Path("var/spark/warehouse")
    spark_metastore: Path = Path("var/spark/metastore")

    def ensure(self) -> None:
        fresh = {folder for folder in (self.warehouse.parent, self.duckdb_temp, self.mlflow_dir) if not folder.exists()}
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
            self.duckdb_temp,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        # The warehouse and the MLflow store hold client data and model inputs: owner only. A folder
        # of ours (under var/, or made just now) is restricted; a shared one named by a setting is not.
        for private in (self.warehouse.parent, self.duckdb_temp, self.mlflow_dir):
            if private in fresh or private.is_relative_to(self.var):
                private.chmod(0o700)


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
    # DuckDB spills to disk beyond this instead of taking 80% of the machine (every connection,
    # dbt's included, gets it through northstar.warehouse / profiles.yml).
    duckdb_memory_limit: str = "3GB"
    # How long a connection waits for another process's warehouse lock before giving up with a
    # readable message (a DAG task writing, an operator reading).
    warehouse_lock_wait_s: float = 300.0
    # How ServiceNow incident descriptions name a brokerage account: "masked" (BA****0001) or "full".
    incident_account_numbers: str = "masked"
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
    # Where `make ui` serves the KPI dashboard (127.0.0.1 only).
    dashboard_port: int = 8083
    # Sub-requests per ServiceNow Batch API call (incident writes and lookups); 0 sends through the
    # Table API only, one call per write.
    servicenow_batch_size: int = 100
    # Memory discipline at scale: the household x cutoff tables are built in batches of about this many
    # grid rows (dbt var household_batch_rows, macros/household_batches.sql), so that each statement
    # stays inside the DuckDB memory limit; the small and demo worlds fit in one batch.
    household_batch_rows: int = 1_000_000
    # Which engine holds the warehouse: "duckdb" (one file, the default) or "spark" (the same dbt
    # project through dbt-spark; northstar.warehouse is the one place that acts on it).
    engine: str = "duckdb"
    # Spark's master and driver memory for the local session (dbt-spark's `session` method and the
    # Python engine layer share one): local[2] in CI; on a cluster dbt reaches Spark by thrift/http.
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    # Shuffle partitions: Spark's default of 200 is meant for a cluster; on local[2] every tiny
    # aggregation would schedule 200 tasks.
    spark_shuffle_partitions: int = 4

    @property
    def dbt_target(self) -> str:
        """The profiles.yml target of the engine (NORTHSTAR_DBT_TARGET overrides it, e.g. a cluster's)."""
        return _env("DBT_TARGET", "spark" if self.engine == "spark" else "dev")

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


def _incident_account_numbers(value: str) -> str:
    value = value.strip().lower()
    if value not in {"masked", "full"}:
        raise ValueError(f"NORTHSTAR_INCIDENT_ACCOUNT_NUMBERS must be 'masked' or 'full', not {value!r}")
    return value


ENGINES = ("duckdb", "spark")


def _engine(value: str) -> str:
    value = value.strip().lower()
    if value not in ENGINES:
        raise ValueError(f"NORTHSTAR_ENGINE must be one of {', '.join(ENGINES)}, not {value!r}")
    return value


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = -1
    if not 0 <= size <= 1000:
        raise ValueError(f"NORTHSTAR_SERVICENOW_BATCH_SIZE must be a whole number from 0 (Table API only) "
                         f"to 1000, not {value!r}")
    return size


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"NORTHSTAR_{name} must be a whole number of rows above 0, not {value!r}")
    return number


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
        duckdb_temp=_path("DUCKDB_TEMP_DIR", var / "warehouse" / "duckdb-tmp"),
        spark_warehouse=_path("SPARK_WAREHOUSE", var / "spark" / "warehouse"),
        spark_metastore=_path("SPARK_METASTORE", var / "spark" / "metastore"),
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
        kill_switch=(_env("KILL_SWITCH", "false") or "").strip().lower() in _TRUE,
        duckdb_memory_limit=_env("DUCKDB_MEMORY_LIMIT", "3GB"),
        warehouse_lock_wait_s=float(_env("WAREHOUSE_LOCK_WAIT", "300")),
        incident_account_numbers=_incident_account_numbers(_env("INCIDENT_ACCOUNT_NUMBERS", "masked")),
        anomaly_truth_labels=Path(_env("ANOMALY_TRUTH_LABELS")).resolve() if _env("ANOMALY_TRUTH_LABELS") else None,
        airflow_port=int(_env("AIRFLOW_PORT", "8080")),
        mlflow_port=int(_env("MLFLOW_PORT", "5000")),
        dbt_docs_port=int(_env("DBT_DOCS_PORT", "8081")),
        data_docs_port=int(_env("DATA_DOCS_PORT", "8082")),
        dashboard_port=int(_env("DASHBOARD_PORT", "8083")),
        servicenow_batch_size=_batch_size(_env("SERVICENOW_BATCH_SIZE", "100")),
        household_batch_rows=_positive_int("HOUSEHOLD_BATCH_ROWS", _env("HOUSEHOLD_BATCH_ROWS", "1000000")),
        engine=_engine(_env("ENGINE", "duckdb")),
        spark_master=_env("SPARK_MASTER", "local[2]"),
        spark_driver_memory=_env("SPARK_DRIVER_MEMORY", "2g"),
        spark_shuffle_partitions=int(_env("SPARK_SHUFFLE_PARTITIONS", "4")),
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


# --- the kill switch ---------------------------------------------------------------------------

KILL_SWITCH_VARIABLE = "northstar_kill_switch"
_TRUE = {"1", "true", "yes", "on"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KillSwitch:
    """Whether external writes (Salesforce, ServiceNow) must not happen, and who said so."""

    engaged: bool
    source: str


def _in_airflow_task() -> bool:
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return runner is not None and hasattr(runner, "SUPERVISOR_COMMS")


def _airflow_metadata_configured(cfg: Settings) -> bool:
    """Airflow runs this installation: its metadata DB is named explicitly or exists where setup puts it."""
    return bool(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")) or (cfg.paths.airflow_home / "airflow.db").exists()


def _airflow_config(cfg: Settings, section: str, key: str) -> str | None:
    """An Airflow setting as Airflow resolves it: ``AIRFLOW__<SECTION>__<KEY>``, then airflow.cfg."""
    from northstar.airflow_env import airflow_environment

    env = airflow_environment(cfg)
    value = env.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
    if value:
        return value
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(Path(env["AIRFLOW_HOME"]) / "airflow.cfg")
    return parser.get(section, key, fallback=None) or None


def _variable_from_metadata(cfg: Settings) -> str | None:
    """The Variable from the environment secrets backend, else straight from Airflow's metadata DB.

    Read with SQLAlchemy (Airflow's own driver stack) rather than ``airflow.models.Variable``: that
    one logs and swallows a database error as "not set", and importing Airflow costs seconds. A
    value stored encrypted is decrypted with the installation's Fernet key, as Airflow does.
    """
    from_env = os.environ.get("AIRFLOW_VAR_" + KILL_SWITCH_VARIABLE.upper())
    if from_env is not None:
        return from_env
    import sqlalchemy

    url = _airflow_config(cfg, "database", "sql_alchemy_conn")
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as con:
            row = con.execute(sqlalchemy.text("select val, is_encrypted from variable where key = :key"),
                              {"key": KILL_SWITCH_VARIABLE}).fetchone()
    finally:
        engine.dispose()
    if row is None:
        return None
    value, encrypted = row
    if encrypted:
        from cryptography.fernet import Fernet, MultiFernet

        keys = (_airflow_config(cfg, "core", "fernet_key") or "").split(",")
        value = MultiFernet([Fernet(k.strip().encode()) for k in keys if k.strip()]).decrypt(value.encode()).decode()
    return value


def kill_switch(cfg: Settings | None = None) -> KillSwitch:
    """The one reader of the kill switch, for every path that writes outside (DAG tasks, CLIs, benches).

    ``NORTHSTAR_KILL_SWITCH=true`` always stops writes. Otherwise, when Airflow runs this
    installation, its Variable ``northstar_kill_switch`` decides: inside a task through the task SDK,
    anywhere else (``python -m activate send``, a bench) from the metadata database. Without Airflow
    the setting alone decides. If Airflow is there but the Variable cannot be read, the switch counts
    as engaged: a push that cannot tell whether it is allowed does not happen.
    """
    cfg = cfg or settings()
    if cfg.kill_switch:
        return KillSwitch(True, "NORTHSTAR_KILL_SWITCH")
    try:
        if _in_airflow_task():
            from airflow.sdk import Variable

            value = Variable.get(KILL_SWITCH_VARIABLE, default=None)
        elif _airflow_metadata_configured(cfg):
            value = _variable_from_metadata(cfg)
        else:
            return KillSwitch(False, "NORTHSTAR_KILL_SWITCH (no Airflow metadata configured)")
    except Exception as exc:  # noqa: BLE001 - any failure to read means "do not send"
        log.error("kill switch unreadable, failing closed (nothing is sent): %s", exc)
        return KillSwitch(True, f"unreadable Airflow Variable {KILL_SWITCH_VARIABLE}: {exc}")
    engaged = value is not None and str(value).strip().lower() in _TRUE
    return KillSwitch(engaged, f"Airflow Variable {KILL_SWITCH_VARIABLE}={value!r}")


# --- the PII salt ------------------------------------------------------------------------------


def pii_salt_file(cfg: Settings | None = None) -> Path:
    return (cfg or settings()).paths.var / "pii-salt"


def ensure_pii_salt(cfg: Settings | None = None) -> Path:
    """Create the installation's secret PII salt (``var/pii-salt``, 0600) if it does not exist yet.

    ``hash_pii`` salts every hashed name and e-mail with it, so the hashes cannot be reversed by
    hashing a list of names. It is random per installation, never in git, and must stay the same
    for the life of the warehouse (the hashes are join keys).
    """
    path = pii_salt_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


def pii_salt(cfg: Settings | None = None) -> Secret:
    """``NORTHSTAR_PII_SALT`` (a deployment's secret, e.g. from compose's .env), else ``var/pii-salt``."""
    value = _env("PII_SALT")
    if value:
        return Secret(value)
    return Secret(ensure_pii_salt(cfg).read_text().strip())
