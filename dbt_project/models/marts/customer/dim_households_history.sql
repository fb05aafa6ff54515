-- Every version of the tracked household attributes (SCD2, from snapshots/households_snapshot).
with

snapshot_versions as (
    select * from {{ ref('households_snapshot') }}
),

final as (
    select
        dbt_scd_id as household_version_id,
        household_id,
        owner_user_id as advisor_id,
        aum_band,
        fee_schedule_bps,
        risk_profile,
        has_marketing_consent,
        has_analytics_consent,
        billing_state,
        cast(dbt_valid_from as timestamp) as valid_from_at,
        cast(dbt_valid_to as timestamp) as valid_to_at,
        dbt_valid_to is null as is_current
    from snapshot_versions
)

select * from final
