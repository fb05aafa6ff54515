-- Billing features per household and cutoff: statements of the 12 billed months up to the
-- cutoff's feature month, and no later month (no leakage).
--
-- Window frames over each household's months, not a join of every cutoff to its 13 months: the
-- cutoffs go into the household's month series as probe rows (no amounts), and each probe reads its
-- window with RANGE frames over a month number. That is one sort of months + cutoffs per household
-- instead of cutoffs x months join rows (at `large`, 36M cutoffs x 13 months went through a hash
-- aggregation that spilled tens of GB). RANGE frames include every row of the same month, as the
-- join did, and the probes carry nulls, which no aggregate counts.
-- A large grid is built in batches of households, one statement each (macros/household_batches.sql).
{{ config(materialized='table', post_hook="{{ insert_household_batches() }}") }}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
    where {{ household_batch('household_id') }}
),

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
    where {{ household_batch('household_id') }}
),

series as (
    select
        household_id,
        cast(null as date) as cutoff_on,
        {{ month_number('statement_month_on') }} as month_number,
        1 as is_statement,
        aum,
        fees_billed,
        net_flows,
        open_account_count
    from household_months
    union all
    select
        household_id,
        cutoff_on,
        {{ month_number('feature_month_on') }} as month_number,
        cast(null as integer) as is_statement,
        cast(null as double) as aum,
        cast(null as double) as fees_billed,
        cast(null as double) as net_flows,
        cast(null as bigint) as open_account_count
    from windows
),

billing_features as (
    {% call(bucket_filter) union_over_buckets(['series.household_id']) %}
        select
            series.household_id,
            series.cutoff_on,
            count(series.is_statement) over months_13 as statements_in_window,
            {{ money_sum_over('series.aum', 'this_month') }} as aum_at_cutoff,
            {{ money_sum_over('series.aum', 'month_12_back') }} as aum_12m_before,
            {{ money_avg_over('series.aum', 'months_3') }} as aum_avg_3m,
            {{ money_avg_over('series.aum', 'months_12') }} as aum_avg_12m,
            coalesce({{ money_sum_over('series.fees_billed', 'months_3') }}, 0) as fees_3m,
            coalesce({{ money_sum_over('series.fees_billed', 'months_12') }}, 0) as fees_12m,
            coalesce({{ money_sum_over('series.net_flows', 'months_3') }}, 0) as net_flows_3m,
            coalesce({{ money_sum_over('series.net_flows', 'months_12') }}, 0) as net_flows_12m,
            coalesce(sum(series.open_account_count) over this_month, 0) as billed_open_accounts_at_cutoff
        from series
        where {{ bucket_filter }}
        window
            this_month as (
                partition by series.household_id order by series.month_number
                range between current row and current row
            ),
            month_12_back as (
                partition by series.household_id order by series.month_number
                range between 12 preceding and 12 preceding
            ),
            months_3 as (
                partition by series.household_id order by series.month_number
                range between 2 preceding and current row
            ),
            months_12 as (
                partition by series.household_id order by series.month_number
                range between 11 preceding and current row
            ),
            months_13 as (
                partition by series.household_id order by series.month_number
                range between 12 preceding and current row
            )
    {% endcall %}
),

final as (
    select
        household_id,
        cutoff_on,
        aum_at_cutoff,
        aum_12m_before,
        aum_avg_3m,
        aum_avg_12m,
        fees_3m,
        fees_12m,
        net_flows_3m,
        net_flows_12m,
        billed_open_accounts_at_cutoff
    from billing_features
    -- the probes, where the household was billed in the window (as the join's inner side was)
    where cutoff_on is not null and statements_in_window > 0
)

select * from final
