"""First-run setup of a Northstar installation: folders, sandbox credentials, Airflow metadata.

``python -m northstar setup`` is idempotent: it creates what is missing and leaves the rest: the
installation's secret PII salt (``var/pii-salt``, 0600; ``--compose-env .env`` also writes it where
docker compose reads it), and for Airflow the ``warehouse`` pool (one slot: DuckDB has one writer)
and the ``salesforce_default`` / ``servicenow_default`` connections. The connections point at the sandbox unless the operator has
configured a real org/instance through ``NORTHSTAR_SALESFORCE_URL`` / ``NORTHSTAR_SERVICENOW_URL``
(then they are left alone: a firm manages those connections itself).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from northstar.airflow_env import airflow_environment
from northstar.settings import Settings, ensure_pii_salt, pii_salt, settings

log = logging.getLogger(__name__)

WAREHOUSE_POOL = "warehouse"
WAREHOUSE_POOL_DESCRIPTION = "DuckDB allows one writer: every task that writes the warehouse runs here"


def run_airflow(args: list[str], cfg: Settings | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command in Northstar's Airflow environment."""
    cfg = cfg or settings()
    airflow = Path(os.sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args],
        env=airflow_environment(cfg),
        check=check,
        capture_output=True,
        text=True,
    )


def sandbox_connections(cfg: Settings) -> dict[str, dict]:
    """Airflow connection definitions that point the pipeline at the sandbox servers."""
    from sandbox.credentials import ensure_credentials

    creds = ensure_credentials(cfg)
    sf, sn = creds["salesforce"], creds["servicenow"]
    ca = str(cfg.sandbox_ca_cert)
    return {
        "salesforce_default": {
            "conn_type": "salesforce",
            "description": "Northstar sandbox Salesforce (replace with your org: see README)",
            "login": sf["username"],
            "password": sf["password"],
            "extra": json.dumps(
                {
                    "instance_url": cfg.sandbox_salesforce_url,
                    "security_token": sf["security_token"],
                    "ca_bundle": ca,
                }
            ),
        },
        "servicenow_default": {
            "conn_type": "http",
            "description": "Northstar sandbox ServiceNow (replace with your instance: see README)",
            "host": cfg.sandbox_servicenow_url,
            "login": sn["username"],
            "password": sn["password"],
            "extra": json.dumps({"ca_bundle": ca}),
        },
    }


def write_airflow_passwords(env: dict[str, str] | None = None) -> Path | None:
    """The simple auth manager's passwords file, from ``AIRFLOW_PASSWORD_<USER>`` variables.

    A deployment (docker-compose.yml, ``python -m northstar stack``) lists its users in
    ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` and gives each a password from its .env. Airflow
    would otherwise invent the passwords and print them to its log. Returns the file written, or
    None when no passwords file is configured (the embedded demo runs all-admins on localhost).
    """
    env = os.environ if env is None else env
    target = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    users = [u.split(":")[0] for u in env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "").split(",") if u.strip()]
    if not target or not users:
        return None
    passwords = {}
    for user in users:
        password = env.get(f"AIRFLOW_PASSWORD_{user.upper()}")
        if not password:
            raise RuntimeError(f"no password for Airflow user {user!r}: set AIRFLOW_PASSWORD_{user.upper()}")
        passwords[user] = password
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle)
    return path


def write_compose_env(path: Path, cfg: Settings) -> None:
    """Put the installation's PII salt into a compose ``.env`` file (0600), keeping its other lines."""
    salt = pii_salt(cfg).reveal()
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if not line.startswith("NORTHSTAR_PII_SALT=")]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join([*kept, f"NORTHSTAR_PII_SALT={salt}"]) + "\n")
    os.chmod(path, 0o600)


def setup(cfg: Settings | None = None, airflow: bool = True, compose_env: Path | None = None) -> None:
    cfg = cfg or settings()
    cfg.paths.ensure()
    ensure_pii_salt(cfg)  # var/pii-salt, 0600: hash_pii's secret, never committed
    if compose_env is not None:
        write_compose_env(compose_env, cfg)
    if not airflow:
        return
    write_airflow_passwords()
    run_airflow(["db", "migrate"], cfg)
    run_airflow(["pools", "set", WAREHOUSE_POOL, "1", WAREHOUSE_POOL_DESCRIPTION], cfg)
    connections = sandbox_connections(cfg)
    if os.environ.get("NORTHSTAR_SALESFORCE_URL"):
        connections.pop("salesforce_default")
    if os.environ.get("NORTHSTAR_SERVICENOW_URL"):
        connections.pop("servicenow_default")
    if connections:
        # A 0600 temp file, not command-line arguments: secrets must not show up in `ps`.
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=cfg.paths.var, delete=False) as handle:
            os.chmod(handle.name, 0o600)
            json.dump(connections, handle)
        try:
            run_airflow(["connections", "import", "--overwrite", handle.name], cfg)
        finally:
            Path(handle.name).unlink(missing_ok=True)
    log.info("setup done: airflow home %s, pool %s, connections %s", cfg.paths.airflow_home, WAREHOUSE_POOL,
             ", ".join(connections) or "unchanged")
