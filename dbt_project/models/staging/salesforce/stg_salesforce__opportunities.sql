with

source as (
    {{ salesforce_current_records(source('salesforce', 'opportunity')) }}
),

renamed as (
    select
        cast(id as string) as opportunity_id,
        cast(accountid as string) as account_id,
        cast(ownerid as string) as owner_user_id,
        cast(name as string) as opportunity_name,
        cast(type as string) as opportunity_type,
        cast(amount as double) as amount,
        cast(stagename as string) as stage_name,
        cast(closedate as date) as close_on,
        coalesce(cast(isclosed as boolean), false) as is_closed,
        coalesce(cast(iswon as boolean), false) as is_won,
        {{ to_utc_timestamp('createddate') }} as created_at,
        {{ to_utc_timestamp('systemmodstamp') }} as system_modstamp_at,
        {{ to_utc_timestamp('_extracted_at') }} as extracted_at
    from source
),

final as (
    select * from renamed
)

select * from final
