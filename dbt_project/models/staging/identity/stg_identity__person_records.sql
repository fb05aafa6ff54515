with

source as (
    select * from {{ source('identity', 'person_records') }}
),

renamed as (
    select
        cast(record_id as string) as record_id,
        cast(record_type as string) as record_type,
        cast(account_id as string) as account_id,
        cast(person_id as string) as person_id,
        cast(household_account_id as string) as household_account_id,
        cast(match_probability as double) as match_probability,
        cast(resolution_run_id as string) as resolution_run_id,
        cast(resolved_at as timestamp) as resolved_at
    from source
),

final as (
    select * from renamed
)

select * from final
