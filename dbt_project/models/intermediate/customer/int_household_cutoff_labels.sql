-- Labels per household and cutoff: what the household was billed in the 12 months after the
-- cutoff's feature month (training targets only; fct_household_features nulls them until the
-- window is fully billed).
{{ config(materialized='table') }}

{%- set buckets = var('feature_aggregation_buckets', 8) | int %}
with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
),

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

labels as (
    -- one aggregation per household bucket (var feature_aggregation_buckets): the same rows,
    -- in hash tables that fit in memory
    {% for bucket in range(buckets) %}
        select
            windows.household_id,
            windows.cutoff_on,
            sum(hm.fees_billed) as revenue_next_12m,
            sum(case when hm.open_account_count > 0 then 1 else 0 end) as active_months_next_12m
        from windows
        inner join household_months as hm
            on
                windows.household_id = hm.household_id
                and windows.feature_month_on < hm.statement_month_on
                and windows.month_12_ahead_on >= hm.statement_month_on
        where
            {{ hash_bucket('windows.household_id', buckets) }} = {{ bucket }}
            and {{ hash_bucket('hm.household_id', buckets) }} = {{ bucket }}
        group by windows.household_id, windows.cutoff_on
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from labels
