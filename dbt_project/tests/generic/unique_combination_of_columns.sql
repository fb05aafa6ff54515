{#- The grain of a model keyed by several columns: no two rows share the combination, and no key
    column is null (dbt_utils' test of the same name cannot be installed here: no dbt hub). Returns
    the offending combinations. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

keyed as (
    select {{ combination_of_columns | join(', ') }}
    from {{ model }}
),

repeated as (
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as rows_with_key
    from keyed
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
),

incomplete as (
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as rows_with_key
    from keyed
    where {% for column in combination_of_columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
    group by {{ combination_of_columns | join(', ') }}
),

final as (
    select * from repeated
    union all
    select * from incomplete
)

select * from final

{% endtest %}
