-- Interaction features per household and cutoff: calls, emails, meetings, cases and complaints
-- dated on or before the cutoff, cases still open at it.
{{ config(materialized='table') }}

with

windows as (
    select * from {{ ref('int_household_cutoffs') }}
),

interactions as (
    select * from {{ ref('int_interactions_unioned') }}
),

interaction_features as (
    {% call(bucket_filter) union_over_buckets(['windows.household_id', 'i.household_id']) %}
        select
            windows.household_id,
            windows.cutoff_on,
            {% for kind in ['call', 'email', 'meeting', 'case', 'complaint'] %}
                sum(
                    case
                        when i.interaction_type = '{{ kind }}' and i.occurred_on > windows.day_90_back_on then 1 else 0
                    end
                )
                    as {{ kind }}s_90d,
                sum(
                    case
                        when i.interaction_type = '{{ kind }}' and i.occurred_on > windows.day_365_back_on then 1 else 0
                    end
                )
                    as {{ kind }}s_365d,
            {% endfor %}
            sum(
                case
                    when i.interaction_type in ('case', 'complaint')
                        and ((i.closed_at is null and i.is_open) or cast(i.closed_at as date) > windows.cutoff_on)
                        then 1
                    else 0
                end
            ) as open_cases_at_cutoff,
            max(i.occurred_on) as last_interaction_on
        from windows
        inner join interactions as i
            on
                windows.household_id = i.household_id
                and windows.cutoff_on >= i.occurred_on
        where {{ bucket_filter }}
        group by windows.household_id, windows.cutoff_on
    {% endcall %}
)

select * from interaction_features
