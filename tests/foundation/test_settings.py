"""The settings module: env overrides, defaults under var/, secrets that never print."""

from __future__ import annotations

import pytest

from northstar.settings import REPO_ROOT, Secret, load_settings, salesforce_endpoint

pytestmark = pytest.mark.unit


def test_defaults_live_under_repo_var(monkeypatch):
    for name in ("NORTHSTAR_HOME", "NORTHSTAR_WAREHOUSE", "NORTHSTAR_LANDING", "AIRFLOW_HOME"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_settings()
    var = REPO_ROOT / "var"
    assert cfg.paths.warehouse == var / "warehouse" / "northstar.duckdb"
    assert cfg.paths.landing == var / "landing"
    assert cfg.paths.drop == var / "drop"
    assert cfg.paths.airflow_home == var / "airflow"
    assert cfg.mlflow_tracking_uri == f"sqlite:///{var / 'mlflow' / 'mlflow.db'}"


def test_environment_overrides_each_path(monkeypatch, tmp_path):
    monkeypatch.setenv("NORTHSTAR_HOME", str(tmp_path))
    monkeypatch.setenv("NORTHSTAR_LANDING", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_PORT", "9443")
    monkeypatch.setenv("NORTHSTAR_KILL_SWITCH", "true")
    cfg = load_settings()
    assert cfg.paths.warehouse == tmp_path / "warehouse" / "northstar.duckdb"
    assert cfg.paths.landing == tmp_path / "elsewhere"
    assert cfg.sandbox_salesforce_url == "https://127.0.0.1:9443"
    assert cfg.kill_switch is True


def test_secret_never_prints_its_value():
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-very-secret"


def test_endpoint_from_environment_hides_password(monkeypatch, tmp_path):
    monkeypatch.setenv("NORTHSTAR_HOME", str(tmp_path))
    monkeypatch.setenv("NORTHSTAR_NO_AIRFLOW_CONNECTIONS", "1")
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_URL", "https://example.my.salesforce.com")
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_USERNAME", "ops@example.com")
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_PASSWORD", "pw-do-not-log")
    endpoint = salesforce_endpoint(load_settings())
    assert endpoint.url == "https://example.my.salesforce.com"
    assert endpoint.username == "ops@example.com"
    assert endpoint.password.reveal() == "pw-do-not-log"
    assert "pw-do-not-log" not in repr(endpoint)
    assert endpoint.ca_bundle is None  # a real org uses the system trust store


def test_servicenow_batch_size(monkeypatch):
    monkeypatch.delenv("NORTHSTAR_SERVICENOW_BATCH_SIZE", raising=False)
    assert load_settings().servicenow_batch_size == 100
    monkeypatch.setenv("NORTHSTAR_SERVICENOW_BATCH_SIZE", "0")  # the Table API only
    assert load_settings().servicenow_batch_size == 0
    for bad in ("-1", "1001", "ten"):
        monkeypatch.setenv("NORTHSTAR_SERVICENOW_BATCH_SIZE", bad)
        with pytest.raises(ValueError, match="NORTHSTAR_SERVICENOW_BATCH_SIZE"):
            load_settings()


def test_engine_choice_and_its_dbt_target(monkeypatch):
    for name in ("NORTHSTAR_ENGINE", "NORTHSTAR_DBT_TARGET"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_settings()
    assert (cfg.engine, cfg.dbt_target) == ("duckdb", "dev")  # DuckDB is the default
    monkeypatch.setenv("NORTHSTAR_ENGINE", " Spark ")
    cfg = load_settings()
    assert (cfg.engine, cfg.dbt_target, cfg.spark_master) == ("spark", "spark", "local[2]")
    assert cfg.paths.spark_warehouse.is_relative_to(cfg.paths.var)  # under NORTHSTAR_HOME, like the DuckDB file
    monkeypatch.setenv("NORTHSTAR_DBT_TARGET", "cluster")  # a thrift/http target of the installation's profile
    assert load_settings().dbt_target == "cluster"
    monkeypatch.setenv("NORTHSTAR_ENGINE", "snowflake")
    with pytest.raises(ValueError, match="NORTHSTAR_ENGINE must be one of duckdb, spark"):
        load_settings()
