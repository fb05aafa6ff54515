"""Intraday trade reconciliation: broker files in, three-way match, breaks to ServiceNow.

```text
land_broker_files ─▶ anything_to_check ─▶ landing_gate ─▶ reconcile_trades ─▶ marts_gate ─▶ choose_break_scoring
    ├─▶ score_breaks ─▶ publish_break_scores ─▶ scores_gate ─┐
    └────────────────────────────────────────────────────────┴─▶ plan_incidents ─▶ send_incidents
                                                                                        ─▶ refresh_dashboard
```

Runs every 15 minutes on weekdays during market hours, and whenever the broker drop folder's
ready flag (``<drop>/_READY``) appears. The business dates re-matched are those of every trade file
the landing manifest holds that is not reconciled yet (``northstar.recon``), so files a failed run
landed are picked up by the next; with nothing pending the run stops after landing and writes nothing.
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

from northstar.dag_defaults import (
    DEFAULT_ARGS,
    FIRM_TIMEZONE,
    INTRADAY_PRIORITY_WEIGHT,
    WAREHOUSE_POOL,
    deadline,
    run_ids,
    small,
)
from northstar.recon import TRADE_TABLES
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
    default_args={**DEFAULT_ARGS, "owner": "northstar-trade-ops", "execution_timeout": None,
                  "priority_weight": INTRADAY_PRIORITY_WEIGHT},  # first to the warehouse pool
    dagrun_timeout=pendulum.duration(minutes=14),
    deadline=deadline("intraday_trade_recon"),  # None under `airflow dags test` (dag_defaults.deadline)
    tags=["northstar", "intraday", "trade-recon"],
    doc_md=__doc__,
) as dag:

    @task(execution_timeout=pendulum.duration(minutes=10))
    def land_broker_files() -> dict:
        from ingest.broker_files import land_broker_files as land

        cfg = settings()
        report = land(cfg.paths.drop, cfg.paths.landing, run_id=get_current_context()["run_id"], sources=list(TRADE_TABLES))
        return small(report.as_dict())

    # in the pool although it only reads: DuckDB lets no reader in while another DAG's task writes
    @task.short_circuit(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def anything_to_check(landing_report: dict) -> dict:
        from northstar.recon import work_after_landing

        # empty (a no-op run: nothing delivered, nothing pending): nothing after this runs or writes
        return work_after_landing(landing_report)

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def landing_gate(work: dict) -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        # this run's deliveries and every landing not reconciled yet (an earlier failed run's included)
        return run_gate("landing", ids.run_id, as_of=ids.logical_date, tables=list(TRADE_TABLES),
                        ingest_run_ids=work["ingest_run_ids"]).as_dict()

    @task.short_circuit(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=10))
    def reconcile_trades() -> dict:
        from northstar.recon import reconcile_pending

        # empty when nothing landed that needs matching (e.g. only quarantined rows): stop here
        ids = run_ids(get_current_context())
        return reconcile_pending(ids.run_id, observed_at=ids.logical_date)

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def marts_gate(recon: dict) -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        # the dates this run re-matched (late files for earlier days included), or those it scores
        return run_gate("marts", ids.run_id, as_of=ids.logical_date, domains=["trading"],
                        business_dates=recon["business_dates"] or recon["score_dates"]).as_dict()

    @task.branch(execution_timeout=pendulum.duration(minutes=2))
    def choose_break_scoring() -> str:
        from ml import registry

        if registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION) is None:
            return "plan_incidents"  # no champion yet: incidents take their priority from the break alone
        return "score_breaks"

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=5))
    def score_breaks(recon: dict) -> dict:
        from ml.anomaly.score import score_break_anomalies

        ids = run_ids(get_current_context())
        result = score_break_anomalies(
            f"breaks-{ids.run_id}", scored_at=ids.logical_date, business_dates=recon["score_dates"],
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

        return small(send_servicenow(get_current_context()["run_id"], raise_on_incomplete=True).as_dict())

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=15))
    def refresh_dashboard() -> dict:
        """The KPI dashboard's snapshot: the pool is held only while the warehouse is read."""
        from dashboard import build

        return small(build(run_id=get_current_context()["run_id"]))

    work = anything_to_check(land_broker_files())
    recon = reconcile_trades()
    branch = choose_break_scoring()
    scoring = score_breaks(recon)
    planned = plan_incidents()
    work >> landing_gate(work) >> recon >> marts_gate(recon) >> branch >> [scoring, planned]
    scoring >> publish_break_scores() >> scores_gate(scoring) >> planned >> send_incidents() >> refresh_dashboard()
