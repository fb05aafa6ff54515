-- Labels per household and cutoff: what the household was billed in the 12 months after the
-- cutoff's feature month (training targets only; fct_household_features nulls them until the
-- window is fully billed).
{{ config(materialized='table') }}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
),

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

labels as (
    {% call(bucket_filter) union_over_buckets(['windows.household_id', 'hm.household_id']) %}
        select
            windows.household_id,
            windows.cutoff_on,
            {{ money_sum('hm.fees_billed') }} as revenue_next_12m,
            sum(case when hm.open_account_count > 0 then 1 else 0 end) as active_months_next_12m
        from windows
        inner join household_months as hm
            on
                windows.household_id = hm.household_id
                and windows.feature_month_on < hm.statement_month_on
                and windows.month_12_ahead_on >= hm.statement_month_on
        where {{ bucket_filter }}
        group by windows.household_id, windows.cutoff_on
    {% endcall %}
)

select * from labels
