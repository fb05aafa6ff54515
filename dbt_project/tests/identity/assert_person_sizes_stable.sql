{{ config(severity='warn', tags=['identity']) }}
-- Warning: the share of persons with duplicates moved by more than half since the previous run (a new
-- source, a changed rule, or an upstream fault). A warning, not a stop: a real clean-up does this too.
with

runs as (
    select
        resolution_run_id,
        resolved_at,
        persons_with_duplicates * 1.0 / nullif(persons, 0) as duplicate_share,
        row_number() over (order by resolved_at desc) as recency
    from {{ ref('stg_identity__resolution_runs') }}
),

latest as (
    select * from runs
    where recency = 1
),

previous as (
    select * from runs
    where recency = 2
),

final as (
    select
        latest.resolution_run_id,
        previous.duplicate_share as previous_share,
        latest.duplicate_share as latest_share
    from latest
    inner join previous on 1 = 1
    where abs(latest.duplicate_share - previous.duplicate_share) > 0.5 * previous.duplicate_share
)

select * from final
