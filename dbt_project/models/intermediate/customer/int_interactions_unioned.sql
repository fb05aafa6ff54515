-- Calls, emails, meetings, cases and complaints in one shape, keyed to the household; Tasks that
-- Northstar created (stg_salesforce__tasks.is_created_by_northstar) are left out.
with

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

tasks as (
    select * from {{ ref('stg_salesforce__tasks') }}
),

events as (
    select * from {{ ref('stg_salesforce__events') }}
),

cases as (
    select * from {{ ref('stg_salesforce__cases') }}
),

unioned as (
    select
        task_id as interaction_id,
        'task' as source_object,
        account_id,
        contact_id,
        owner_user_id,
        case when lower(coalesce(task_subtype, task_type)) = 'email' then 'email' else 'call' end
            as interaction_type,
        coalesce(cast(activity_on as timestamp), created_at) as occurred_at,
        coalesce(activity_on, cast(created_at as date)) as occurred_on,
        cast(null as timestamp) as closed_at,
        false as is_open,
        cast(call_duration_seconds as double) / 60 as duration_minutes,
        cast(null as string) as priority,
        status
    from tasks
    -- Northstar's own Tasks are not advisor activity: counting them would feed the model its output
    where not is_created_by_northstar
    union all
    select
        event_id as interaction_id,
        'event' as source_object,
        account_id,
        contact_id,
        owner_user_id,
        'meeting' as interaction_type,
        started_at as occurred_at,
        cast(started_at as date) as occurred_on,
        ended_at as closed_at,
        false as is_open,
        cast(duration_minutes as double) as duration_minutes,
        cast(null as string) as priority,
        cast(null as string) as status
    from events
    union all
    select
        case_id as interaction_id,
        'case' as source_object,
        account_id,
        contact_id,
        cast(null as string) as owner_user_id,
        case when is_complaint then 'complaint' else 'case' end as interaction_type,
        created_at as occurred_at,
        cast(created_at as date) as occurred_on,
        closed_at,
        not is_closed as is_open,
        cast(null as double) as duration_minutes,
        priority,
        status
    from cases
),

final as (
    select
        unioned.interaction_id,
        unioned.source_object,
        households.household_id,
        unioned.contact_id,
        coalesce(unioned.owner_user_id, households.owner_user_id) as advisor_id,
        unioned.interaction_type,
        unioned.occurred_at,
        unioned.occurred_on,
        unioned.closed_at,
        unioned.is_open,
        unioned.duration_minutes,
        unioned.priority,
        unioned.status
    from unioned
    inner join households
        on unioned.account_id = households.account_id
)

select * from final
