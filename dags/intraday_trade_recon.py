"""Intraday trade reconciliation: broker files in, three-way match, breaks to ServiceNow.

Runs every 15 minutes on weekdays during market hours, and whenever the broker drop folder's
ready flag (``<drop>/_READY``) appears. Wiring only: each task calls a stage function.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.triggers.file import FileDeleteTrigger
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    get_current_context,
    task,
)

from northstar.dag_defaults import DEFAULT_ARGS, FIRM_TIMEZONE, WAREHOUSE_POOL
from northstar.settings import settings

DROP_FOLDER = settings().paths.drop

broker_files_delivered = Asset(
    name="broker_drop_folder",
    uri=f"file://{DROP_FOLDER}",
    watchers=[
        AssetWatcher(
            name="broker_drop_ready_flag",
            trigger=FileDeleteTrigger(filepath=str(DROP_FOLDER / "_READY"), poke_interval=30.0),
        )
    ],
)

with DAG(
    dag_id="intraday_trade_recon",
    description="Broker files -> three-way recon -> breaks -> ServiceNow",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/15 9-16 * * 1-5", timezone=FIRM_TIMEZONE),
        assets=[broker_files_delivered],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=FIRM_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "owner": "northstar-trade-ops", "execution_timeout": None},
    dagrun_timeout=pendulum.duration(minutes=14),
    tags=["northstar", "intraday", "trade-recon"],
    doc_md=__doc__,
) as dag:

    @task(execution_timeout=pendulum.duration(minutes=10))
    def land_broker_files() -> dict:
        from ingest.broker_files import land_broker_files as land
        from northstar.settings import settings

        cfg = settings()
        report = land(
            cfg.paths.drop,
            cfg.paths.landing,
            run_id=get_current_context()["run_id"],
            sources=["internal_trades", "fix_executions", "pb_confirms"],
        )
        return report.as_dict()

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=10))
    def reconcile_trades(landing_report: dict) -> dict:
        from northstar.dbt import run_dbt

        dates = landing_report.get("business_dates") or []
        return run_dbt("build", ["--selector", "intraday_trading"], dbt_vars={"business_dates": dates}).as_dict()

    reconcile_trades(land_broker_files())
