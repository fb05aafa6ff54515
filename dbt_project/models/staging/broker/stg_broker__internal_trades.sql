{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

with

source as (
    {% if is_incremental() %}
        {{ broker_current_rows(source('broker', 'internal_trades'), in_business_dates('landed.business_date')) }}
    {% else %}
        {{ broker_current_rows(source('broker', 'internal_trades')) }}
    {% endif %}
),

renamed as (
    select
        {{ surrogate_key(['source._source_file', 'source._source_line']) }}
            as trade_record_id,
        cast(source.trade_id as string) as trade_id,
        cast(source.order_id as string) as order_id,
        cast(source.business_date as date) as business_date,
        {{ parse_date('source.trade_date') }} as trade_date,
        {{ to_utc_timestamp('source.trade_time') }} as traded_at,
        {{ parse_date('source.settle_date') }} as settle_date,
        cast(source.account_number as string) as account_number,
        cast(source.instrument_id as string) as instrument_id,
        upper(cast(source.asset_class as string)) as asset_class,
        upper(cast(source.side as string)) as side,
        cast(source.quantity as double) as quantity,
        cast(source.price as double) as price,
        upper(cast(source.currency as string)) as currency,
        upper(cast(source.executing_broker as string)) as executing_broker,
        lower(cast(source.prime_broker as string)) as prime_broker,
        cast(source.commission as double) as commission,
        cast(source.fees as double) as fees,
        cast(source._source_file as string) as source_file,
        cast(source._source_line as integer) as source_line,
        cast(source._file_sha256 as string) as file_sha256,
        cast(source._file_version as integer) as file_version,
        cast(source._run_id as string) as run_id,
        {{ to_utc_timestamp('source._landed_at') }} as landed_at
    from source
),

final as (
    select * from renamed
)

select * from final
