with

source as (
    select * from {{ source('scores', 'scoring_runs') }}
),

renamed as (
    select
        cast(scoring_run_id as string) as scoring_run_id,
        cast(kind as string) as scoring_kind,
        cast(scored_at as timestamp) as scored_at,
        cast(rows as bigint) as scored_rows
    from source
),

final as (
    select * from renamed
)

select * from final
