-- Every unmatched or mismatched item as one row per reason code. Items that agree within
-- tolerance (rounding, split fills that sum, a fill reported on the next UTC day) produce no row.
with

orders as (
    select * from {{ ref('int_orders_matched') }}
),

allocations as (
    select * from {{ ref('int_allocations_matched') }}
),

internal_trades as (
    select * from {{ ref('stg_broker__internal_trades') }}
    where {{ near_business_dates('business_date') }}
),

confirms as (
    select * from {{ ref('stg_broker__pb_confirms') }}
    where {{ near_business_dates('business_date') }}
),

executions as (
    select * from {{ ref('stg_broker__fix_executions') }}
    where {{ near_business_dates('business_date') }}
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
            cast(null as varchar) as trade_id,
            executing_broker as broker,
            asset_class,
            instrument_id,
            cast(null as varchar) as account_number,
            cast({{ internal_value }} as varchar) as internal_value,
            cast({{ broker_value }} as varchar) as broker_value,
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
            cast({{ internal_value }} as varchar) as internal_value,
            cast({{ broker_value }} as varchar) as broker_value,
            cast({{ difference }} as double) as difference
        from allocations
        where {{ flag }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

duplicate_internal as (
    select
        min(business_date) as business_date,
        'duplicate' as break_type,
        'allocation' as break_level,
        min(order_id) as order_id,
        trade_id,
        min(prime_broker) as broker,
        min(asset_class) as asset_class,
        min(instrument_id) as instrument_id,
        min(account_number) as account_number,
        cast(count(*) as varchar) as internal_value,
        cast(null as varchar) as broker_value,
        cast(count(*) - 1 as double) as difference
    from internal_trades
    group by trade_id
    having count(*) > 1
),

duplicate_confirms as (
    select
        min(confirms.business_date) as business_date,
        'duplicate' as break_type,
        'allocation' as break_level,
        min(internal_trades.order_id) as order_id,
        confirms.trade_id,
        min(confirms.prime_broker) as broker,
        min(confirms.asset_class) as asset_class,
        min(confirms.instrument_id) as instrument_id,
        min(confirms.account_number) as account_number,
        cast(null as varchar) as internal_value,
        cast(count(distinct confirms.confirm_id) as varchar) as broker_value,
        cast(count(distinct confirms.confirm_id) - 1 as double) as difference
    from confirms
    left join internal_trades
        on confirms.trade_id = internal_trades.trade_id
    group by confirms.trade_id
    having count(distinct confirms.confirm_id) > 1
),

duplicate_executions as (
    select
        min(business_date) as business_date,
        'duplicate' as break_type,
        'order' as break_level,
        min(order_id) as order_id,
        cast(null as varchar) as trade_id,
        executing_broker as broker,
        min(asset_class) as asset_class,
        min(instrument_id) as instrument_id,
        cast(null as varchar) as account_number,
        cast(null as varchar) as internal_value,
        cast(count(*) as varchar) as broker_value,
        cast(count(*) - 1 as double) as difference
    from executions
    group by executing_broker, exec_id
    having count(*) > 1
),

unioned as (
    select * from order_breaks
    union all
    select * from allocation_breaks
    union all
    select * from duplicate_internal
    union all
    select * from duplicate_confirms
    union all
    select * from duplicate_executions
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
