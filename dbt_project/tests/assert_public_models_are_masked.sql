{{ config(severity='error', tags=['governance']) }}
-- The masked columns of the public marts hold only hashes and masks: a 64-hex-character digest,
-- an email whose local part is one character and ***, never a raw address.
with

household_columns as (
    select household_name_hash as value, 'dim_households.household_name_hash' as column_name from {{ ref('dim_households') }}
    union all
    select primary_contact_email_hash, 'dim_households.primary_contact_email_hash' from {{ ref('dim_households') }}
    union all
    select advisor_name_hash, 'dim_advisors.advisor_name_hash' from {{ ref('dim_advisors') }}
    union all
    select username_hash, 'dim_advisors.username_hash' from {{ ref('dim_advisors') }}
),

email_columns as (
    select primary_contact_email_masked as value, 'dim_households.primary_contact_email_masked' as column_name
    from {{ ref('dim_households') }}
    union all
    select email_masked, 'dim_advisors.email_masked' from {{ ref('dim_advisors') }}
),

final as (
    select column_name, value from household_columns
    where value is not null and (length(value) != 64 or lower(value) != value)
    union all
    select column_name, value from email_columns
    where value is not null and value != '***' and value not like '_***@%'
)

select * from final
