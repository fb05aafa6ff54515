{{ config(materialized='table') }}

-- Every key delivered more than once: a trade_id booked twice, a confirm delivered twice, an ExecID
-- reported twice. One row per repeated key with its first delivery (by business date, file and
-- line), which is the one the matching counts; the repeats are `duplicate` breaks. A small table
-- computed once, so the matching models drop repeats with one join against it instead of ranking
-- every row of the book, the confirms and the drop copies. Of the drop copies only fills count (a
-- repeated New or Canceled report moves no quantity; see int_broker_orders_aggregated).
with

internal_trades as (
    select
        trade_record_id,
        trade_id,
        order_id,
        business_date,
        source_file,
        source_line,
        prime_broker,
        asset_class,
        instrument_id,
        account_number
    from {{ ref('stg_broker__internal_trades') }}
    where {{ near_business_dates('business_date') }}
),

confirms as (
    select
        confirm_id,
        trade_id,
        business_date,
        source_file,
        source_line,
        prime_broker,
        asset_class,
        instrument_id,
        account_number
    from {{ ref('stg_broker__pb_confirms') }}
    where {{ near_business_dates('business_date') }}
),

executions as (
    select
        execution_id,
        executing_broker,
        exec_id,
        order_id,
        business_date,
        source_file,
        source_line,
        asset_class,
        instrument_id
    from {{ ref('stg_broker__fix_executions') }}
    where
        is_fill
        and {{ near_business_dates('business_date') }}
),

-- keys first (a count per key is cheap), the attributes from the few rows behind them
repeated_trade_ids as (
    select
        trade_id,
        count(*) as deliveries
    from internal_trades
    group by trade_id
    having count(*) > 1
),

repeated_bookings as (
    select internal_trades.*
    from internal_trades
    inner join repeated_trade_ids
        on internal_trades.trade_id = repeated_trade_ids.trade_id
),

booking_attributes as (
    select
        trade_id,
        min(business_date) as business_date,
        min(order_id) as order_id,
        min(prime_broker) as broker,
        min(asset_class) as asset_class,
        min(instrument_id) as instrument_id,
        min(account_number) as account_number
    from repeated_bookings
    group by trade_id
),

first_bookings as (
    select
        ranked.trade_id,
        ranked.trade_record_id as first_row_id
    from (
        select
            repeated_bookings.trade_id,
            repeated_bookings.trade_record_id,
            row_number() over (
                partition by repeated_bookings.trade_id
                order by repeated_bookings.business_date, repeated_bookings.source_file, repeated_bookings.source_line
            ) as delivery_rank
        from repeated_bookings
    ) as ranked
    where ranked.delivery_rank = 1
),

repeated_confirm_ids as (
    select
        trade_id,
        count(*) as deliveries
    from confirms
    group by trade_id
    having count(*) > 1
),

repeated_confirms as (
    select confirms.*
    from confirms
    inner join repeated_confirm_ids
        on confirms.trade_id = repeated_confirm_ids.trade_id
),

confirm_attributes as (
    select
        trade_id,
        min(business_date) as business_date,
        min(prime_broker) as broker,
        min(asset_class) as asset_class,
        min(instrument_id) as instrument_id,
        min(account_number) as account_number
    from repeated_confirms
    group by trade_id
),

first_confirms as (
    select
        ranked.trade_id,
        ranked.confirm_id as first_row_id
    from (
        select
            repeated_confirms.trade_id,
            repeated_confirms.confirm_id,
            row_number() over (
                partition by repeated_confirms.trade_id
                order by repeated_confirms.business_date, repeated_confirms.source_file, repeated_confirms.source_line
            ) as delivery_rank
        from repeated_confirms
    ) as ranked
    where ranked.delivery_rank = 1
),

repeated_exec_ids as (
    select
        executing_broker,
        exec_id,
        count(*) as deliveries
    from executions
    group by executing_broker, exec_id
    having count(*) > 1
),

repeated_reports as (
    select executions.*
    from executions
    inner join repeated_exec_ids
        on
            executions.executing_broker = repeated_exec_ids.executing_broker
            and executions.exec_id = repeated_exec_ids.exec_id
),

report_attributes as (
    select
        executing_broker,
        exec_id,
        min(business_date) as business_date,
        min(order_id) as order_id,
        min(asset_class) as asset_class,
        min(instrument_id) as instrument_id
    from repeated_reports
    group by executing_broker, exec_id
),

first_reports as (
    select
        ranked.executing_broker,
        ranked.exec_id,
        ranked.execution_id as first_row_id
    from (
        select
            repeated_reports.executing_broker,
            repeated_reports.exec_id,
            repeated_reports.execution_id,
            row_number() over (
                partition by repeated_reports.executing_broker, repeated_reports.exec_id
                order by repeated_reports.business_date, repeated_reports.source_file, repeated_reports.source_line
            ) as delivery_rank
        from repeated_reports
    ) as ranked
    where ranked.delivery_rank = 1
),

final as (
    select
        'internal_trades' as source_table,
        repeated_trade_ids.trade_id,
        cast(null as string) as executing_broker,
        cast(null as string) as exec_id,
        repeated_trade_ids.deliveries,
        first_bookings.first_row_id,
        booking_attributes.business_date,
        booking_attributes.order_id,
        booking_attributes.broker,
        booking_attributes.asset_class,
        booking_attributes.instrument_id,
        booking_attributes.account_number
    from repeated_trade_ids
    inner join first_bookings
        on repeated_trade_ids.trade_id = first_bookings.trade_id
    inner join booking_attributes
        on repeated_trade_ids.trade_id = booking_attributes.trade_id
    union all
    select
        'pb_confirms' as source_table,
        repeated_confirm_ids.trade_id,
        cast(null as string) as executing_broker,
        cast(null as string) as exec_id,
        repeated_confirm_ids.deliveries,
        first_confirms.first_row_id,
        confirm_attributes.business_date,
        cast(null as string) as order_id,
        confirm_attributes.broker,
        confirm_attributes.asset_class,
        confirm_attributes.instrument_id,
        confirm_attributes.account_number
    from repeated_confirm_ids
    inner join first_confirms
        on repeated_confirm_ids.trade_id = first_confirms.trade_id
    inner join confirm_attributes
        on repeated_confirm_ids.trade_id = confirm_attributes.trade_id
    union all
    select
        'fix_executions' as source_table,
        cast(null as string) as trade_id,
        repeated_exec_ids.executing_broker,
        repeated_exec_ids.exec_id,
        repeated_exec_ids.deliveries,
        first_reports.first_row_id,
        report_attributes.business_date,
        report_attributes.order_id,
        repeated_exec_ids.executing_broker as broker,
        report_attributes.asset_class,
        report_attributes.instrument_id,
        cast(null as string) as account_number
    from repeated_exec_ids
    inner join first_reports
        on
            repeated_exec_ids.executing_broker = first_reports.executing_broker
            and repeated_exec_ids.exec_id = first_reports.exec_id
    inner join report_attributes
        on
            repeated_exec_ids.executing_broker = report_attributes.executing_broker
            and repeated_exec_ids.exec_id = report_attributes.exec_id
)

select * from final
