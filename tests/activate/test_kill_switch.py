"""The kill switch as an operator uses it: the Airflow Variable stops `python -m activate send` too.

Before the one reader in settings, the CLI read the Variable with the task SDK's ``Variable.get``,
which only works inside a task, took the failure for "not set", and sent. Real Airflow metadata DB
(``airflow db migrate`` in the test's home), real CLI, real sandbox org.
"""

from __future__ import annotations

import pytest
from activation_world import household_scores, write_household_scores

from activate.__main__ import main as activate_cli
from activate.salesforce import plan_salesforce
from northstar import settings as settings_module
from northstar.bootstrap import run_airflow

pytestmark = pytest.mark.integration


def _send_from_the_cli(env) -> int:
    env.reset_stats()
    assert activate_cli(["send", "--target", "salesforce", "--run-id", "cli-send"]) == 0
    return env.stats("salesforce")["total_requests"]


@pytest.mark.timeout(1500)  # `airflow db migrate` plus three Airflow CLI calls: minutes on a loaded 2-core host
def test_the_airflow_variable_stops_the_cli_and_an_unreadable_switch_fails_closed(env, monkeypatch):
    creds = env.handle.credentials["salesforce"]
    for name, value in {"URL": env.handle.salesforce_url, "USERNAME": creds["username"],
                        "PASSWORD": creds["password"], "SECURITY_TOKEN": creds["security_token"],
                        "CA_BUNDLE": str(env.handle.ca_cert)}.items():
        monkeypatch.setenv(f"NORTHSTAR_SALESFORCE_{name}", value)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    write_household_scores(env.warehouse, household_scores(seed=5))
    planned = plan_salesforce("run-ks", cfg=cfg).enqueued["Account"]
    assert planned > 0

    # No Airflow in this home yet: the environment setting alone decides (it is off).
    assert settings_module.kill_switch(cfg).engaged is False

    run_airflow(["db", "migrate"], cfg)
    run_airflow(["variables", "set", settings_module.KILL_SWITCH_VARIABLE, "true"], cfg)
    switch = settings_module.kill_switch(cfg)
    assert switch.engaged and "Airflow Variable" in switch.source
    assert _send_from_the_cli(env) == 0
    assert all(a["Segment__c"] is None for a in env.accounts().values())

    # Airflow configured but its metadata unreadable: fail closed, nothing sent.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{env.cfg.paths.var}/no/such/dir/airflow.db")
    switch = settings_module.kill_switch(cfg)
    assert switch.engaged and switch.source.startswith("unreadable")
    assert _send_from_the_cli(env) == 0
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")

    # Switched off in Airflow: the held-back rows go out.
    run_airflow(["variables", "set", settings_module.KILL_SWITCH_VARIABLE, "false"], cfg)
    assert _send_from_the_cli(env) > 0
    assert sum(a["Segment__c"] is not None for a in env.accounts().values()) == planned
