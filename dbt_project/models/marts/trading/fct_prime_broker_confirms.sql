{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

with

confirms as (
    select * from {{ ref('stg_broker__pb_confirms') }}
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
    from confirms
    group by trade_id
    having count(*) > 1
),

final as (
    select
        confirms.confirm_id,
        confirms.trade_id,
        confirms.prime_broker,
        confirms.business_date,
        confirms.trade_date,
        confirms.settle_date,
        confirms.account_number,
        confirms.instrument_id,
        confirms.asset_class,
        confirms.side,
        confirms.quantity,
        confirms.price,
        confirms.price_as_delivered,
        confirms.price_convention,
        confirms.contract_multiplier,
        confirms.currency,
        confirms.gross_amount,
        confirms.commission,
        confirms.fees,
        confirms.executing_broker,
        coalesce(repeated_keys.is_repeated, false) as is_duplicate,
        confirms.source_file,
        confirms.source_line,
        confirms.file_version,
        confirms.landed_at
    from confirms
    left join repeated_keys
        on confirms.trade_id is not distinct from repeated_keys.repeated_trade_id
)

select * from final
