{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        on_schema_change='append_new_columns',
    )
}}

with

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    {% if is_incremental() %}
        where {{ in_business_dates('business_date') }}
    {% endif %}
),

final as (
    select
        trade_record_id,
        trade_id,
        order_id,
        business_date,
        trade_date,
        traded_at,
        settle_date,
        account_number,
        instrument_id,
        asset_class,
        side,
        quantity,
        price,
        currency,
        executing_broker,
        prime_broker,
        commission,
        fees,
        count(*) over (partition by trade_id) > 1 as is_duplicate,
        source_file,
        source_line,
        file_version,
        landed_at
    from internal_trades
)

select * from final
