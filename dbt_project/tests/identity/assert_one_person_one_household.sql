{{ config(severity='error', tags=['identity']) }}
-- The marts gate's identity rule: a resolved person belongs to one household. Records of one person in
-- two CRM Accounts make those Accounts one resolved household (a household split across Accounts), so a
-- person in two resolved households means the household grouping is broken; nothing downstream may
-- score or contact them until it is fixed.
with

persons as (
    select
        person_id,
        resolved_households_touched
    from {{ ref('dim_persons') }}
),

final as (
    select * from persons
    where resolved_households_touched > 1
)

select * from final
