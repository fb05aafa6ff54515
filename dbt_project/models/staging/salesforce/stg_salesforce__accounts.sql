with

source as (
    {{ salesforce_current_records(source('salesforce', 'account')) }}
),

renamed as (
    select
        cast(id as string) as account_id,
        cast(household_id__c as string) as household_id,
        cast(name as string) as household_name,
        cast(type as string) as account_type,
        cast(ownerid as string) as owner_user_id,
        cast(aum_band__c as string) as aum_band,
        cast(fee_schedule_bps__c as double) as fee_schedule_bps,
        cast(client_since__c as date) as client_since_on,
        cast(risk_profile__c as string) as risk_profile,
        cast(marketing_consent__c as boolean) as has_marketing_consent,
        cast(analytics_consent__c as boolean) as has_analytics_consent,
        cast(billingstate as string) as billing_state,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('lastmodifieddate') }} as last_modified_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
