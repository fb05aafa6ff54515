with

source as (
    select * from {{ source('identity', 'resolution_runs') }}
),

renamed as (
    select
        cast(resolution_run_id as string) as resolution_run_id,
        cast(resolved_at as timestamp) as resolved_at,
        cast(records as bigint) as resolved_records,
        cast(persons as bigint) as persons,
        cast(persons_with_duplicates as bigint) as persons_with_duplicates,
        cast(largest_person as bigint) as largest_person_records,
        cast(person_merges as bigint) as person_merges,
        cast(person_splits as bigint) as person_splits,
        cast(review_pairs as bigint) as review_pairs
    from source
),

final as (
    select * from renamed
)

select * from final
