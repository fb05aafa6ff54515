-- The household attributes whose history is kept (snapshots/households_snapshot.yml). Names and
-- contact details stay out: the snapshot holds no PII.
with

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
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
        system_modstamp_at
    from households
)

select * from final
