{{ config(severity='error', tags=['governance']) }}
{#-
    Fails the build if PII reaches a public model unmasked. A column is PII when its staging
    definition carries meta {pii: true}; a public model may carry a column of that name, or any
    column tagged pii: true, only if it is not there at all: masked columns are renamed
    (*_hash, *_masked, age bands) and tagged pii: masked. Contracts make every public column
    declared, so the declared columns are the real ones.
-#}
{%- set findings = [] -%}
{%- if execute -%}
    {%- set pii_names = [] -%}
    {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | list -%}
    {%- for node in models -%}
        {%- for column in node.columns.values() -%}
            {%- set meta = column.get('meta', {}) or {} -%}
            {%- set config_meta = (column.get('config', {}) or {}).get('meta', {}) or {} -%}
            {%- if meta.get('pii') is sameas true or config_meta.get('pii') is sameas true -%}
                {%- do pii_names.append(column.name | lower) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set public_models = [] -%}
    {%- for node in models -%}
        {%- if node.config.get('access', node.get('access')) == 'public' or node.get('access') == 'public' -%}
            {%- do public_models.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in public_models -%}
        {%- for column in node.columns.values() -%}
            {%- set meta = column.get('meta', {}) or {} -%}
            {%- set config_meta = (column.get('config', {}) or {}).get('meta', {}) or {} -%}
            {%- set tagged = meta.get('pii') is sameas true or config_meta.get('pii') is sameas true -%}
            {%- if column.name | lower in pii_names or tagged -%}
                {%- do findings.append((node.name, column.name)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif %}

-- {{ findings | length }} finding(s) over {{ (pii_names | default([])) | length }} PII column name(s)
with

findings as (
    {% for model_name, column_name in findings %}
        select
            '{{ model_name }}' as model_name,
            '{{ column_name }}' as column_name
        union all
    {% endfor %}
    select
        cast(null as string) as model_name,
        cast(null as string) as column_name
    where 1 = 0
),

final as (
    select * from findings
)

select * from final
