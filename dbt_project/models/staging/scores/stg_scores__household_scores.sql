with

source as (
    select * from {{ source('scores', 'household_scores') }}
),

renamed as (
    select
        cast(scoring_run_id as string) as scoring_run_id,
        cast(as_of_date as date) as as_of_date,
        cast(scored_at as timestamp) as scored_at,
        cast(household_id as string) as household_id,
        cast(predicted_revenue_12m as double) as predicted_revenue_12m,
        cast(clv as double) as clv,
        cast(value_percentile as double) as value_percentile,
        cast(attrition_probability as double) as attrition_probability,
        cast(segment as string) as segment,
        cast(top_drivers as string) as top_drivers,
        cast(clv_model_version as string) as clv_model_version,
        cast(churn_model_version as string) as churn_model_version,
        cast(clv_mlflow_run_id as string) as clv_mlflow_run_id,
        cast(churn_mlflow_run_id as string) as churn_mlflow_run_id,
        cast(dbt_invocation_id as string) as dbt_invocation_id,
        cast(feature_snapshot_hash as string) as feature_snapshot_hash
    from source
),

final as (
    select * from renamed
)

select * from final
