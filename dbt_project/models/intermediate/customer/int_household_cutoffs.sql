-- One row per household and point-in-time cutoff, with the window bounds every feature of
-- fct_household_features is computed over (see that model for the point-in-time rules). Cutoffs:
-- var('feature_cutoffs') if given, else the month-ends of the last var('feature_cutoff_months')
-- months up to the latest billed month. A household enters a cutoff once it is a client.
-- Materialized (as are the per-source feature models built on it) so each large aggregation over
-- household x cutoff runs on its own, not all at once inside one query.
{%- set cutoffs = var('feature_cutoffs', []) -%}
{%- if cutoffs is string -%}
    {%- set cutoffs = cutoffs.split(',') | map('trim') | reject('equalto', '') | list -%}
{%- endif -%}
{%- set months_back = var('feature_cutoff_months', 36) | int %}
{{ config(materialized='table') }}

with

household_months as (
    select * from {{ ref('int_household_months_aggregated') }}
),

households as (
    select * from {{ ref('stg_salesforce__accounts') }}
),

cutoffs as (
    {% if cutoffs | length > 0 %}
        {% for cutoff in cutoffs %}
            select cast('{{ cutoff }}' as date) as cutoff_on
            {% if not loop.last %}union all{% endif %}
        {% endfor %}
    {% else %}
        select month_end_on as cutoff_on
        from (
            {{ month_end_series(
                "(select "
                ~ dbt.dateadd('month', -(months_back - 1), 'max(statement_month_on)')
                ~ " from household_months)",
                "(select max(statement_month_on) from household_months)",
            ) }}
        ) as month_ends
    {% endif %}
),

household_cutoffs as (
    select
        households.household_id,
        households.account_id,
        households.client_since_on,
        cutoffs.cutoff_on,
        case
            when cutoffs.cutoff_on = {{ month_end('cutoffs.cutoff_on') }} then cutoffs.cutoff_on
            else {{ month_end(dbt.dateadd('month', -1, 'cutoffs.cutoff_on')) }}
        end as feature_month_on
    from households
    cross join cutoffs
    where households.client_since_on <= cutoffs.cutoff_on
),

windows as (
    select
        household_cutoffs.*,
        {{ month_end(dbt.dateadd('month', -3, 'feature_month_on')) }} as month_3_back_on,
        {{ month_end(dbt.dateadd('month', -12, 'feature_month_on')) }} as month_12_back_on,
        {{ month_end(dbt.dateadd('month', 12, 'feature_month_on')) }} as month_12_ahead_on,
        {{ dbt.dateadd('day', -90, 'cutoff_on') }} as day_90_back_on,
        {{ dbt.dateadd('day', -365, 'cutoff_on') }} as day_365_back_on
    from household_cutoffs
)

select * from windows
