-- Spark's households snapshot: dbt's SCD2 columns over the append-only log int_household_versions,
-- the same rows as the snapshot DuckDB keeps (check strategy on the tracked columns, valid from the
-- change's SystemModstamp, a deleted household closed out when the run noticed; see
-- snapshots/households_snapshot.yml). dbt_scd_id is dbt's hash of the key and the version's
-- updated_at.
{{
    config(
        materialized='view',
        schema='snapshots',
        enabled=(target.type == 'spark'),
    )
}}

with

events as (
    select * from {{ ref('int_household_versions') }}
),

sequenced as (
    select
        events.*,
        lead(events.event_at) over (
            partition by events.household_id
            order by events.event_at, events.event_kind desc
        ) as next_event_at
    from events
),

final as (
    select
        household_id,
        account_id,
        owner_user_id,
        aum_band,
        fee_schedule_bps,
        risk_profile,
        has_marketing_consent,
        has_analytics_consent,
        billing_state,
        system_modstamp_at,
        md5(
            coalesce(cast(household_id as string), '') || '|' || coalesce(cast(system_modstamp_at as string), '')
        ) as dbt_scd_id,
        system_modstamp_at as dbt_updated_at,
        system_modstamp_at as dbt_valid_from,
        next_event_at as dbt_valid_to
    from sequenced
    where event_kind = 'version'
)

select * from final
