{{ config(severity='error', tags=['governance']) }}
-- The masked columns of the public marts hold only hashes and masks: a 64-hex-character digest,
-- an email whose local part is one character and ***, never a raw address.
with

hashed_columns as (
    select
        household_name_hash as masked_value,
        'dim_households.household_name_hash' as column_name
    from {{ ref('dim_households') }}
    union all
    select
        primary_contact_email_hash as masked_value,
        'dim_households.primary_contact_email_hash' as column_name
    from {{ ref('dim_households') }}
    union all
    select
        advisor_name_hash as masked_value,
        'dim_advisors.advisor_name_hash' as column_name
    from {{ ref('dim_advisors') }}
    union all
    select
        username_hash as masked_value,
        'dim_advisors.username_hash' as column_name
    from {{ ref('dim_advisors') }}
),

email_columns as (
    select
        primary_contact_email_masked as masked_value,
        'dim_households.primary_contact_email_masked' as column_name
    from {{ ref('dim_households') }}
    union all
    select
        email_masked as masked_value,
        'dim_advisors.email_masked' as column_name
    from {{ ref('dim_advisors') }}
),

final as (
    select
        column_name,
        masked_value
    from hashed_columns
    where masked_value is not null and (length(masked_value) != 64 or lower(masked_value) != masked_value)
    union all
    select
        column_name,
        masked_value
    from email_columns
    where masked_value is not null and masked_value != '***' and masked_value not like '_***@%'
)

select * from final
