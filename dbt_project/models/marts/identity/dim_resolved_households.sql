-- One row per CRM household (Account), with the household identity resolved it into. Accounts that
-- share a person are one household (two advisors each opened an Account for the same family); the
-- resolved household is named by its smallest Household_Id__c. The Salesforce push reads consent
-- from here: the strictest of every Account and every person of the resolved household, so an
-- opt-out on any duplicate record stops every push to the merged household.
with

households as (
    select
        household_id,
        account_id,
        coalesce(has_analytics_consent, false) as has_analytics_consent
    from {{ ref('dim_households') }}
),

person_records as (
    select
        record_id,
        account_id,
        person_id,
        household_account_id
    from {{ ref('stg_identity__person_records') }}
    where account_id is not null
),

contacts as (
    select
        contact_id,
        has_opted_out_of_email
    from {{ ref('stg_salesforce__contacts') }}
),

account_links as (
    select
        account_id,
        min(household_account_id) as household_account_id
    from person_records
    group by account_id
),

households_placed as (
    select
        households.household_id,
        households.account_id,
        households.has_analytics_consent,
        coalesce(account_links.household_account_id, households.account_id) as household_account_id
    from households
    left join account_links on households.account_id = account_links.account_id
),

resolved as (
    select
        household_account_id,
        min(household_id) as resolved_household_id,
        cast(count(*) as bigint) as accounts_in_household,
        min(case when has_analytics_consent then 1 else 0 end) = 1 as every_account_consents
    from households_placed
    group by household_account_id
),

-- a person's opt-out on any record is the person's (identity/ put all of a person's records in one
-- resolved household), and any person's is the household's
person_consent as (
    select
        person_records.household_account_id,
        cast(count(distinct person_records.person_id) as bigint) as persons,
        max(case when contacts.has_opted_out_of_email then 1 else 0 end) = 1 as any_person_opted_out
    from person_records
    left join contacts on person_records.record_id = contacts.contact_id
    group by person_records.household_account_id
),

final as (
    select
        households_placed.household_id,
        resolved.resolved_household_id,
        households_placed.household_id = resolved.resolved_household_id as is_primary_account,
        resolved.accounts_in_household,
        coalesce(person_consent.persons, 0) as persons,
        coalesce(person_consent.any_person_opted_out, false) as has_opted_out,
        resolved.every_account_consents as has_analytics_consent,
        resolved.every_account_consents
        and not coalesce(person_consent.any_person_opted_out, false) as has_push_consent
    from households_placed
    inner join resolved on households_placed.household_account_id = resolved.household_account_id
    left join person_consent on households_placed.household_account_id = person_consent.household_account_id
)

select * from final
