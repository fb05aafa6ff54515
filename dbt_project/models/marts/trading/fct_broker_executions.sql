{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

with

executions as (
    select * from {{ ref('stg_broker__fix_executions') }}
    {% if is_incremental() %}
        where {{ in_business_dates('business_date') }}
    {% endif %}
),

-- keys delivered more than once in the dates being built: one aggregate and a hash join, not a
-- window sorting every row
repeated_keys as (
    select
        executing_broker as repeated_executing_broker,
        exec_id as repeated_exec_id,
        true as is_repeated
    from executions
    group by executing_broker, exec_id
    having count(*) > 1
),

final as (
    select
        executions.execution_id,
        executions.exec_id,
        executions.order_id,
        executions.broker_order_id,
        executions.executing_broker,
        executions.business_date,
        executions.trade_date,
        executions.transacted_at,
        executions.settle_date,
        executions.begin_string,
        executions.exec_type,
        executions.exec_trans_type,
        executions.is_fill,
        executions.order_status,
        executions.block_account,
        executions.instrument_id,
        executions.asset_class,
        executions.side,
        executions.order_quantity,
        executions.fill_quantity,
        executions.fill_price,
        executions.cumulative_quantity,
        executions.leaves_quantity,
        executions.currency,
        executions.commission,
        coalesce(repeated_keys.is_repeated, false) as is_duplicate,
        executions.source_file,
        executions.source_line,
        executions.file_version,
        executions.landed_at
    from executions
    left join repeated_keys
        on
            executions.executing_broker is not distinct from repeated_keys.repeated_executing_broker
            and executions.exec_id is not distinct from repeated_keys.repeated_exec_id
)

select * from final
