{#- SHA-256 as lowercase hex. -#}
{% macro sha256_hex(expr) -%}
    {{ return(adapter.dispatch('sha256_hex', 'northstar')(expr)) }}
{%- endmacro %}

{% macro default__sha256_hex(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}

{% macro duckdb__sha256_hex(expr) -%}
    sha256({{ expr }})
{%- endmacro %}

{#- A stable bucket number in [0, buckets) for a key: for splitting one large aggregation into
    `buckets` smaller ones over disjoint key ranges (see fct_household_features), so each one's hash
    table fits in memory instead of spilling. -#}
{% macro hash_bucket(expr, buckets) -%}
    {{ return(adapter.dispatch('hash_bucket', 'northstar')(expr, buckets)) }}
{%- endmacro %}

{% macro default__hash_bucket(expr, buckets) -%}
    mod(abs(hash({{ expr }})), {{ buckets }})
{%- endmacro %}

{% macro duckdb__hash_bucket(expr, buckets) -%}
    (hash({{ expr }}) % {{ buckets }})
{%- endmacro %}

{#- `caller(bucket_filter)`'s aggregation once per hash bucket, the results unioned: the same rows
    as one aggregation, each in a hash table an eighth the size (var feature_aggregation_buckets).
    `bucket_filter` keeps both join sides to the bucket: `keys` are the join key on each side. -#}
{% macro union_over_buckets(keys) -%}
    {%- set buckets = var('feature_aggregation_buckets', 8) | int -%}
    {%- for bucket in range(buckets) %}
        {%- set filters = [] -%}
        {%- for key in keys -%}
            {%- do filters.append(hash_bucket(key, buckets) ~ ' = ' ~ bucket) -%}
        {%- endfor %}
        {{ caller(filters | join('\n            and ')) }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- Spark's hash() is a signed 32-bit int: pmod keeps the bucket in [0, buckets). -#}
{% macro spark__hash_bucket(expr, buckets) -%}
    pmod(hash({{ expr }}), {{ buckets }})
{%- endmacro %}
