{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        on_schema_change='append_new_columns',
    )
}}

with

executions as (
    select * from {{ ref('stg_broker__fix_executions') }}
    {% if is_incremental() %}
        where {{ in_business_dates('business_date') }}
    {% endif %}
),

final as (
    select
        execution_id,
        exec_id,
        order_id,
        broker_order_id,
        executing_broker,
        business_date,
        trade_date,
        transacted_at,
        settle_date,
        order_status,
        block_account,
        instrument_id,
        asset_class,
        side,
        order_quantity,
        fill_quantity,
        fill_price,
        cumulative_quantity,
        leaves_quantity,
        currency,
        commission,
        count(*) over (partition by executing_broker, exec_id) > 1 as is_duplicate,
        source_file,
        source_line,
        file_version,
        landed_at
    from executions
)

select * from final
