with

source as (
    {{ salesforce_current_records(source('salesforce', 'user')) }}
),

renamed as (
    select
        cast(id as string) as user_id,
        cast(username as string) as username,
        cast(firstname as string) as first_name,
        cast(lastname as string) as last_name,
        cast(email as string) as email,
        cast(title as string) as title,
        cast(region__c as string) as region,
        cast(isactive as boolean) as is_active,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
