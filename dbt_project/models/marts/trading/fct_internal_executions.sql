{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

with

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    {% if is_incremental() %}
        where {{ in_business_dates('business_date') }}
    {% endif %}
),

-- keys delivered more than once in the dates being built: one aggregate and a hash join, not a
-- window sorting every row
repeated_keys as (
    select
        trade_id as repeated_trade_id,
        true as is_repeated
    from internal_trades
    group by trade_id
    having count(*) > 1
),

final as (
    select
        internal_trades.trade_record_id,
        internal_trades.trade_id,
        internal_trades.order_id,
        internal_trades.business_date,
        internal_trades.trade_date,
        internal_trades.traded_at,
        internal_trades.settle_date,
        internal_trades.account_number,
        internal_trades.instrument_id,
        internal_trades.asset_class,
        internal_trades.side,
        internal_trades.quantity,
        internal_trades.price,
        internal_trades.currency,
        internal_trades.executing_broker,
        internal_trades.prime_broker,
        internal_trades.commission,
        internal_trades.fees,
        coalesce(repeated_keys.is_repeated, false) as is_duplicate,
        internal_trades.source_file,
        internal_trades.source_line,
        internal_trades.file_version,
        internal_trades.landed_at
    from internal_trades
    left join repeated_keys
        on internal_trades.trade_id is not distinct from repeated_keys.repeated_trade_id
)

select * from final
