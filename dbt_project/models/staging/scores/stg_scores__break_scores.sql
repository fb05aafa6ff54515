with

source as (
    select * from {{ source('scores', 'break_scores') }}
),

renamed as (
    select
        cast(scoring_run_id as string) as scoring_run_id,
        cast(scored_at as timestamp) as scored_at,
        cast(break_key as string) as break_key,
        cast(anomaly_score as double) as anomaly_score,
        cast(anomaly_rank as integer) as anomaly_rank,
        cast(model_version as string) as model_version,
        cast(mlflow_run_id as string) as mlflow_run_id,
        cast(notional_usd as double) as notional_usd
    from source
),

final as (
    select * from renamed
)

select * from final
