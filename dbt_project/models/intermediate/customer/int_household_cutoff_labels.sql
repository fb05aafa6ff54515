-- Labels per household and cutoff: what the household was billed in the 12 months after the
-- cutoff's feature month (training targets only; fct_household_features nulls them until the
-- window is fully billed).
--
-- As int_household_cutoff_billing: the cutoffs are probe rows in each household's month series and
-- read the 12 months after their feature month with a RANGE frame, instead of a join of every cutoff
-- to its 12 months.
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
        fees_billed,
        case when open_account_count > 0 then 1 else 0 end as is_active_month
    from household_months
    union all
    select
        household_id,
        cutoff_on,
        {{ month_number('feature_month_on') }} as month_number,
        cast(null as integer) as is_statement,
        cast(null as double) as fees_billed,
        cast(null as integer) as is_active_month
    from windows
),

labels as (
    {% call(bucket_filter) union_over_buckets(['series.household_id']) %}
        select
            series.household_id,
            series.cutoff_on,
            count(series.is_statement) over next_12_months as statements_in_window,
            {{ money_sum_over('series.fees_billed', 'next_12_months') }} as revenue_next_12m,
            sum(series.is_active_month) over next_12_months as active_months_next_12m
        from series
        where {{ bucket_filter }}
        window next_12_months as (
            partition by series.household_id order by series.month_number
            range between 1 following and 12 following
        )
    {% endcall %}
),

final as (
    select
        household_id,
        cutoff_on,
        revenue_next_12m,
        active_months_next_12m
    from labels
    -- the probes, where the household was billed in the window (as the join's inner side was)
    where cutoff_on is not null and statements_in_window > 0
)

select * from final
