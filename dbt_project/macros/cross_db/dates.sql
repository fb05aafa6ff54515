{#- Every DuckDB-specific date function the models need, behind one name each. Another adapter
    gets its own implementation through adapter.dispatch. -#}

{#- A date from a value that may already be a date or a string in ISO, MM/DD/YYYY (atlas) or
    DD.MM.YYYY (meridian) form. -#}
{% macro parse_date(expr) -%}
    {{ return(adapter.dispatch('parse_date', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__parse_date(expr) -%}
    cast({{ expr }} as date)
{%- endmacro %}

{% macro duckdb__parse_date(expr) -%}
    coalesce(
        try_cast(cast({{ expr }} as varchar) as date),
        cast(try_strptime(cast({{ expr }} as varchar), '%m/%d/%Y') as date),
        cast(try_strptime(cast({{ expr }} as varchar), '%d.%m.%Y') as date)
    )
{%- endmacro %}

{#- A naive UTC timestamp from a timestamptz, a naive UTC timestamp or an ISO string. -#}
{% macro to_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expr) -%}
    cast({{ expr }} as timestamp)
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(expr) -%}
    timezone('UTC', cast({{ expr }} as timestamptz))
{%- endmacro %}

{#- Weekdays from start_date (exclusive) to end_date (inclusive); both are business days. -#}
{% macro business_days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('business_days_between', 'northstar')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__business_days_between(start_date, end_date) -%}
    greatest(
        0,
        {{ dbt.datediff(start_date, end_date, 'day') }}
        - 2 * {{ dbt.datediff(dbt.date_trunc('week', start_date), dbt.date_trunc('week', end_date), 'week') }}
    )
{%- endmacro %}

{#- The last day of the month of a date. -#}
{% macro month_end(expr) -%}
    cast({{ dbt.last_day(expr, 'month') }} as date)
{%- endmacro %}

{#- One row per month-end from start_date to end_date (inclusive), column month_end_on. -#}
{% macro month_end_series(start_date, end_date) -%}
    {{ return(adapter.dispatch('month_end_series', 'northstar')(start_date, end_date)) }}
{%- endmacro %}

{% macro duckdb__month_end_series(start_date, end_date) -%}
    select cast(last_day(cast(generated as date)) as date) as month_end_on
    from (
        select unnest(generate_series(
            cast(date_trunc('month', cast({{ start_date }} as date)) as timestamp),
            cast(date_trunc('month', cast({{ end_date }} as date)) as timestamp),
            interval 1 month
        )) as generated
    ) as months
{%- endmacro %}

{#- Whole days from start_date to end_date. -#}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'northstar')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

{% macro duckdb__days_between(start_date, end_date) -%}
    date_diff('day', cast({{ start_date }} as date), cast({{ end_date }} as date))
{%- endmacro %}

{#- A naive UTC timestamp as the firm's wall-clock time (naive), in var('firm_timezone'): the firm's
    timezone from settings (NORTHSTAR_TIMEZONE), passed by northstar.dbt.run_dbt. -#}
{% macro to_firm_time(expr) -%}
    {{ return(adapter.dispatch('to_firm_time', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__to_firm_time(expr) -%}
    from_utc_timestamp({{ expr }}, '{{ var("firm_timezone") }}')
{%- endmacro %}

{% macro duckdb__to_firm_time(expr) -%}
    timezone('{{ var("firm_timezone") }}', {{ expr }} at time zone 'UTC')
{%- endmacro %}

{#- Months since year 0 (year * 12 + month): consecutive months differ by 1, so window frames can
    count months with RANGE offsets (see int_household_cutoff_billing). -#}
{% macro month_number(expr) -%}
    (extract(year from {{ expr }}) * 12 + extract(month from {{ expr }}))
{%- endmacro %}

{#- Spark: the same, in Spark SQL (the session's timezone is UTC, see profiles.yml). -#}

{% macro spark__parse_date(expr) -%}
    coalesce(
        cast(cast({{ expr }} as string) as date),
        cast(try_to_timestamp(cast({{ expr }} as string), 'MM/dd/yyyy') as date),
        cast(try_to_timestamp(cast({{ expr }} as string), 'dd.MM.yyyy') as date)
    )
{%- endmacro %}

{% macro spark__month_end_series(start_date, end_date) -%}
    select last_day(generated) as month_end_on
    from (
        select explode(sequence(
            trunc(cast({{ start_date }} as date), 'MM'),
            trunc(cast({{ end_date }} as date), 'MM'),
            interval 1 month
        )) as generated
    ) as months
{%- endmacro %}

{% macro spark__days_between(start_date, end_date) -%}
    datediff(cast({{ end_date }} as date), cast({{ start_date }} as date))
{%- endmacro %}

{#- dbt's dateadd on Spark, in one function call. dbt-spark's own form repeats its argument nine
    times (null checks and the time of day computed apart), so a nested call grows ninefold per level:
    month_end(dateadd(...)) in int_household_cutoffs compiled to 245 KB of SQL, and that model and its
    two unit tests took three minutes of Spark's planning on the small world. timestampadd adds the
    same calendar units to the timestamp (the session is UTC), clamping to the month's end as
    add_months does; the result is a timestamp, as with dbt-spark's form. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, cast({{ interval }} as int), cast({{ from_date_or_timestamp }} as timestamp))
{%- endmacro %}
