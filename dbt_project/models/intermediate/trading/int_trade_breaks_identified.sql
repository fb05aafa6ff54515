-- Every unmatched or mismatched item as one row per reason code. Items that agree within
-- tolerance (rounding, split fills that sum, a fill reported on the next UTC day) produce no row.
-- A table, not a view: the matches, the breaks and their tests all read it, and at scale one
-- evaluation of the matching rules beats one per reader.
{{ config(materialized='table') }}
with

orders as (
    select * from {{ ref('int_orders_matched') }}
),

allocations as (
    select * from {{ ref('int_allocations_matched') }}
),

repeated_deliveries as (
    select * from {{ ref('int_repeated_deliveries_identified') }}
),

-- the order of a confirm delivered twice comes from the book (the few repeated trade ids joined,
-- not the whole book aggregated)
booked_orders as (
    select
        internal_trades.trade_id,
        min(internal_trades.order_id) as order_id
    from {{ ref('stg_broker__internal_trades') }} as internal_trades
    inner join repeated_deliveries
        on
            internal_trades.trade_id = repeated_deliveries.trade_id
            and repeated_deliveries.source_table = 'pb_confirms'
    where {{ near_business_dates('internal_trades.business_date') }}
    group by internal_trades.trade_id
),

order_breaks as (
    {% set order_checks = [
        ('missing_internal', 'is_missing_internal', 'null', 'broker_quantity', 'broker_quantity'),
        ('missing_broker', 'is_missing_broker', 'internal_quantity', 'null', 'internal_quantity'),
        ('side', 'has_side_break', 'internal_side', 'broker_side', 'null'),
        ('currency', 'has_currency_break', 'internal_currency', 'broker_currency', 'null'),
        ('quantity', 'has_quantity_break', 'internal_quantity', 'broker_quantity', 'quantity_difference'),
        ('price', 'has_price_break', 'internal_average_price', 'broker_average_price', 'price_difference'),
    ] %}
    {% for break_type, flag, internal_value, broker_value, difference in order_checks %}
        select
            business_date,
            '{{ break_type }}' as break_type,
            'order' as break_level,
            order_id,
            cast(null as string) as trade_id,
            executing_broker as broker,
            asset_class,
            instrument_id,
            cast(null as string) as account_number,
            cast({{ internal_value }} as string) as internal_value,
            cast({{ broker_value }} as string) as broker_value,
            cast({{ difference }} as double) as difference
        from orders
        where {{ flag }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

allocation_breaks as (
    {% set allocation_checks = [
        ('missing_internal', 'is_missing_internal', 'null', 'confirm_quantity', 'confirm_quantity'),
        ('missing_confirm', 'is_missing_confirm', 'internal_quantity', 'null', 'internal_quantity'),
        ('side', 'has_side_break', 'internal_side', 'confirm_side', 'null'),
        ('currency', 'has_currency_break', 'internal_currency', 'confirm_currency', 'null'),
        ('account', 'has_account_break', 'internal_account_number', 'confirm_account_number', 'null'),
        ('quantity', 'has_quantity_break', 'internal_quantity', 'confirm_quantity', 'quantity_difference'),
        ('price', 'has_price_break', 'internal_price', 'confirm_price', 'price_difference'),
        ('commission', 'has_commission_break', 'internal_commission', 'confirm_commission', 'commission_difference'),
        ('settlement_date', 'has_settlement_date_break', 'internal_settle_date', 'confirm_settle_date',
            'settlement_days_difference'),
    ] %}
    {% for break_type, flag, internal_value, broker_value, difference in allocation_checks %}
        select
            business_date,
            '{{ break_type }}' as break_type,
            'allocation' as break_level,
            order_id,
            trade_id,
            prime_broker as broker,
            asset_class,
            instrument_id,
            coalesce(internal_account_number, confirm_account_number) as account_number,
            cast({{ internal_value }} as string) as internal_value,
            cast({{ broker_value }} as string) as broker_value,
            cast({{ difference }} as double) as difference
        from allocations
        where {{ flag }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

duplicate_breaks as (
    select
        repeated_deliveries.business_date,
        'duplicate' as break_type,
        case when repeated_deliveries.source_table = 'fix_executions' then 'order' else 'allocation' end
            as break_level,
        coalesce(repeated_deliveries.order_id, booked_orders.order_id) as order_id,
        repeated_deliveries.trade_id,
        repeated_deliveries.broker,
        repeated_deliveries.asset_class,
        repeated_deliveries.instrument_id,
        repeated_deliveries.account_number,
        case
            when repeated_deliveries.source_table = 'internal_trades'
                then cast(repeated_deliveries.deliveries as string)
        end as internal_value,
        case
            when repeated_deliveries.source_table != 'internal_trades'
                then cast(repeated_deliveries.deliveries as string)
        end as broker_value,
        cast(repeated_deliveries.deliveries - 1 as double) as difference
    from repeated_deliveries
    left join booked_orders
        on
            repeated_deliveries.trade_id = booked_orders.trade_id
            and repeated_deliveries.source_table = 'pb_confirms'
),

unioned as (
    select * from order_breaks
    union all
    select * from allocation_breaks
    union all
    select * from duplicate_breaks
),

final as (
    select
        {{ surrogate_key(
            ['business_date', 'break_type', 'break_level', 'order_id', 'trade_id', 'broker']
        ) }} as break_key,
        business_date,
        break_type,
        break_level,
        order_id,
        trade_id,
        broker,
        asset_class,
        instrument_id,
        account_number,
        internal_value,
        broker_value,
        difference
    from unioned
)

select * from final
