with

source as (
    select * from {{ source('identity', 'review_queue') }}
),

renamed as (
    select
        cast(record_id_l as string) as record_id_l,
        cast(record_id_r as string) as record_id_r,
        cast(match_probability as double) as match_probability,
        cast(match_weight as double) as match_weight,
        cast(person_id_l as string) as person_id_l,
        cast(person_id_r as string) as person_id_r,
        cast(evidence as string) as evidence,
        cast(resolution_run_id as string) as resolution_run_id
    from source
),

final as (
    select * from renamed
)

select * from final
