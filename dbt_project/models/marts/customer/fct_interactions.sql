with

interactions as (
    select * from {{ ref('int_interactions_unioned') }}
),

final as (
    select
        interaction_id,
        source_object,
        household_id,
        contact_id,
        advisor_id,
        interaction_type,
        occurred_at,
        occurred_on,
        closed_at,
        is_open,
        duration_minutes,
        priority,
        status
    from interactions
)

select * from final
