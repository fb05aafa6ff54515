-- The internal book per order: allocations summed, volume-weighted average price. Repeated
-- trade_ids are counted once here and reported as `duplicate` breaks separately.
with

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    where {{ near_business_dates('business_date') }}
),

repeated_trade_ids as (
    select * from {{ ref('int_repeated_deliveries_identified') }}
    where source_table = 'internal_trades'
),

allocations as (
    {{ first_deliveries('internal_trades', 'repeated_trade_ids', ['trade_id'], 'trade_record_id') }}
),

aggregated as (
    select
        order_id,
        min(business_date) as business_date,
        min(trade_date) as trade_date,
        min(executing_broker) as executing_broker,
        min(prime_broker) as prime_broker,
        min(instrument_id) as instrument_id,
        min(asset_class) as asset_class,
        min(side) as side,
        min(currency) as currency,
        min(settle_date) as settle_date,
        {{ exact_sum('quantity') }} as quantity,
        {{ exact_sum('quantity * price') }} / nullif({{ exact_sum('quantity') }}, 0) as average_price,
        {{ exact_sum('commission') }} as commission,
        count(*) as allocation_count
    from allocations
    group by order_id
),

final as (
    select * from aggregated
)

select * from final
