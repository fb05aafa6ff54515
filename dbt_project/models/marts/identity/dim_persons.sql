-- One row per person, resolved from the CRM's duplicates by identity/ (Contacts created by several
-- advisors, the custodian's account owners). Consent binds to the person, not the record: an e-mail
-- opt-out on any of a person's records is the person's, and any person's opt-out is the household's
-- (the resolved household: Accounts that share a person are one household, see dim_resolved_households).
with

person_records as (
    select * from {{ ref('stg_identity__person_records') }}
),

contacts as (
    select
        contact_id,
        email,
        has_opted_out_of_email
    from {{ ref('stg_salesforce__contacts') }}
),

households as (
    select
        account_id,
        household_id
    from {{ ref('dim_households') }}
),

records_placed as (
    select
        person_records.person_id,
        person_records.record_id,
        person_records.record_type,
        person_records.resolution_run_id,
        person_records.household_account_id,
        households.household_id,
        contacts.email,
        coalesce(contacts.has_opted_out_of_email, false) as has_opted_out_of_email
    from person_records
    left join households on person_records.account_id = households.account_id
    left join contacts on person_records.record_id = contacts.contact_id
),

household_votes as (
    select
        person_id,
        household_id,
        count(*) as records_in_household
    from records_placed
    where household_id is not null
    group by person_id, household_id
),

household_ranked as (
    select
        person_id,
        household_id,
        row_number() over (
            partition by person_id order by records_in_household desc, household_id asc
        ) as household_rank
    from household_votes
),

person_facts as (
    select
        person_id,
        {{ sorted_string_agg('record_id', "','") }} as source_record_ids,
        cast(sum(case when record_type = 'contact' then 1 else 0 end) as bigint) as contact_records,
        cast(sum(case when record_type = 'brokerage_owner' then 1 else 0 end) as bigint) as brokerage_account_records,
        cast(count(distinct household_id) as bigint) as households_touched,
        cast(count(distinct household_account_id) as bigint) as resolved_households_touched,
        min(household_account_id) as household_account_id,
        max(case when has_opted_out_of_email then 1 else 0 end) = 1 as has_opted_out,
        min(lower(trim(email))) as first_email,
        max(resolution_run_id) as resolution_run_id
    from records_placed
    group by person_id
),

persons as (
    select
        person_facts.person_id,
        household_ranked.household_id,
        person_facts.source_record_ids,
        person_facts.contact_records,
        person_facts.brokerage_account_records,
        person_facts.households_touched,
        person_facts.resolved_households_touched,
        person_facts.household_account_id,
        person_facts.has_opted_out,
        person_facts.resolution_run_id,
        {{ hash_pii('person_facts.first_email') }} as email_hash
    from person_facts
    left join household_ranked
        on
            person_facts.person_id = household_ranked.person_id
            and household_ranked.household_rank = 1
),

household_opt_outs as (
    select
        household_account_id,
        max(case when has_opted_out then 1 else 0 end) = 1 as household_has_opted_out
    from persons
    where household_account_id is not null
    group by household_account_id
),

final as (
    select
        persons.person_id,
        persons.household_id,
        persons.source_record_ids,
        persons.contact_records,
        persons.brokerage_account_records,
        persons.households_touched,
        persons.resolved_households_touched,
        persons.email_hash,
        persons.has_opted_out,
        coalesce(household_opt_outs.household_has_opted_out, persons.has_opted_out) as household_has_opted_out,
        persons.resolution_run_id
    from persons
    left join household_opt_outs on persons.household_account_id = household_opt_outs.household_account_id
)

select * from final
