-- One key per household for the state of the CRM records fct_household_features reads: the
-- household's tracked attribute versions (households_snapshot), its client-since date, and the count
-- and newest SystemModstamp of its contacts, opportunities, brokerage accounts, cases, events and
-- advisor tasks. Any insert, update or delete among them changes the key (an insert or update raises
-- the newest stamp, a delete lowers the count), so the incremental build of fct_household_features
-- rebuilds every cutoff of a household whose key moved and keeps the others. Northstar's own writes
-- (score fields on the Account, its retention Tasks) are left out, as the features leave them out.
{{ config(materialized='table') }}

with

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

household_versions as (
    select * from {{ ref('households_snapshot') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

brokerage_accounts as (
    select * from {{ ref('stg_salesforce__brokerage_accounts') }}
),

cases as (
    select * from {{ ref('stg_salesforce__cases') }}
),

events as (
    select * from {{ ref('stg_salesforce__events') }}
),

tasks as (
    select * from {{ ref('stg_salesforce__tasks') }}
),

versions as (
    select
        household_id,
        count(*) as version_count,
        max(dbt_valid_from) as latest_version_from
    from household_versions
    group by household_id
),

related_records as (
    select
        account_id,
        system_modstamp_at
    from contacts
    union all
    select
        account_id,
        system_modstamp_at
    from opportunities
    union all
    select
        account_id,
        system_modstamp_at
    from brokerage_accounts
    union all
    select
        account_id,
        system_modstamp_at
    from cases
    union all
    select
        account_id,
        system_modstamp_at
    from events
    union all
    select
        account_id,
        system_modstamp_at
    from tasks
    where not is_created_by_northstar
),

related_states as (
    select
        account_id,
        count(*) as record_count,
        max(system_modstamp_at) as last_modified_at
    from related_records
    group by account_id
),

final as (
    select
        households.household_id,
        households.account_id,
        {{ surrogate_key([
            'households.client_since_on',
            'versions.version_count',
            'versions.latest_version_from',
            'related_states.record_count',
            'related_states.last_modified_at',
        ]) }} as crm_state_key
    from households
    left join versions
        on households.household_id = versions.household_id
    left join related_states
        on households.account_id = related_states.account_id
)

select * from final
