-- Internal book vs FIX drop copy, many-to-one: allocations summed per order against fills summed
-- per order, compared within the asset class's tolerances (seed recon_tolerances). Matching is by
-- order id (ClOrdID) alone, never by date, so a fill reported on the next UTC day still matches.
with

internal_orders as (
    select * from {{ ref('int_internal_orders_aggregated') }}
),

broker_orders as (
    select * from {{ ref('int_broker_orders_aggregated') }}
),

tolerances as (
    select * from {{ ref('recon_tolerances') }}
),

joined as (
    select
        coalesce(internal_orders.order_id, broker_orders.order_id) as order_id,
        coalesce(internal_orders.business_date, broker_orders.trade_date, broker_orders.business_date)
            as business_date,
        coalesce(broker_orders.executing_broker, internal_orders.executing_broker) as executing_broker,
        internal_orders.prime_broker,
        coalesce(internal_orders.asset_class, broker_orders.asset_class) as asset_class,
        coalesce(internal_orders.instrument_id, broker_orders.instrument_id) as instrument_id,
        internal_orders.order_id is not null as has_internal,
        broker_orders.order_id is not null as has_broker,
        internal_orders.side as internal_side,
        broker_orders.side as broker_side,
        internal_orders.currency as internal_currency,
        broker_orders.currency as broker_currency,
        internal_orders.quantity as internal_quantity,
        broker_orders.quantity as broker_quantity,
        internal_orders.average_price as internal_average_price,
        broker_orders.average_price as broker_average_price,
        coalesce(internal_orders.allocation_count, 0) as allocation_count,
        coalesce(broker_orders.fill_count, 0) as fill_count,
        coalesce(internal_orders.trade_date, broker_orders.trade_date) as trade_date,
        coalesce(internal_orders.side, broker_orders.side) as side,
        coalesce(broker_orders.quantity, 0) - coalesce(internal_orders.quantity, 0) as fix_surplus_quantity
    from internal_orders
    full outer join broker_orders
        on internal_orders.order_id = broker_orders.order_id
),

-- A FIX surplus (more filled than booked) is explained by confirms whose allocation is missing
-- from the internal book: their quantity was executed. Candidates are the confirms of the same
-- broker, instrument, side and trade date as an order with a surplus (few orders have one);
-- the booked ones among them are dropped. The surplus is explained when the unbooked candidates
-- add up to it, or one of them equals it (two orders sharing the pool), and is then reported once,
-- as those allocations' `missing_internal`, not again as `quantity`.
surplus_orders as (
    select
        order_id,
        executing_broker,
        trade_date,
        instrument_id,
        side,
        fix_surplus_quantity
    from joined
    where fix_surplus_quantity > 0
),

candidate_confirms as (
    select
        surplus_orders.order_id,
        surplus_orders.executing_broker,
        surplus_orders.fix_surplus_quantity,
        confirms.trade_id,
        confirms.quantity
    from {{ ref('stg_broker__pb_confirms') }} as confirms
    inner join surplus_orders
        on
            confirms.trade_date = surplus_orders.trade_date
            and confirms.executing_broker = surplus_orders.executing_broker
            and confirms.instrument_id = surplus_orders.instrument_id
            and confirms.side = surplus_orders.side
    where {{ near_business_dates('confirms.business_date') }}
),

booked_candidates as (
    select distinct internal_trades.trade_id
    from {{ ref('stg_broker__internal_trades') }} as internal_trades
    inner join candidate_confirms
        on internal_trades.trade_id = candidate_confirms.trade_id
),

explanations as (
    select
        candidate_confirms.order_id,
        candidate_confirms.executing_broker,
        sum(candidate_confirms.quantity) as unbooked_confirm_quantity,
        max(
            case
                when round(candidate_confirms.quantity - candidate_confirms.fix_surplus_quantity, 6) = 0 then 1
                else 0
            end
        ) as has_exact_unbooked_confirm
    from candidate_confirms
    left join booked_candidates
        on candidate_confirms.trade_id = booked_candidates.trade_id
    where booked_candidates.trade_id is null
    group by candidate_confirms.order_id, candidate_confirms.executing_broker
),

compared as (
    select
        joined.*,
        joined.broker_quantity - joined.internal_quantity as quantity_difference,
        coalesce(explanations.unbooked_confirm_quantity, 0) as unbooked_confirm_quantity,
        coalesce(
            explanations.has_exact_unbooked_confirm = 1
            or round(joined.fix_surplus_quantity - explanations.unbooked_confirm_quantity, 6) = 0,
            false
        ) as is_surplus_explained,
        joined.broker_average_price - joined.internal_average_price as price_difference,
        abs(joined.broker_average_price - joined.internal_average_price)
        / nullif(abs(joined.internal_average_price), 0) * 10000 as price_difference_bps,
        coalesce(tolerances.price_abs_tolerance, 0) as price_abs_tolerance,
        coalesce(tolerances.price_bps_tolerance, 0) as price_bps_tolerance,
        coalesce(tolerances.quantity_tolerance, 0) as quantity_tolerance
    from joined
    left join explanations
        on
            joined.order_id = explanations.order_id
            and joined.executing_broker = explanations.executing_broker
    left join tolerances
        on joined.asset_class = tolerances.asset_class
),

flagged as (
    select
        *,
        has_broker and not has_internal and not is_surplus_explained as is_missing_internal,
        has_internal and not has_broker as is_missing_broker,
        has_internal and has_broker and internal_side != broker_side as has_side_break,
        has_internal and has_broker and internal_currency != broker_currency as has_currency_break,
        has_internal and has_broker and abs(round(quantity_difference, 6)) > quantity_tolerance
        and not is_surplus_explained as has_quantity_break,
        has_internal and has_broker
        and abs(round(price_difference, 9)) > price_abs_tolerance
        and round(coalesce(price_difference_bps, 0), 6) > price_bps_tolerance as has_price_break
    from compared
),

final as (
    select
        *,
        case
            when is_missing_internal or is_missing_broker or has_side_break or has_currency_break
                or has_quantity_break or has_price_break then 'break'
            else 'matched'
        end as match_status
    from flagged
)

select * from final
