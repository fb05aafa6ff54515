with

source as (
    select * from {{ source('identity', 'review_queue') }}
),

renamed as (
    select
        cast(record_id_l as varchar) as record_id_l,
        cast(record_id_r as varchar) as record_id_r,
        cast(match_probability as double) as match_probability,
        cast(match_weight as double) as match_weight,
        cast(person_id_l as varchar) as person_id_l,
        cast(person_id_r as varchar) as person_id_r,
        cast(evidence as varchar) as evidence,
        cast(resolution_run_id as varchar) as resolution_run_id
    from source
),

final as (
    select * from renamed
)

select * from final
