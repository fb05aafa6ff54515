"""Nightly client value: Salesforce + billing in, warehouse built, values out to advisors.

Wiring only: each task calls a stage function that has its own CLI and tests.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, get_current_context, task

from northstar.dag_defaults import DEFAULT_ARGS, FIRM_TIMEZONE, WAREHOUSE_POOL

with DAG(
    dag_id="nightly_client_value",
    description="CRM and billing -> warehouse -> CLV/churn scores -> Salesforce",
    schedule=CronTriggerTimetable("30 1 * * *", timezone=FIRM_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=FIRM_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "owner": "northstar-client-intelligence"},
    tags=["northstar", "nightly", "client-value"],
    doc_md=__doc__,
) as dag:

    @task
    def extract_salesforce() -> dict:
        from ingest.salesforce import extract_salesforce as extract
        from northstar.settings import settings

        report = extract(settings().paths.landing, run_id=get_current_context()["run_id"], raise_on_failure=True)
        return report.as_dict()

    @task
    def land_billing_files() -> dict:
        from ingest.broker_files import land_broker_files
        from northstar.settings import settings

        cfg = settings()
        report = land_broker_files(
            cfg.paths.drop, cfg.paths.landing, run_id=get_current_context()["run_id"], sources=["billing"]
        )
        return report.as_dict()

    @task(pool=WAREHOUSE_POOL)
    def build_customer_warehouse() -> dict:
        from northstar.dbt import run_dbt

        return run_dbt("build", ["--selector", "nightly_customer"]).as_dict()

    [extract_salesforce(), land_billing_files()] >> build_customer_warehouse()
