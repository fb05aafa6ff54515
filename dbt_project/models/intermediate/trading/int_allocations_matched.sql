-- Internal allocation vs prime-broker confirm, one-to-one by client reference (= trade_id),
-- compared within the asset class's tolerances (seed recon_tolerances). Confirm prices are already
-- on the internal book's convention (staging normalises each broker's dialect).
with

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    where {{ near_business_dates('business_date') }}
),

confirms as (
    select * from {{ ref('stg_broker__pb_confirms') }}
    where {{ near_business_dates('business_date') }}
),

tolerances as (
    select * from {{ ref('recon_tolerances') }}
),

repeated_trade_ids as (
    select * from {{ ref('int_repeated_deliveries_identified') }}
    where source_table = 'internal_trades'
),

repeated_confirms as (
    select * from {{ ref('int_repeated_deliveries_identified') }}
    where source_table = 'pb_confirms'
),

allocations as (
    {{ first_deliveries('internal_trades', 'repeated_trade_ids', ['trade_id'], 'trade_record_id') }}
),

first_confirms as (
    {{ first_deliveries('confirms', 'repeated_confirms', ['trade_id'], 'confirm_id') }}
),

joined as (
    select
        coalesce(allocations.trade_id, first_confirms.trade_id) as trade_id,
        allocations.order_id,
        coalesce(allocations.business_date, first_confirms.trade_date, first_confirms.business_date) as business_date,
        coalesce(first_confirms.prime_broker, allocations.prime_broker) as prime_broker,
        coalesce(allocations.asset_class, first_confirms.asset_class) as asset_class,
        coalesce(allocations.instrument_id, first_confirms.instrument_id) as instrument_id,
        allocations.trade_id is not null as has_internal,
        first_confirms.trade_id is not null as has_confirm,
        allocations.account_number as internal_account_number,
        first_confirms.account_number as confirm_account_number,
        allocations.side as internal_side,
        first_confirms.side as confirm_side,
        allocations.currency as internal_currency,
        first_confirms.currency as confirm_currency,
        allocations.quantity as internal_quantity,
        first_confirms.quantity as confirm_quantity,
        allocations.price as internal_price,
        first_confirms.price as confirm_price,
        allocations.settle_date as internal_settle_date,
        first_confirms.settle_date as confirm_settle_date,
        allocations.commission as internal_commission,
        first_confirms.commission as confirm_commission
    from allocations
    full outer join first_confirms
        on allocations.trade_id = first_confirms.trade_id
),

compared as (
    select
        joined.*,
        joined.confirm_quantity - joined.internal_quantity as quantity_difference,
        joined.confirm_price - joined.internal_price as price_difference,
        abs(joined.confirm_price - joined.internal_price)
        / nullif(abs(joined.internal_price), 0) * 10000 as price_difference_bps,
        joined.confirm_commission - joined.internal_commission as commission_difference,
        {{ days_between('joined.internal_settle_date', 'joined.confirm_settle_date') }}
            as settlement_days_difference,
        coalesce(tolerances.price_abs_tolerance, 0) as price_abs_tolerance,
        coalesce(tolerances.price_bps_tolerance, 0) as price_bps_tolerance,
        coalesce(tolerances.quantity_tolerance, 0) as quantity_tolerance,
        coalesce(tolerances.commission_abs_tolerance, 0) as commission_abs_tolerance,
        coalesce(tolerances.settlement_days_tolerance, 0) as settlement_days_tolerance
    from joined
    left join tolerances
        on joined.asset_class = tolerances.asset_class
),

flagged as (
    select
        *,
        has_confirm and not has_internal as is_missing_internal,
        has_internal and not has_confirm as is_missing_confirm,
        has_internal and has_confirm and internal_side != confirm_side as has_side_break,
        has_internal and has_confirm and internal_currency != confirm_currency as has_currency_break,
        has_internal and has_confirm and internal_account_number != confirm_account_number as has_account_break,
        has_internal and has_confirm and abs(round(quantity_difference, 6)) > quantity_tolerance as has_quantity_break,
        has_internal and has_confirm
        and abs(round(price_difference, 9)) > price_abs_tolerance
        and round(coalesce(price_difference_bps, 0), 6) > price_bps_tolerance as has_price_break,
        has_internal and has_confirm
        and abs(round(coalesce(commission_difference, 0), 6)) > commission_abs_tolerance as has_commission_break,
        has_internal and has_confirm
        and abs(coalesce(settlement_days_difference, 0)) > settlement_days_tolerance as has_settlement_date_break
    from compared
),

final as (
    select
        *,
        case
            when is_missing_internal or is_missing_confirm or has_side_break or has_currency_break
                or has_account_break or has_quantity_break or has_price_break or has_commission_break
                or has_settlement_date_break then 'break'
            else 'matched'
        end as match_status
    from flagged
)

select * from final
