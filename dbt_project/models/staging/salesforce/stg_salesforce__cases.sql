with

source as (
    {{ salesforce_current_records(source('salesforce', 'case')) }}
),

renamed as (
    select
        cast(id as string) as case_id,
        cast(accountid as string) as account_id,
        cast(contactid as string) as contact_id,
        cast(subject as string) as subject,
        cast(type as string) as case_type,
        cast(priority as string) as priority,
        cast(status as string) as status,
        cast(origin as string) as origin,
        coalesce(cast(isclosed as boolean), false) as is_closed,
        coalesce(cast(type as string) = 'Complaint', false) as is_complaint,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('closeddate') }} as closed_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
