{#- The current version of every Salesforce record: several extraction runs (a full one, then
    incremental ones) accumulate in the landing; the latest SystemModstamp wins, and a record whose
    latest version is a tombstone (deleted in the org) is dropped. -#}
{% macro salesforce_current_records(relation) -%}
    select *
    from (
        select
            landed.*,
            row_number() over (
                partition by landed.id
                order by landed.systemmodstamp desc, landed._extracted_at desc, landed._run_id desc
            ) as version_rank
        from {{ relation }} as landed
    ) as versions
    where
        version_rank = 1
        and not coalesce(_is_deleted, false)
        and not coalesce(isdeleted, false)
{%- endmacro %}

{#- The latest version of every logical broker file (a corrected redelivery replaces the earlier
    delivery of the same file), and one delivery per distinct content (a copy of a file delivered
    under another name is ignored). `where` restricts the landed rows first (e.g. an incremental
    run's business dates); every version and copy of a file sits in its business date's partition. -#}
{% macro broker_current_rows(relation, where=none) -%}
    select *
    from (
        select
            landed.*,
            dense_rank() over (
                partition by landed._source_file
                order by landed._file_version desc, landed._landed_at desc
            ) as file_version_rank,
            dense_rank() over (
                partition by landed._file_sha256
                order by landed._source_file
            ) as copy_rank,
            row_number() over (
                partition by landed._source_file, landed._file_version, landed._source_line
                order by landed._landed_at desc, landed._run_id desc
            ) as relanded_rank
        from {{ relation }} as landed
        {% if where is not none -%}
            where {{ where }}
        {%- endif %}
    ) as versions
    where file_version_rank = 1 and copy_rank = 1 and relanded_rank = 1
{%- endmacro %}
