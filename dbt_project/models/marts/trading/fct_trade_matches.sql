{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

-- One row per reconciled item: each order (internal book vs FIX drop copy) and each allocation
-- (internal book vs prime-broker confirm), with its match status and the reason codes it broke on.
with

orders as (
    select * from {{ ref('int_orders_matched') }}
    where {{ in_business_dates('business_date') }}
),

allocations as (
    select * from {{ ref('int_allocations_matched') }}
    where {{ in_business_dates('business_date') }}
),

breaks as (
    select * from {{ ref('int_trade_breaks_identified') }}
    where {{ in_business_dates('business_date') }}
),

break_reasons as (
    select
        break_level,
        coalesce(trade_id, order_id) as item_id,
        broker,
        {{ sorted_string_agg('break_type', "', '") }} as break_types
    from breaks
    group by break_level, coalesce(trade_id, order_id), broker
),

items as (
    select
        business_date,
        'order' as match_level,
        order_id,
        cast(null as string) as trade_id,
        executing_broker as broker,
        asset_class,
        instrument_id,
        has_internal,
        has_broker as has_counterparty,
        internal_quantity,
        broker_quantity as counterparty_quantity,
        internal_average_price as internal_price,
        broker_average_price as counterparty_price,
        quantity_difference,
        price_difference,
        price_difference_bps,
        cast(fill_count as integer) as fill_count,
        cast(allocation_count as integer) as allocation_count,
        match_status
    from orders
    union all
    select
        business_date,
        'allocation' as match_level,
        order_id,
        trade_id,
        prime_broker as broker,
        asset_class,
        instrument_id,
        has_internal,
        has_confirm as has_counterparty,
        internal_quantity,
        confirm_quantity as counterparty_quantity,
        internal_price,
        confirm_price as counterparty_price,
        quantity_difference,
        price_difference,
        price_difference_bps,
        cast(null as integer) as fill_count,
        cast(1 as integer) as allocation_count,
        match_status
    from allocations
),

final as (
    select
        {{ surrogate_key(['items.match_level', 'coalesce(items.trade_id, items.order_id)', 'items.broker']) }}
            as match_key,
        items.business_date,
        items.match_level,
        items.order_id,
        items.trade_id,
        items.broker,
        items.asset_class,
        items.instrument_id,
        items.has_internal,
        items.has_counterparty,
        items.internal_quantity,
        items.counterparty_quantity,
        items.internal_price,
        items.counterparty_price,
        items.quantity_difference,
        items.price_difference,
        items.price_difference_bps,
        items.fill_count,
        items.allocation_count,
        case when break_reasons.break_types is not null then 'break' else items.match_status end as match_status,
        break_reasons.break_types
    from items
    left join break_reasons
        on
            items.match_level = break_reasons.break_level
            and coalesce(items.trade_id, items.order_id) = break_reasons.item_id
            and coalesce(items.broker, '') = coalesce(break_reasons.broker, '')
)

select * from final
