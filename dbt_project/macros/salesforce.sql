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
    delivery of the same file). One definition, shared with ingest (ingest/manifest.py logical_file):
    a logical file is its path relative to the drop folder (`_source_file`) and its current version is
    the highest `_file_version` ingest gave it, so a redelivery of earlier content (A, B, A) is current.
    One delivery per distinct content (a copy of a file delivered
    under another name is ignored); a file version landed twice (a rerun after a crash) counts once,
    the latest landing winning. `where` restricts the landed rows first (e.g. an incremental run's
    business dates); every version and copy of a file sits in its business date's partition.

    The lineage columns are constant per landed file, so the choice is made on the few distinct
    (file, version, content, run) rows and the data rows are kept by one hash join on the winners:
    no sort of the tens of millions of data rows, which is what ranking them row by row would cost. -#}
{% macro broker_current_rows(relation, where=none) -%}
    select landed.*
    from {{ relation }} as landed
    inner join (
        select
            ranked._source_file,
            ranked._file_version,
            ranked._run_id
        from (
            select
                deliveries.*,
                dense_rank() over (
                    partition by deliveries._source_file
                    order by deliveries._file_version desc, deliveries._landed_at desc
                ) as file_version_rank,
                dense_rank() over (
                    partition by deliveries._file_sha256
                    order by deliveries._source_file
                ) as copy_rank,
                row_number() over (
                    partition by deliveries._source_file, deliveries._file_version
                    order by deliveries._landed_at desc, deliveries._run_id desc
                ) as relanded_rank
            from (
                select distinct
                    landed._source_file,
                    landed._file_version,
                    landed._file_sha256,
                    landed._run_id,
                    landed._landed_at
                from {{ relation }} as landed
                {% if where is not none -%}
                    where {{ where }}
                {%- endif %}
            ) as deliveries
        ) as ranked
        where ranked.file_version_rank = 1 and ranked.copy_rank = 1 and ranked.relanded_rank = 1
    ) as current_deliveries
        on
            landed._source_file = current_deliveries._source_file
            and landed._file_version = current_deliveries._file_version
            and landed._run_id = current_deliveries._run_id
    {% if where is not none -%}
        where {{ where }}
    {%- endif %}
{%- endmacro %}
