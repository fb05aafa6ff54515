"""`python -m northstar setup` on an empty home: Airflow DB, the warehouse pool, sandbox connections."""

from __future__ import annotations

import json

import pytest

from northstar.bootstrap import WAREHOUSE_POOL, run_airflow, setup

pytestmark = pytest.mark.integration


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
