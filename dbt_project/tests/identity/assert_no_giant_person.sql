{{ config(severity='error', tags=['identity']) }}
-- Critical: a person with more records than any real client has (advisors' duplicates, every brokerage
-- account, the custodian's copies) means the linker chained strangers into one cluster.
with

latest_run as (
    select
        resolution_run_id,
        largest_person_records
    from {{ ref('stg_identity__resolution_runs') }}
    order by resolved_at desc
    limit 1
),

final as (
    select * from latest_run
    where largest_person_records > {{ var('identity_giant_person_records', 40) }}
)

select * from final
