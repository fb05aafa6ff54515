{#- How an incremental model replaces the business dates (or keys) a run rebuilds. DuckDB deletes the
    rows of the keys in the new batch and inserts the batch (delete+insert, its fastest). Spark without
    Delta or Iceberg has no delete: the table is partitioned by the key and the batch overwrites the
    partitions it holds (insert_overwrite with dynamic partition overwrite), which replaces the same
    rows as long as every batch carries every row of each key it touches; the models make sure of that
    (fct_trade_breaks carries the untouched rows of a date it re-ages). Used as
    config(materialized='incremental', **replace_by_key('business_date')); a model keyed finer than
    its partition (fct_trade_breaks: break_key within business_date) names both. -#}
{% macro replace_by_key(key, partition=none) -%}
    {{ return(adapter.dispatch('replace_by_key', 'northstar')(key, partition or key)) }}
{%- endmacro %}

{% macro default__replace_by_key(key, partition) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': key}) }}
{%- endmacro %}

{% macro spark__replace_by_key(key, partition) -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': [partition], 'file_format': 'parquet'}) }}
{%- endmacro %}

{#- How fct_household_features is kept: DuckDB deletes the stale rows (its pre-hook,
    macros/household_features.sql) and appends the missing grid rows. Spark's Parquet tables have no
    row delete, and the stale rows of a night span every cutoff (a household whose CRM state moved),
    so a partition overwrite by cutoff would rewrite nearly the whole table anyway: Spark rebuilds it
    whole every night (a table), with the same rows. -#}
{% macro household_features_materialization() -%}
    {{ return(adapter.dispatch('household_features_materialization', 'northstar')()) }}
{%- endmacro %}

{% macro default__household_features_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__household_features_materialization() -%}
    {{ return('table') }}
{%- endmacro %}
