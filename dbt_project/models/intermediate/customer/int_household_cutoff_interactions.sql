-- Interaction features per household and cutoff: calls, emails, meetings, cases and complaints
-- dated on or before the cutoff, cases still open at it.
--
-- Window frames over each household's days, not a join of every cutoff to the household's whole
-- interaction history (at `large` each interaction met ~18 cutoffs, and the join spilled tens of
-- GB). The cutoffs are probe rows in the household's series of interactions and case closures,
-- ordered by day number; each probe counts the interactions of its last 90 and 365 days with RANGE
-- frames, and the cases open at it as a running balance: +1 when a case opens (if it closes after
-- that day, or is open with no close date), -1 on the day it closes.
-- A large grid is built in batches of households, one statement each (macros/household_batches.sql).
{{ config(materialized='table', post_hook="{{ insert_household_batches() }}") }}

{%- set kinds = ['call', 'email', 'meeting', 'case', 'complaint'] %}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
    where {{ household_batch('household_id') }}
),

interactions as (
    select
        *,
        {{ days_between("'1970-01-01'", 'occurred_on') }} as day_number,
        {{ days_between("'1970-01-01'", 'closed_at') }} as closed_day_number,
        interaction_type in ('case', 'complaint') as is_service_case
    from {{ ref('int_interactions_unioned') }}
    where {{ household_batch('household_id') }}
),

series as (
    select
        household_id,
        cast(null as date) as cutoff_on,
        day_number,
        occurred_on,
        1 as is_interaction,
        {% for kind in kinds %}
        case when interaction_type = '{{ kind }}' then 1 end as is_{{ kind }},
        {% endfor %}
        case
            when is_service_case and ((closed_at is null and is_open) or closed_day_number > day_number) then 1
            else 0
        end as open_case_change
    from interactions
    where occurred_on is not null
    union all
    -- a case closing on a later day than it opened leaves the open count that day
    select
        household_id,
        cast(null as date) as cutoff_on,
        closed_day_number as day_number,
        cast(null as date) as occurred_on,
        cast(null as integer) as is_interaction,
        {% for kind in kinds %}
        cast(null as integer) as is_{{ kind }},
        {% endfor %}
        -1 as open_case_change
    from interactions
    where is_service_case and occurred_on is not null and closed_day_number > day_number
    union all
    select
        household_id,
        cutoff_on,
        {{ days_between("'1970-01-01'", 'cutoff_on') }} as day_number,
        cast(null as date) as occurred_on,
        cast(null as integer) as is_interaction,
        {% for kind in kinds %}
        cast(null as integer) as is_{{ kind }},
        {% endfor %}
        0 as open_case_change
    from windows
),

interaction_features as (
    {% call(bucket_filter) union_over_buckets(['series.household_id']) %}
        select
            series.household_id,
            series.cutoff_on,
            count(series.is_interaction) over to_date as interactions_to_date,
            {% for kind in kinds %}
                count(series.is_{{ kind }}) over days_90 as {{ kind }}s_90d,
                count(series.is_{{ kind }}) over days_365 as {{ kind }}s_365d,
            {% endfor %}
            sum(series.open_case_change) over to_date as open_cases_at_cutoff,
            max(series.occurred_on) over to_date as last_interaction_on
        from series
        where {{ bucket_filter }}
        window
            days_90 as (
                partition by series.household_id order by series.day_number
                range between 89 preceding and current row
            ),
            days_365 as (
                partition by series.household_id order by series.day_number
                range between 364 preceding and current row
            ),
            to_date as (
                partition by series.household_id order by series.day_number
                range between unbounded preceding and current row
            )
    {% endcall %}
),

final as (
    select
        household_id,
        cutoff_on,
        {% for kind in kinds %}
        {{ kind }}s_90d,
        {{ kind }}s_365d,
        {% endfor %}
        open_cases_at_cutoff,
        last_interaction_on
    from interaction_features
    -- the probes with an interaction on or before the cutoff (as the join's inner side was)
    where cutoff_on is not null and interactions_to_date > 0
)

select * from final
