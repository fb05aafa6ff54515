{#- Which business dates a reconciliation run re-matches. Intraday runs pass the dates that got
    new landing data in var('business_dates'); without it every date is (re)matched. -#}

{% macro business_dates_to_process() -%}
    {%- set dates = var('business_dates', []) -%}
    {%- if dates is string -%}
        {%- set dates = dates.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- endif -%}
    {{ return(dates) }}
{%- endmacro %}

{#- A predicate: the column is one of the dates being re-matched. -#}
{% macro in_business_dates(column) -%}
    {%- set dates = business_dates_to_process() -%}
    {%- if dates | length == 0 -%}
        1 = 1
    {%- else -%}
        {{ column }} in ({% for d in dates %}cast('{{ d }}' as date){% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- A predicate: the column lies within the match window around the dates being re-matched, so a
    counterpart reported on a neighbouring day (time zones, late confirms) is still found. -#}
{% macro near_business_dates(column) -%}
    {%- set dates = business_dates_to_process() -%}
    {%- if dates | length == 0 -%}
        1 = 1
    {%- else -%}
        {%- set window = var('recon_match_window_days', 5) | int -%}
        {{ column }} between {{ dbt.dateadd('day', -window, "cast('" ~ (dates | min) ~ "' as date)") }}
        and {{ dbt.dateadd('day', window, "cast('" ~ (dates | max) ~ "' as date)") }}
    {%- endif -%}
{%- endmacro %}

{#- When this reconciliation run observed the breaks: dbt's run start, or var('recon_observed_at')
    so a replay is reproducible. -#}
{% macro recon_observed_at() -%}
    {%- set observed = var('recon_observed_at', run_started_at.strftime('%Y-%m-%d %H:%M:%S')) -%}
    cast('{{ observed }}' as timestamp)
{%- endmacro %}

{#- A stable surrogate key: md5 over the '|'-joined expressions (nulls as empty strings),
    rendered over several lines so compiled SQL stays readable. -#}
{% macro surrogate_key(expressions) -%}
    {%- set parts = [] -%}
    {%- for expression in expressions -%}
        {%- do parts.append("coalesce(cast(" ~ expression ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.hash("\n            " ~ (parts | join("\n            || '|' || ")) ~ "\n        ") }}
{%- endmacro %}

{#- The rows the matching counts: every row whose key was delivered once, and the first delivery
    of a repeated key (`repeated` holds one row per repeated key with its first_row_id, see
    int_repeated_deliveries_identified). One join against a small table, not a rank of every row. -#}
{% macro first_deliveries(relation, repeated, keys, row_id) -%}
    select delivered.*
    from {{ relation }} as delivered
    left join {{ repeated }} as repeated_keys
        on {% for key in keys %}delivered.{{ key }} = repeated_keys.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    where
        repeated_keys.first_row_id is null
        or delivered.{{ row_id }} = repeated_keys.first_row_id
{%- endmacro %}
