{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('break_key', partition='business_date')
    )
}}

-- The break register. A break's key is a hash of its business date, reason code and natural
-- keys, so finding the same break on a later run updates the same row (last_seen_at) and keeps
-- first_seen_at; a break of a re-matched date that is no longer found is cleared.
with

identified as (
    select * from {{ ref('int_trade_breaks_identified') }}
    where {{ in_business_dates('business_date') }}
),

-- the latest business date any source has delivered: the "today" breaks are aged against
recon_calendar as (
    select max(business_date) as as_of_date
    from (
        select business_date from {{ ref('stg_broker__internal_trades') }}
        union all
        select business_date from {{ ref('stg_broker__fix_executions') }}
        union all
        select business_date from {{ ref('stg_broker__pb_confirms') }}
    ) as delivered
),

{% if is_incremental() %}
    previous as (
        select * from {{ this }}
        where {{ in_business_dates('business_date') }}
    ),
{% endif %}

still_open as (
    select
        identified.*,
        'open' as status,
        {% if is_incremental() %}
            coalesce(previous.first_seen_at, {{ recon_observed_at() }}) as first_seen_at,
        {% else %}
            {{ recon_observed_at() }} as first_seen_at,
        {% endif %}
        {{ recon_observed_at() }} as last_seen_at,
        cast(null as timestamp) as cleared_at
    from identified
    {% if is_incremental() %}
        left join previous
            on identified.break_key = previous.break_key
    {% endif %}
),

{% if is_incremental() %}
    cleared as (
        select
            previous.break_key,
            previous.business_date,
            previous.break_type,
            previous.break_level,
            previous.order_id,
            previous.trade_id,
            previous.broker,
            previous.asset_class,
            previous.instrument_id,
            previous.account_number,
            previous.internal_value,
            previous.broker_value,
            previous.difference,
            'cleared' as status,
            previous.first_seen_at,
            previous.last_seen_at,
            coalesce(previous.cleared_at, {{ recon_observed_at() }}) as cleared_at
        from previous
        where not exists (
                select 1 from identified
                where identified.break_key = previous.break_key
            )
    ),
{% endif %}

{% if is_incremental() %}
    -- open breaks of the dates this run does not re-match are not found again, but they are a
    -- business day older once a new date is delivered: re-emitted (otherwise unchanged) when the
    -- age moves, so the age on every open break, and the summary's age buckets, stay current
    aged_elsewhere as (
        select
            earlier.break_key,
            earlier.business_date,
            earlier.break_type,
            earlier.break_level,
            earlier.order_id,
            earlier.trade_id,
            earlier.broker,
            earlier.asset_class,
            earlier.instrument_id,
            earlier.account_number,
            earlier.internal_value,
            earlier.broker_value,
            earlier.difference,
            earlier.status,
            earlier.first_seen_at,
            earlier.last_seen_at,
            earlier.cleared_at
        from {{ this }} as earlier
        cross join recon_calendar
        where
            not ({{ in_business_dates('earlier.business_date') }})
            and earlier.status = 'open'
            and earlier.age_business_days
            != {{ business_days_between('earlier.business_date', 'recon_calendar.as_of_date') }}
    ),

    -- the other rows of those dates (cleared breaks), unchanged with the age they had: a run replaces
    -- whole business dates on Spark (insert_overwrite by partition), so a date it re-ages is written
    -- whole; on DuckDB (delete+insert by break_key) they replace themselves with the same values
    carried_with_aged as (
        select
            earlier.break_key,
            earlier.business_date,
            earlier.break_type,
            earlier.break_level,
            earlier.order_id,
            earlier.trade_id,
            earlier.broker,
            earlier.asset_class,
            earlier.instrument_id,
            earlier.account_number,
            earlier.internal_value,
            earlier.broker_value,
            earlier.difference,
            earlier.status,
            earlier.first_seen_at,
            earlier.last_seen_at,
            earlier.cleared_at,
            earlier.age_business_days as kept_age_business_days
        from {{ this }} as earlier
        where
            earlier.status != 'open'
            and earlier.business_date in (select aged_elsewhere.business_date from aged_elsewhere)
    ),
{% endif %}

register as (
    select
        still_open.*,
        cast(null as integer) as kept_age_business_days
    from still_open
    {% if is_incremental() %}
        union all
        select
            cleared.*,
            cast(null as integer) as kept_age_business_days
        from cleared
        union all
        select
            aged_elsewhere.*,
            cast(null as integer) as kept_age_business_days
        from aged_elsewhere
        union all
        select * from carried_with_aged
    {% endif %}
),

-- one row: the correlation prefix's one owner (the ServiceNow push and read-back read the same seed)
incident_rules as (
    select correlation_prefix from {{ ref('incident_rules') }}
),

final as (
    select
        register.break_key,
        register.business_date,
        register.break_type,
        register.break_level,
        register.order_id,
        register.trade_id,
        register.broker,
        register.asset_class,
        register.instrument_id,
        register.account_number,
        register.internal_value,
        register.broker_value,
        register.difference,
        register.status,
        register.first_seen_at,
        register.last_seen_at,
        register.cleared_at,
        coalesce(
            register.kept_age_business_days,
            cast(
                {{ business_days_between('register.business_date', 'recon_calendar.as_of_date') }}
                as integer
            )
        ) as age_business_days,
        {{ dbt.concat(['incident_rules.correlation_prefix', 'register.break_key']) }} as incident_correlation_id
    from register
    cross join recon_calendar
    cross join incident_rules
)

select * from final
