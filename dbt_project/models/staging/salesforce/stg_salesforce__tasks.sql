with

source as (
    {{ salesforce_current_records(source('salesforce', 'task')) }}
),

renamed as (
    select
        cast(id as string) as task_id,
        cast(whatid as string) as account_id,
        cast(whoid as string) as contact_id,
        cast(ownerid as string) as owner_user_id,
        cast(subject as string) as subject,
        cast(type as string) as task_type,
        cast(tasksubtype as string) as task_subtype,
        cast(status as string) as status,
        cast(activitydate as date) as activity_on,
        cast(calldurationinseconds as integer) as call_duration_seconds,
        -- Northstar's own retention Tasks carry its external id: tagged here so that no feature
        -- counts them as advisor activity (the model must not learn from its own output)
        cast(northstar_key__c as string) as northstar_key,
        northstar_key__c is not null as is_created_by_northstar,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
