{#
    Money aggregated in exact decimal arithmetic, returned as double.

    Summing doubles in parallel gives a different last bit from build to build (the order of the
    additions changes), which once flipped an advisor-facing driver from $749 to $748 and rewrote
    Salesforce Accounts on a rerun with unchanged input. Each amount is taken at cents (the scale
    statements are billed in), summed exactly, and only the total is turned back into a double,
    so the same statements always give the same bits.
#}
{% macro money_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(18, 2))) as double)
{%- endmacro %}

{% macro money_avg(expression) -%}
    cast(avg(cast({{ expression }} as decimal(18, 2))) as double)
{%- endmacro %}

{#
    The same for quantities, prices and notionals (``scale`` decimals; trade messages carry up to 10):
    a VWAP summed in parallel doubles differed in its last bits between two builds of the same trades
    at the `demo` scale (bench/bench_reruns.py), so a rerun rewrote fct_trade_matches.
#}
{% macro exact_sum(expression, scale=10) -%}
    cast(sum(cast({{ expression }} as decimal(38, {{ scale }}))) as double)
{%- endmacro %}

{#- money_sum / money_avg as window functions over `window` (a named window or a parenthesised
    specification): the same exact decimal arithmetic, so a windowed feature has the bits of the
    aggregate it replaces. -#}
{% macro money_sum_over(expression, window) -%}
    cast(sum(cast({{ expression }} as decimal(18, 2))) over {{ window }} as double)
{%- endmacro %}

{% macro money_avg_over(expression, window) -%}
    cast(avg(cast({{ expression }} as decimal(18, 2))) over {{ window }} as double)
{%- endmacro %}
