{#- Custom schemas are used as-is (staging, intermediate, reference, snapshots); marts stay in the
    target schema, which is what the ML and activation stages read. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
