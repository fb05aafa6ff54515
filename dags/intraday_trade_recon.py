"""Intraday trade reconciliation: broker files in, three-way match, breaks to ServiceNow.

```text
land_broker_files ─▶ landing_gate ─▶ reconcile_trades ─▶ marts_gate ─▶ choose_break_scoring
    ├─▶ score_breaks ─▶ publish_break_scores ─▶ scores_gate ─┐
    └────────────────────────────────────────────────────────┴─▶ plan_incidents ─▶ send_incidents
```

Runs every 15 minutes on weekdays during market hours, and whenever the broker drop folder's
ready flag (``<drop>/_READY``) appears. Only the business dates that got new files are re-matched.
Wiring only: each task calls a stage function. A failed gate fails its task, so nothing after it
runs and no incident is raised from a garbled file. Until the nightly has trained a break-anomaly
champion, breaks are scored by no model and incidents take their priority from the break alone.
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

from northstar.alerts import deadline_alerts
from northstar.dag_defaults import DEFAULT_ARGS, FIRM_TIMEZONE, WAREHOUSE_POOL, run_ids, small
from northstar.settings import settings

DROP_FOLDER = settings().paths.drop
TRADE_TABLES = ["internal_trades", "fix_executions", "pb_confirms"]

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
    deadline=deadline_alerts("intraday_trade_recon"),
    tags=["northstar", "intraday", "trade-recon"],
    doc_md=__doc__,
) as dag:

    @task(execution_timeout=pendulum.duration(minutes=10))
    def land_broker_files() -> dict:
        from ingest.broker_files import land_broker_files as land

        cfg = settings()
        report = land(cfg.paths.drop, cfg.paths.landing, run_id=get_current_context()["run_id"], sources=TRADE_TABLES)
        return small(report.as_dict())

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def landing_gate() -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        return run_gate("landing", ids.run_id, as_of=ids.logical_date, tables=TRADE_TABLES).as_dict()

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=10))
    def reconcile_trades(landing_report: dict) -> dict:
        from northstar.dbt import run_dbt

        dates = landing_report.get("business_dates") or []
        if not dates:  # nothing new landed: an empty list would mean "re-match every date"
            return {"command": "build", "skipped": "no new broker files", "invocation_id": None}
        return run_dbt("build", ["--selector", "intraday_trading"], dbt_vars={"business_dates": dates}).as_dict()

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def marts_gate(landing_report: dict) -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        # the dates this run re-matched, late files for earlier days included
        return run_gate("marts", ids.run_id, as_of=ids.logical_date, domains=["trading"],
                        business_dates=landing_report.get("business_dates") or []).as_dict()

    @task.branch(execution_timeout=pendulum.duration(minutes=2))
    def choose_break_scoring() -> str:
        from ml import registry

        if registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION) is None:
            return "plan_incidents"  # no champion yet: incidents take their priority from the break alone
        return "score_breaks"

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def score_breaks(landing_report: dict, recon: dict) -> dict:
        from ml.anomaly.score import score_break_anomalies

        ids = run_ids(get_current_context())
        result = score_break_anomalies(
            f"breaks-{ids.run_id}", scored_at=ids.logical_date, business_dates=landing_report.get("business_dates") or None,
            dbt_invocation=recon.get("invocation_id"),
        )
        return small(result)

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def publish_break_scores() -> dict:
        from northstar.dbt import run_dbt

        return run_dbt("build", ["--selector", "break_scores_publish"]).as_dict()

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def scores_gate(scoring: dict) -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        return run_gate("scores", ids.run_id, as_of=ids.logical_date,
                        break_scoring_run_id=scoring.get("scoring_run_id"), kinds=["break"]).as_dict()

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5),
          trigger_rule="none_failed_min_one_success")
    def plan_incidents() -> dict:
        from activate import plan_servicenow

        return small(plan_servicenow(get_current_context()["run_id"]).as_dict())

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=8))
    def send_incidents() -> dict:
        from activate import send_servicenow

        return small(send_servicenow(get_current_context()["run_id"]).as_dict())

    landed = land_broker_files()
    recon = reconcile_trades(landed)
    branch = choose_break_scoring()
    scoring = score_breaks(landed, recon)
    planned = plan_incidents()
    landed >> landing_gate() >> recon >> marts_gate(landed) >> branch >> [scoring, planned]
    scoring >> publish_break_scores() >> scores_gate(scoring) >> planned >> send_incidents()
