with

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

final as (
    select
        {{ surrogate_key(['household_id', 'period_end_on']) }} as household_month_id,
        household_id,
        period_end_on as month_end_on,
        currency,
        aum,
        net_flows,
        fees_billed,
        -- revenue is what the firm earns from the household: the advisory fees billed
        fees_billed as revenue,
        fees_billed * 12 / nullif(aum, 0) * 10000 as fee_bps_annualised,
        cast(open_account_count as bigint) as open_account_count,
        cast(billed_account_count as bigint) as billed_account_count,
        open_account_count > 0 as is_active
    from household_months
)

select * from final
