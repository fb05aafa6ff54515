{#- The rows dbt reads from a landing source are exactly the rows the ingest manifest says were
    landed: per delivered file (broker files, by content hash) or per extraction run (Salesforce,
    by run id). Returns one row per file or run that disagrees; a landed broker file missing from
    the manifest is one. A Salesforce run with no manifest
    row at all crashed before writing it; its records are extracted again by the next run
    (ingest/salesforce/README.md), so its rows are not a failure. -#}
{% test row_counts_match_landing_manifest(model, landing_table, kind='broker') %}

with

{% if kind == 'broker' %}
    landed as (
        select
            _file_sha256 as landed_unit,
            count(*) as landed_rows
        from {{ model }}
        group by _file_sha256
    ),

    manifest as (
        select
            sha256 as landed_unit,
            max(rows_landed) as manifest_rows
        from {{ source('landing_manifest', 'broker_files') }}
        where table_name = '{{ landing_table }}' and status = 'landed'
        group by sha256
    ),
{% else %}
    landed as (
        select
            _run_id as landed_unit,
            count(*) as landed_rows
        from {{ model }}
        group by _run_id
    ),

    manifest as (
        select
            run_id as landed_unit,
            sum(rows) as manifest_rows
        from {{ source('landing_manifest', 'salesforce_runs') }}
        where object = '{{ landing_table }}' and status = 'ok'
        group by run_id
    ),

    runs_with_a_manifest as (
        select distinct run_id as landed_unit
        from {{ source('landing_manifest', 'salesforce_runs') }}
    ),
{% endif %}

compared as (
    select
        coalesce(landed.landed_unit, manifest.landed_unit) as landed_unit,
        coalesce(landed.landed_rows, 0) as landed_rows,
        coalesce(manifest.manifest_rows, 0) as manifest_rows
    from landed
    full outer join manifest
        on landed.landed_unit = manifest.landed_unit
),

final as (
    select compared.*
    from compared
    where
        compared.landed_rows != compared.manifest_rows
        {% if kind != 'broker' -%}
            and compared.landed_unit in (select runs_with_a_manifest.landed_unit from runs_with_a_manifest)
        {%- endif %}
)

select * from final

{% endtest %}
