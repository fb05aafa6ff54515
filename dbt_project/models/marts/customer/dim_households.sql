-- The current state of every household, with PII only hashed or masked.
with

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

brokerage_accounts as (
    select * from {{ ref('stg_salesforce__brokerage_accounts') }}
),

billing_calendar as (
    select max(period_end_on) as as_of_on
    from {{ ref('int_household_months_aggregated') }}
),

primary_contacts as (
    select *
    from (
        select
            *,
            row_number() over (
                partition by account_id order by is_primary desc, created_at asc, contact_id asc
            ) as contact_rank
        from contacts
    ) as ranked
    where contact_rank = 1
),

account_counts as (
    select
        account_id,
        count(*) as brokerage_account_count,
        sum(case when is_open then 1 else 0 end) as open_account_count
    from brokerage_accounts
    group by account_id
),

final as (
    select
        households.household_id,
        households.account_id,
        {{ hash_pii('households.household_name') }} as household_name_hash,
        households.owner_user_id as advisor_id,
        households.aum_band,
        households.fee_schedule_bps,
        households.client_since_on,
        households.risk_profile,
        households.has_marketing_consent,
        households.has_analytics_consent,
        households.billing_state,
        primary_contacts.contact_id as primary_contact_id,
        {{ hash_pii('primary_contacts.email') }} as primary_contact_email_hash,
        {{ mask_email('primary_contacts.email') }} as primary_contact_email_masked,
        {{ age_band('primary_contacts.birth_on', 'billing_calendar.as_of_on') }} as primary_contact_age_band,
        cast(coalesce(account_counts.brokerage_account_count, 0) as bigint) as brokerage_account_count,
        cast(coalesce(account_counts.open_account_count, 0) as bigint) as open_account_count,
        households.created_at,
        households.system_modstamp_at
    from households
    cross join billing_calendar
    left join primary_contacts
        on households.account_id = primary_contacts.account_id
    left join account_counts
        on households.account_id = account_counts.account_id
)

select * from final
