{#- The landing Parquet as sources, read by path on every engine. Each landing source names its files
    once, in meta.external_location (dbt-duckdb's read_parquet over the hive partitions, which DuckDB's
    source() renders as-is). Spark has no such source rendering: before a run (on-run-start) every
    such source becomes a view `<source>.<table>` over the folder, which Spark lists again on every
    query, discovering the hive partitions (extracted_date=, business_date=) as typed columns and
    merging the files' schemas (spark.sql.parquet.mergeSchema, like union_by_name). -#}

{% macro register_landing_sources() -%}
    {{ return(adapter.dispatch('register_landing_sources', 'northstar')()) }}
{%- endmacro %}

{% macro default__register_landing_sources() -%}
    {#- DuckDB reads meta.external_location through source() itself -#}
    select 1
{%- endmacro %}

{#- The folder of a read_parquet('<folder>/*/*.parquet', ...) location. -#}
{% macro landing_folder(external_location) -%}
    {%- set path = external_location.split("'")[1] -%}
    {%- if path.endswith('/*/*.parquet') -%}
        {{ return(path[:-12]) }}
    {%- elif path.endswith('/*.parquet') -%}
        {{ return(path[:-10]) }}
    {%- endif -%}
    {{ return(path) }}
{%- endmacro %}

{#- Only the sources the selected nodes read: an intraday run on a fresh installation has no Salesforce
    landing yet, and Spark refuses a view over a folder that does not exist. -#}
{% macro spark__register_landing_sources() -%}
    {%- if execute -%}
        {%- set statements = [] -%}
        {%- set schemas = [] -%}
        {%- set needed = [] -%}
        {%- for unique_id in selected_resources -%}
            {%- set selected = graph.nodes.get(unique_id) -%}
            {%- if selected is not none -%}
                {%- do needed.extend(selected.depends_on.nodes | select('in', graph.sources.keys() | list) | list) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for node in graph.sources.values() if node.unique_id in needed -%}
            {%- set location = node.meta.get('external_location') or node.config.meta.get('external_location') -%}
            {%- if location -%}
                {%- set folder = landing_folder(location) -%}
                {%- if node.schema not in schemas -%}
                    {%- do schemas.append(node.schema) -%}
                    {%- do statements.append('create schema if not exists ' ~ node.schema) -%}
                {%- endif -%}
                {%- do statements.append(
                    'create or replace view ' ~ node.schema ~ '.' ~ node.identifier
                    ~ ' as select * from parquet.`' ~ folder ~ '`') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
