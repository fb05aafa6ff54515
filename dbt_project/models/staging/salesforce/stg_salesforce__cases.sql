with

source as (
    {{ salesforce_current_records(source('salesforce', 'case')) }}
),

renamed as (
    select
        cast(id as varchar) as case_id,
        cast(accountid as varchar) as account_id,
        cast(contactid as varchar) as contact_id,
        cast(subject as varchar) as subject,
        cast(type as varchar) as case_type,
        cast(priority as varchar) as priority,
        cast(status as varchar) as status,
        cast(origin as varchar) as origin,
        coalesce(cast(isclosed as boolean), false) as is_closed,
        coalesce(cast(type as varchar) = 'Complaint', false) as is_complaint,
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
