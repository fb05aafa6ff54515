"""The ``scores`` tables ml/ writes (households in ``ml/client_value/score.py``, breaks in
``ml/anomaly/score.py``) and dbt reads as the source ``scores``: one definition of each, whichever
scorer creates it first, on either engine (``northstar.warehouse.TableSpec``: DuckDB tables, or Spark
Parquet tables partitioned by ``scoring_run_id``, so a re-scored run replaces its partition)."""

from northstar.warehouse import TableSpec

RUN = ("scoring_run_id",)


def _spec(name: str, columns: str, primary_key: str | None = None) -> TableSpec:
    parsed = []
    for line in columns.strip().splitlines():
        column, kind, *rest = line.split()
        parsed.append((column, kind, rest == ["not", "null"]))
    return TableSpec(name, tuple(parsed), RUN, primary_key)


SCORING_RUNS = _spec("scoring_runs", """
    scoring_run_id varchar
    kind varchar not null
    scored_at timestamp not null
    as_of_date date
    rows bigint
    model_versions varchar
    mlflow_run_ids varchar
    dbt_invocation_id varchar
    feature_snapshot_hash varchar
    needs_retraining boolean
    segment_transitions varchar
""", primary_key="scoring_run_id")

# Created empty by the household scorer too, so the scores_publish selector builds before the first
# break scoring run.
BREAK_SCORES = _spec("break_scores", """
    scoring_run_id varchar not null
    scored_at timestamp not null
    break_key varchar not null
    anomaly_score double not null
    anomaly_rank integer not null
    model_version varchar not null
    mlflow_run_id varchar
    notional_usd double
""")

HOUSEHOLD_SCORES = _spec("household_scores", """
    scoring_run_id varchar not null
    as_of_date date not null
    scored_at timestamp not null
    household_id varchar not null
    predicted_revenue_12m double
    clv double
    value_percentile double
    attrition_probability double
    segment varchar
    top_drivers varchar
    clv_model_version varchar
    churn_model_version varchar
    clv_mlflow_run_id varchar
    churn_mlflow_run_id varchar
    dbt_invocation_id varchar
    feature_snapshot_hash varchar
""")

MODEL_DRIFT = _spec("model_drift", """
    scoring_run_id varchar not null
    model varchar not null
    kind varchar not null
    name varchar not null
    psi double
    status varchar
""")

TRADE_ANOMALY_SCORES = _spec("trade_anomaly_scores", """
    scoring_run_id varchar not null
    scored_at timestamp not null
    business_date date
    trade_id varchar not null
    order_id varchar
    account_number_masked varchar
    instrument_id varchar
    asset_class varchar
    notional_usd double
    anomaly_score double not null
    anomaly_rank integer not null
    model_version varchar not null
    mlflow_run_id varchar
    feature_snapshot_hash varchar
    top_reasons varchar
""")
