-- The latest household scoring run's scores per household, with the household's Salesforce keys and
-- consent: what the Salesforce push reads. "Latest" is the household run with the greatest scored_at
-- (ties: the greatest run id), so re-scoring an old run does not overwrite tonight's.
with

scores as (
    select * from {{ ref('stg_scores__household_scores') }}
),

runs as (
    select * from {{ ref('stg_scores__scoring_runs') }}
),

households as (
    select * from {{ ref('dim_households') }}
),

latest_run as (
    select scoring_run_id
    from runs
    where scoring_kind = 'household'
    qualify row_number() over (order by scored_at desc, scoring_run_id desc) = 1
),

final as (
    select
        scores.household_id,
        households.account_id,
        households.advisor_id,
        coalesce(households.has_analytics_consent, false) as has_analytics_consent,
        scores.scoring_run_id,
        scores.as_of_date,
        scores.scored_at,
        scores.predicted_revenue_12m,
        scores.clv,
        scores.value_percentile,
        scores.attrition_probability,
        scores.segment,
        scores.top_drivers,
        scores.clv_model_version,
        scores.churn_model_version,
        scores.clv_mlflow_run_id,
        scores.churn_mlflow_run_id,
        scores.dbt_invocation_id,
        scores.feature_snapshot_hash
    from scores
    inner join latest_run on scores.scoring_run_id = latest_run.scoring_run_id
    left join households on scores.household_id = households.household_id
)

select * from final
