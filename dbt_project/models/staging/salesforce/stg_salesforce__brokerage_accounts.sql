with

source as (
    {{ salesforce_current_records(source('salesforce', 'brokerage_account')) }}
),

renamed as (
    select
        cast(id as string) as brokerage_account_id,
        cast(coalesce(account_number__c, name) as string) as account_number,
        cast(household__c as string) as account_id,
        cast(custodian__c as string) as custodian,
        cast(account_type__c as string) as brokerage_account_type,
        cast(status__c as string) as status,
        coalesce(cast(status__c as string) = 'Open', false) as is_open,
        cast(opened_date__c as date) as opened_on,
        cast(closed_date__c as date) as closed_on,
        -- the owner as the custodian spells them: "LAST, FIRST M", MM/DD/YYYY, upper-case street
        cast(owner_name__c as string) as owner_name,
        {{ parse_date('owner_birthdate__c') }} as owner_birth_on,
        cast(owner_street__c as string) as owner_street,
        cast(owner_postal_code__c as string) as owner_postal_code,
        {{ hash_tax_id('owner_tax_id__c') }} as owner_tax_id_hash,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
