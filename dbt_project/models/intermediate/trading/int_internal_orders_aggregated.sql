-- The internal book per order: allocations summed, volume-weighted average price. Repeated
-- trade_ids are counted once here and reported as `duplicate` breaks separately.
with

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    where {{ near_business_dates('business_date') }}
),

first_delivery as (
    select
        *,
        row_number() over (partition by trade_id order by business_date, source_file, source_line) as delivery_rank
    from internal_trades
),

allocations as (
    select * from first_delivery
    where delivery_rank = 1
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
        sum(quantity) as quantity,
        sum(quantity * price) / nullif(sum(quantity), 0) as average_price,
        sum(commission) as commission,
        count(*) as allocation_count
    from allocations
    group by order_id
),

final as (
    select * from aggregated
)

select * from final
