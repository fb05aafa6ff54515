-- The latest anomaly score per break: each break_key's row from the most recent break scoring run
-- that scored it (scored_at, then run id, break the ties).
with

scores as (
    select * from {{ ref('stg_scores__break_scores') }}
),

latest as (
    select *
    from scores
    qualify row_number() over (partition by break_key order by scored_at desc, scoring_run_id desc) = 1
),

final as (
    select
        break_key,
        scoring_run_id,
        scored_at,
        anomaly_score,
        anomaly_rank,
        model_version,
        mlflow_run_id,
        notional_usd
    from latest
)

select * from final
