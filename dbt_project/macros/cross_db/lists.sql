{#- Lists of strings (the break types on a trade): DuckDB's list functions, Spark's arrays. -#}

{#- The distinct non-null values of expr in a group, sorted (an aggregate). -#}
{% macro sorted_distinct_agg(expr) -%}
    {{ return(adapter.dispatch('sorted_distinct_agg', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__sorted_distinct_agg(expr) -%}
    list_sort(list_distinct(list({{ expr }})))
{%- endmacro %}

{% macro spark__sorted_distinct_agg(expr) -%}
    array_sort(collect_set({{ expr }}))
{%- endmacro %}

{#- The sorted distinct union of two string lists (a null list counts as empty). -#}
{% macro sorted_distinct_union(left, right) -%}
    {{ return(adapter.dispatch('sorted_distinct_union', 'northstar')(left, right)) }}
{%- endmacro %}

{% macro default__sorted_distinct_union(left, right) -%}
    list_sort(list_distinct(list_concat(coalesce({{ left }}, []), coalesce({{ right }}, []))))
{%- endmacro %}

{% macro spark__sorted_distinct_union(left, right) -%}
    array_sort(array_distinct(concat(
        coalesce({{ left }}, cast(array() as array<string>)),
        coalesce({{ right }}, cast(array() as array<string>))
    )))
{%- endmacro %}

{#- A list literal of strings: string_list(["'missing_broker'"]); string_list([]) is the empty list. -#}
{% macro string_list(items) -%}
    {{ return(adapter.dispatch('string_list', 'northstar')(items)) }}
{%- endmacro %}

{% macro default__string_list(items) -%}
    {%- if items | length == 0 -%}cast([] as string[]){%- else -%}[{{ items | join(', ') }}]{%- endif -%}
{%- endmacro %}

{% macro spark__string_list(items) -%}
    cast(array({{ items | join(', ') }}) as array<string>)
{%- endmacro %}

{#- The n largest (top_values) or smallest (bottom_values) values of expr in a group, as a list,
    largest (smallest) first; list_item(list, i) is its i-th item counted from 1 (null past the end). -#}
{% macro top_values(expr, n) -%}
    {{ return(adapter.dispatch('top_values', 'northstar')(expr, n)) }}
{%- endmacro %}

{% macro default__top_values(expr, n) -%}
    max({{ expr }}, {{ n }})
{%- endmacro %}

{% macro spark__top_values(expr, n) -%}
    slice(sort_array(collect_list({{ expr }}), false), 1, {{ n }})
{%- endmacro %}

{% macro bottom_values(expr, n) -%}
    {{ return(adapter.dispatch('bottom_values', 'northstar')(expr, n)) }}
{%- endmacro %}

{% macro default__bottom_values(expr, n) -%}
    min({{ expr }}, {{ n }})
{%- endmacro %}

{% macro spark__bottom_values(expr, n) -%}
    slice(sort_array(collect_list({{ expr }}), true), 1, {{ n }})
{%- endmacro %}

{% macro list_item(list, index) -%}
    {{ return(adapter.dispatch('list_item', 'northstar')(list, index)) }}
{%- endmacro %}

{% macro default__list_item(list, index) -%}
    {{ list }}[{{ index }}]
{%- endmacro %}

{% macro spark__list_item(list, index) -%}
    element_at({{ list }}, {{ index }})
{%- endmacro %}

{#- The values of expr in a group joined by delimiter, sorted (an aggregate). dbt's listagg has no
    order on Spark (collect_list's order is the shuffle's), so Spark sorts the collected list. -#}
{% macro sorted_string_agg(expr, delimiter) -%}
    {{ return(adapter.dispatch('sorted_string_agg', 'northstar')(expr, delimiter)) }}
{%- endmacro %}

{% macro default__sorted_string_agg(expr, delimiter) -%}
    {{ dbt.listagg(expr, delimiter, 'order by ' ~ expr) }}
{%- endmacro %}

{% macro spark__sorted_string_agg(expr, delimiter) -%}
    array_join(array_sort(collect_list({{ expr }})), {{ delimiter }})
{%- endmacro %}

{#- The median of a decimal(18, 12) expression, as a decimal(18, 12), with DuckDB's rule: the mean of
    the two middle values (one value for an odd count), truncated toward zero to the scale. Spark's
    median works in doubles, and a log-price deviation taken from it differed from DuckDB's in the 13th
    digit. -#}
{% macro median_decimal(expr) -%}
    {{ return(adapter.dispatch('median_decimal', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__median_decimal(expr) -%}
    median({{ expr }})
{%- endmacro %}

{% macro spark__median_decimal(expr) -%}
    {%- set midpoint -%}
        (
            cast(percentile_disc(0.5) within group (order by {{ expr }}) as decimal(18, 12))
            + cast(-(percentile_disc(0.5) within group (order by -({{ expr }}))) as decimal(18, 12))
        ) / 2
    {%- endset -%}
    cast(case when {{ midpoint }} >= 0 then floor({{ midpoint }}, 12) else ceil({{ midpoint }}, 12) end as decimal(18, 12))
{%- endmacro %}
