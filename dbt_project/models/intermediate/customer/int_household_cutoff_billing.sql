-- Billing features per household and cutoff: statements of the 12 billed months up to the
-- cutoff's feature month, and no later month (no leakage).
{{ config(materialized='table') }}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
),

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

billing_features as (
    {% call(bucket_filter) union_over_buckets(['windows.household_id', 'hm.household_id']) %}
        select
            windows.household_id,
            windows.cutoff_on,
            {{ money_sum('case when hm.statement_month_on = windows.feature_month_on then hm.aum end') }}
                as aum_at_cutoff,
            {{ money_sum('case when hm.statement_month_on = windows.month_12_back_on then hm.aum end') }}
                as aum_12m_before,
            {{ money_avg('case when hm.statement_month_on > windows.month_3_back_on then hm.aum end') }} as aum_avg_3m,
            {{ money_avg('case when hm.statement_month_on > windows.month_12_back_on then hm.aum end') }}
                as aum_avg_12m,
            {{ money_sum('case when hm.statement_month_on > windows.month_3_back_on then hm.fees_billed else 0 end') }}
                as fees_3m,
            {{ money_sum('case when hm.statement_month_on > windows.month_12_back_on then hm.fees_billed else 0 end') }}
                as fees_12m,
            {{ money_sum('case when hm.statement_month_on > windows.month_3_back_on then hm.net_flows else 0 end') }}
                as net_flows_3m,
            {{ money_sum('case when hm.statement_month_on > windows.month_12_back_on then hm.net_flows else 0 end') }}
                as net_flows_12m,
            sum(case when hm.statement_month_on = windows.feature_month_on then hm.open_account_count else 0 end)
                as billed_open_accounts_at_cutoff
        from windows
        inner join household_months as hm
            on
                windows.household_id = hm.household_id
                and hm.statement_month_on between windows.month_12_back_on and windows.feature_month_on
        where {{ bucket_filter }}
        group by windows.household_id, windows.cutoff_on
    {% endcall %}
)

select * from billing_features
