{#- The only two ways PII leaves staging. The salt is the installation's secret (NORTHSTAR_PII_SALT,
    from var/pii-salt, made by `python -m northstar setup`), so the hashes cannot be reversed by
    hashing a dictionary of names; there is no default on purpose: a build without the secret fails
    rather than hash with a public string. The same value always hashes to the same key, so hashed
    columns can still be joined and counted. -#}

{% macro hash_pii(expr) -%}
    case
        when {{ expr }} is null then null
        else {{ sha256_hex(dbt.concat(["'" ~ env_var('NORTHSTAR_PII_SALT') ~ "|'", "lower(trim(cast(" ~ expr ~ " as " ~ dbt.type_string() ~ ")))"])) }}
    end
{%- endmacro %}

{#- j***@example.com: the first character of the local part and the domain survive. -#}
{% macro mask_email(expr) -%}
    case
        when {{ expr }} is null then null
        when {{ expr }} not like '%@%' then '***'
        else {{ dbt.concat(["left(" ~ expr ~ ", 1)", "'***@'", dbt.split_part(expr, "'@'", 2)]) }}
    end
{%- endmacro %}

{#- An age band instead of a birth date: the date itself never leaves staging. -#}
{% macro age_band(birth_on, as_of_on) -%}
    case
        when {{ birth_on }} is null then 'unknown'
        when {{ days_between(birth_on, as_of_on) }} < 40 * 365.25 then 'under_40'
        when {{ days_between(birth_on, as_of_on) }} < 55 * 365.25 then '40_54'
        when {{ days_between(birth_on, as_of_on) }} < 65 * 365.25 then '55_64'
        when {{ days_between(birth_on, as_of_on) }} < 75 * 365.25 then '65_74'
        else '75_plus'
    end
{%- endmacro %}

{#- A tax id as a salted hash of its digits and letters only, so 912-34-5678 and 912345678 are one key
    (identity resolution's deterministic rule compares these hashes). -#}
{% macro hash_tax_id(expr) -%}
    {{ hash_pii("nullif(" ~ alnum_only("cast(" ~ expr ~ " as " ~ dbt.type_string() ~ ")") ~ ", '')") }}
{%- endmacro %}

{% macro alnum_only(expr) -%}
    {{ return(adapter.dispatch('alnum_only', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__alnum_only(expr) -%}
    regexp_replace({{ expr }}, '[^0-9A-Za-z]', '')
{%- endmacro %}

{% macro duckdb__alnum_only(expr) -%}
    regexp_replace({{ expr }}, '[^0-9A-Za-z]', '', 'g')
{%- endmacro %}
