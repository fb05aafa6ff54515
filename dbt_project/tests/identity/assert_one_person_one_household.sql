{{ config(severity='error', tags=['identity']) }}
-- The marts gate's identity rule: a resolved person belongs to one household. A person whose records
-- sit in two households is either a real move the CRM has not caught up with or two people the linker
-- merged; either way nothing downstream may score or contact them until it is resolved.
with

persons as (
    select
        person_id,
        households_touched
    from {{ ref('dim_persons') }}
),

final as (
    select * from persons
    where households_touched > 1
)

select * from final
