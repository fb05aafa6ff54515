"""The ``scores`` tables that both scorers write (households in ``ml/client_value/score.py``, breaks in
``ml/anomaly/score.py``): one definition, whichever scorer creates a table first."""

SCORING_RUNS = """
create table if not exists scores.scoring_runs (
    scoring_run_id varchar primary key,
    kind varchar not null,
    scored_at timestamp not null,
    as_of_date date,
    rows bigint,
    model_versions varchar,
    mlflow_run_ids varchar,
    dbt_invocation_id varchar,
    feature_snapshot_hash varchar,
    needs_retraining boolean,
    segment_transitions varchar
)
"""

# Created empty by the household scorer too, so the scores_publish selector builds before the first
# break scoring run.
BREAK_SCORES = """
create table if not exists scores.break_scores (
    scoring_run_id varchar not null,
    scored_at timestamp not null,
    break_key varchar not null,
    anomaly_score double not null,
    anomaly_rank integer not null,
    model_version varchar not null,
    mlflow_run_id varchar,
    notional_usd double
)
"""
