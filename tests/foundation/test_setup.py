"""`python -m northstar setup` on an empty home: Airflow DB, the warehouse pool, sandbox connections."""

from __future__ import annotations

import json

import pytest

from northstar.bootstrap import WAREHOUSE_POOL, run_airflow, setup

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1200)  # two setups and three Airflow CLI calls, ~15 s each on a quiet machine, far more under load
def test_setup_is_complete_and_idempotent(northstar_home):
    cfg = northstar_home
    setup(cfg)
    setup(cfg)  # a second run changes nothing and does not fail

    assert (cfg.paths.airflow_home / "airflow.db").exists()
    pools = json.loads(run_airflow(["pools", "list", "-o", "json"], cfg).stdout)
    warehouse = [p for p in pools if p["pool"] == WAREHOUSE_POOL]
    assert warehouse and int(warehouse[0]["slots"]) == 1

    creds = json.loads(cfg.sandbox_secrets_file.read_text())
    assert oct(cfg.sandbox_secrets_file.stat().st_mode & 0o777) == "0o600"
    for conn_id, expected_login in (
        ("salesforce_default", creds["salesforce"]["username"]),
        ("servicenow_default", creds["servicenow"]["username"]),
    ):
        out = run_airflow(["connections", "get", conn_id, "-o", "json"], cfg).stdout
        conn = json.loads(out)[0] if out.strip().startswith("[") else json.loads(out)
        assert conn["login"] == expected_login
    # Nothing secret may be left lying around by the import.
    assert not list(cfg.paths.var.glob("tmp*.json"))


def test_setup_makes_a_secret_pii_salt_once(northstar_home, tmp_path, monkeypatch):
    """Before: hash_pii fell back to the public string 'northstar' and every name hash could be reversed."""
    from northstar.dbt import dbt_environment
    from northstar.settings import REPO_ROOT

    cfg = northstar_home
    compose_env = tmp_path / ".env"
    compose_env.write_text("POSTGRES_PASSWORD=kept\n")
    setup(cfg, airflow=False, compose_env=compose_env)
    salt_file = cfg.paths.var / "pii-salt"
    salt = salt_file.read_text().strip()
    assert len(salt) == 64 and oct(salt_file.stat().st_mode & 0o777) == "0o600"
    setup(cfg, airflow=False, compose_env=compose_env)
    assert salt_file.read_text().strip() == salt  # the hashes are join keys: never regenerated
    assert compose_env.read_text().splitlines() == ["POSTGRES_PASSWORD=kept", f"NORTHSTAR_PII_SALT={salt}"]
    assert oct(compose_env.stat().st_mode & 0o777) == "0o600"
    monkeypatch.delenv("NORTHSTAR_PII_SALT", raising=False)
    assert dbt_environment(cfg)["NORTHSTAR_PII_SALT"] == salt
    # no public fallback in the macro, and the salt is never committed
    assert "env_var('NORTHSTAR_PII_SALT')" in (REPO_ROOT / "dbt_project" / "macros" / "pii.sql").read_text()
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().splitlines()
