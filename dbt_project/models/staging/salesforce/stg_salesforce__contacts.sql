with

source as (
    {{ salesforce_current_records(source('salesforce', 'contact')) }}
),

renamed as (
    select
        cast(id as string) as contact_id,
        cast(accountid as string) as account_id,
        cast(firstname as string) as first_name,
        cast(lastname as string) as last_name,
        cast(email as string) as email,
        cast(phone as string) as phone,
        cast(birthdate as date) as birth_on,
        cast(mailingstate as string) as mailing_state,
        cast(mailingstreet as string) as mailing_street,
        cast(mailingcity as string) as mailing_city,
        cast(mailingpostalcode as string) as mailing_postal_code,
        -- the tax id never leaves staging raw: digits and letters only, then the salted hash
        {{ hash_tax_id('tax_id__c') }} as tax_id_hash,
        coalesce(cast(hasoptedoutofemail as boolean), false) as has_opted_out_of_email,
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
