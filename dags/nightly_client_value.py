"""Nightly client value: Salesforce + billing in, warehouse built, values out to advisors.

```text
extract_salesforce ─┐
land_billing_files ─┼─▶ landing_gate ─▶ build_warehouse ─▶ resolve_identities ─▶ publish_identities ─▶ marts_gate
read_back_incidents ┘
    ─▶ decide_training ─┬─▶ train_client_value_models ─┐
                        ├─▶ train_break_anomaly_model  │
                        └──────────────────────────────┴─▶ score_households
    ─▶ publish_scores ─▶ scores_gate ─▶ plan_salesforce_push ─▶ send_salesforce_push ─▶ refresh_dashboard
```

Wiring only: each task calls a stage function that has its own CLI and tests. Data moves through
the landing folder and the warehouse; XCom carries run ids, counts and the dbt invocation id.
A failed gate fails its task, so nothing after it runs and nothing reaches Salesforce.
Identity resolution sits between the staging the build leaves and the marts gate: the CRM's people are
linked (``python -m identity resolve``) and ``dim_persons`` built (dbt selector ``identity_publish``, with
its one-person-one-household and giant-person tests), so the gate, the scores and the push see the
resolved persons and their consent.
Models retrain on Sundays (firm time), or when a model has no champion or drift marked it.
The warehouse builds incrementally (a night rebuilds what changed); trigger with the param
``full_refresh`` true to rebuild the customer side from scratch (the same rows).
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, Param, get_current_context, task

from northstar.dag_defaults import DEFAULT_ARGS, FIRM_TIMEZONE, WAREHOUSE_POOL, deadline, run_ids, small

RETRAIN_WEEKDAY = 6  # Sunday, firm time (0 = Monday)

with DAG(
    dag_id="nightly_client_value",
    description="CRM and billing -> warehouse -> CLV/churn scores -> Salesforce",
    schedule=CronTriggerTimetable("30 1 * * *", timezone=FIRM_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=FIRM_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "owner": "northstar-client-intelligence"},
    dagrun_timeout=pendulum.duration(hours=3),
    deadline=deadline("nightly_client_value"),  # None under `airflow dags test` (dag_defaults.deadline)
    tags=["northstar", "nightly", "client-value"],
    params={
        "full_refresh": Param(False, type="boolean", title="Full refresh",
                              description="Rebuild the customer side of the warehouse from scratch (dbt --full-refresh) "
                                          "instead of only what changed; gives the same rows."),
    },
    doc_md=__doc__,
) as dag:

    @task
    def extract_salesforce() -> dict:
        from ingest.salesforce import extract_salesforce as extract
        from northstar.settings import settings

        report = extract(settings().paths.landing, run_id=get_current_context()["run_id"], raise_on_failure=True)
        return small(report.as_dict())

    @task
    def land_billing_files() -> dict:
        from ingest.broker_files import land_broker_files
        from northstar.settings import settings

        cfg = settings()
        report = land_broker_files(
            cfg.paths.drop, cfg.paths.landing, run_id=get_current_context()["run_id"], sources=["billing"]
        )
        return small(report.as_dict())

    @task
    def read_back_incidents() -> dict:
        """People's resolutions of break incidents, landed as labels for the anomaly model."""
        from ingest.servicenow import read_back

        return small(read_back(run_id=get_current_context()["run_id"]))

    @task(pool=WAREHOUSE_POOL)
    def landing_gate() -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        return run_gate("landing", ids.run_id, as_of=ids.logical_date, tables=["salesforce", "billing"]).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def build_warehouse() -> dict:
        """The customer side, and the trade side over what has landed unless the intraday runs matched it all."""
        from northstar.dbt import build_nightly

        # breaks seen by this build carry the run's logical time, so a rerun writes the same rows
        context = get_current_context()
        ids = run_ids(context)
        return build_nightly(ids.logical_date, full_refresh=bool(context["params"].get("full_refresh"))).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def resolve_identities() -> dict:
        """The CRM's people linked over staging; person ids carried over from the previous night."""
        from identity.resolve import resolve

        ids = run_ids(get_current_context())
        # keyed on the interval: a rerun of the same night replaces its own resolution run
        return small(resolve(f"identity-{ids.interval_key}").summary)

    @task(pool=WAREHOUSE_POOL)
    def publish_identities() -> dict:
        from northstar.dbt import observed_at_vars, run_dbt

        # the build's own vars: dbt re-parses the whole project when the vars change (13 s at demo scale)
        ids = run_ids(get_current_context())
        return run_dbt("build", ["--selector", "identity_publish"], dbt_vars=observed_at_vars(ids.logical_date)).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def marts_gate() -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        # identity too: no person in two households, no giant cluster, the person sizes against last night's
        return run_gate("marts", ids.run_id, as_of=ids.logical_date,
                        domains=["customer", "trading", "identity"]).as_dict()

    @task.branch
    def decide_training() -> list[str]:
        from ml.client_value.train import training_due

        ids = run_ids(get_current_context())
        due, reason = training_due(ids.logical_date.in_timezone(FIRM_TIMEZONE), retrain_weekday=RETRAIN_WEEKDAY)
        logging.getLogger(__name__).info("training %s: %s", "due" if due else "not due", reason)
        if due:
            return ["train_client_value_models", "train_break_anomaly_model", "score_households"]
        return ["score_households"]

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=50))
    def train_client_value_models(warehouse: dict) -> dict:
        from ml.client_value.train import train

        results = train(models="all", dbt_invocation_id=warehouse.get("invocation_id"))
        return {kind: small(result) for kind, result in results.items()}

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=50))
    def train_break_anomaly_model(warehouse: dict) -> dict:
        from ml.anomaly.train import train_break_anomaly
        from northstar.settings import settings

        result = train_break_anomaly(truth_dir=settings().anomaly_truth_labels,
                                     dbt_invocation=warehouse.get("invocation_id"))
        return small(result)

    @task(pool=WAREHOUSE_POOL, trigger_rule="none_failed_min_one_success")
    def score_households(warehouse: dict) -> dict:
        from ml.client_value.score import score

        ids = run_ids(get_current_context())
        result = score(f"households-{ids.interval_key}", scored_at=ids.logical_date,
                       dbt_invocation_id=warehouse.get("invocation_id"))
        return small(result)

    @task(pool=WAREHOUSE_POOL)
    def publish_scores() -> dict:
        from northstar.dbt import observed_at_vars, run_dbt

        ids = run_ids(get_current_context())
        return run_dbt("build", ["--selector", "scores_publish"], dbt_vars=observed_at_vars(ids.logical_date)).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def scores_gate(scoring: dict) -> dict:
        from expectations import run_gate

        ids = run_ids(get_current_context())
        return run_gate("scores", ids.run_id, as_of=ids.logical_date,
                        scoring_run_id=scoring["scoring_run_id"], kinds=["household"]).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def plan_salesforce_push() -> dict:
        from activate import plan_salesforce

        return small(plan_salesforce(get_current_context()["run_id"]).as_dict())

    @task(pool=WAREHOUSE_POOL)
    def send_salesforce_push() -> dict:
        from activate import send_salesforce

        return small(send_salesforce(get_current_context()["run_id"], raise_on_incomplete=True).as_dict())

    @task(pool=WAREHOUSE_POOL, execution_timeout=pendulum.duration(minutes=15))
    def refresh_dashboard() -> dict:
        """The KPI dashboard's snapshot: the pool is held only while the warehouse is read."""
        from dashboard import build

        return small(build(run_id=get_current_context()["run_id"]))

    landed = [extract_salesforce(), land_billing_files(), read_back_incidents()]
    warehouse = build_warehouse()
    gate = marts_gate()
    branch = decide_training()
    landed >> landing_gate() >> warehouse >> resolve_identities() >> publish_identities() >> gate >> branch
    # The anomaly model is trained beside, not before, the household scores: a trade-side problem
    # must not hold back the advisors' numbers.
    client_value_models = train_client_value_models(warehouse)
    branch >> [client_value_models, train_break_anomaly_model(warehouse)]
    scoring = score_households(warehouse)
    [branch, client_value_models] >> scoring
    publish = publish_scores()
    scoring >> publish
    checked = scores_gate(scoring)
    publish >> checked >> plan_salesforce_push() >> send_salesforce_push() >> refresh_dashboard()
