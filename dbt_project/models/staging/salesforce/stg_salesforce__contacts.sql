with

source as (
    {{ salesforce_current_records(source('salesforce', 'contact')) }}
),

renamed as (
    select
        cast(id as varchar) as contact_id,
        cast(accountid as varchar) as account_id,
        cast(firstname as varchar) as first_name,
        cast(lastname as varchar) as last_name,
        cast(email as varchar) as email,
        cast(phone as varchar) as phone,
        cast(birthdate as date) as birth_on,
        cast(mailingstate as varchar) as mailing_state,
        coalesce(cast(is_primary__c as boolean), false) as is_primary,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
