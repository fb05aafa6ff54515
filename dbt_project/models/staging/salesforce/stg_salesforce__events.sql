with

source as (
    {{ salesforce_current_records(source('salesforce', 'event')) }}
),

renamed as (
    select
        cast(id as string) as event_id,
        cast(whatid as string) as account_id,
        cast(whoid as string) as contact_id,
        cast(ownerid as string) as owner_user_id,
        cast(subject as string) as subject,
        cast(type as string) as event_type,
        cast(durationinminutes as integer) as duration_minutes,
        {{ to_utc_timestamp('startdatetime') }} as started_at,
        {{ to_utc_timestamp('enddatetime') }} as ended_at,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
