-- FIX drop copies per order: partial fills summed, volume-weighted average price. Only fills count
-- (is_fill: ExecType F Trade, or FIX 4.2's 1/2 with ExecTransType New); a New, Canceled, Replaced or
-- other order-state report (LastQty 0 or none) is no fill. A fill repeated under the same ExecID is
-- counted once here and reported as a `duplicate` break.
with

executions as (
    select * from {{ ref('stg_broker__fix_executions') }}
    where
        is_fill
        and {{ near_business_dates('business_date') }}
),

repeated_reports as (
    select * from {{ ref('int_repeated_deliveries_identified') }}
    where source_table = 'fix_executions'
),

fills as (
    {{ first_deliveries('executions', 'repeated_reports', ['executing_broker', 'exec_id'], 'execution_id') }}
),

aggregated as (
    select
        order_id,
        executing_broker,
        min(business_date) as business_date,
        min(trade_date) as trade_date,
        min(block_account) as block_account,
        min(instrument_id) as instrument_id,
        min(asset_class) as asset_class,
        min(side) as side,
        min(currency) as currency,
        min(settle_date) as settle_date,
        {{ exact_sum('fill_quantity') }} as quantity,
        {{ exact_sum('fill_quantity * fill_price') }} / nullif({{ exact_sum('fill_quantity') }}, 0) as average_price,
        {{ exact_sum('commission') }} as commission,
        count(*) as fill_count
    from fills
    group by order_id, executing_broker
),

final as (
    select * from aggregated
)

select * from final
