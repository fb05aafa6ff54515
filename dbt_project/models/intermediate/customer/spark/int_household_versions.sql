-- Spark's form of the households snapshot (snapshots/households_snapshot.yml), which needs MERGE and so
-- Delta or Iceberg there: an append-only log of the tracked attributes. Each run appends a `version`
-- row for every household whose tracked columns differ from its latest logged event (or that has
-- none, or whose latest event is a deletion), and a `deleted` row for every household whose latest
-- event is a version but that is gone from the CRM. households_snapshot turns the log into dbt's
-- SCD2 columns. Appending is all Spark does without extra jars, and a log is never rewritten, so a
-- failed run leaves at most a run's events to append again.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        schema='snapshots',
        enabled=(target.type == 'spark'),
    )
}}

with

tracked as (
    select * from {{ ref('int_households_tracked') }}
),

{% if is_incremental() %}
    latest_events as (
        select *
        from (
            select
                logged.*,
                row_number() over (
                    partition by logged.household_id
                    order by logged.event_at desc, logged.event_kind desc
                ) as event_rank
            from {{ this }} as logged
        ) as ranked
        where ranked.event_rank = 1
    ),
{% endif %}

new_versions as (
    select
        tracked.household_id,
        tracked.account_id,
        tracked.owner_user_id,
        tracked.aum_band,
        tracked.fee_schedule_bps,
        tracked.risk_profile,
        tracked.has_marketing_consent,
        tracked.has_analytics_consent,
        tracked.billing_state,
        tracked.system_modstamp_at,
        'version' as event_kind,
        tracked.system_modstamp_at as event_at
    from tracked
    {% if is_incremental() %}
        left join latest_events
            on tracked.household_id = latest_events.household_id
        where
            latest_events.household_id is null
            or latest_events.event_kind = 'deleted'
            or not (
                {%- for column in ['account_id', 'owner_user_id', 'aum_band', 'fee_schedule_bps', 'risk_profile',
                                   'has_marketing_consent', 'has_analytics_consent', 'billing_state'] %}
                    tracked.{{ column }} <=> latest_events.{{ column }}{% if not loop.last %} and{% endif %}
                {%- endfor %}
            )
    {% endif %}
)

{% if is_incremental() %}
    ,

    deletions as (
        select
            latest_events.household_id,
            latest_events.account_id,
            latest_events.owner_user_id,
            latest_events.aum_band,
            latest_events.fee_schedule_bps,
            latest_events.risk_profile,
            latest_events.has_marketing_consent,
            latest_events.has_analytics_consent,
            latest_events.billing_state,
            latest_events.system_modstamp_at,
            'deleted' as event_kind,
            cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as event_at
        from latest_events
        where
            latest_events.event_kind = 'version'
            and not exists (
                select 1 from tracked
                where tracked.household_id = latest_events.household_id
            )
    )

    select * from new_versions
    union all
    select * from deletions
{% else %}
    select * from new_versions
{% endif %}
