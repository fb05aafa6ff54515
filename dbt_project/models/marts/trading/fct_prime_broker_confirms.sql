{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='business_date',
        on_schema_change='append_new_columns',
    )
}}

with

confirms as (
    select * from {{ ref('stg_broker__pb_confirms') }}
    {% if is_incremental() %}
        where {{ in_business_dates('business_date') }}
    {% endif %}
),

final as (
    select
        confirm_id,
        trade_id,
        prime_broker,
        business_date,
        trade_date,
        settle_date,
        account_number,
        instrument_id,
        asset_class,
        side,
        quantity,
        price,
        price_as_delivered,
        price_convention,
        contract_multiplier,
        currency,
        gross_amount,
        commission,
        fees,
        executing_broker,
        count(*) over (partition by trade_id) > 1 as is_duplicate,
        source_file,
        source_line,
        file_version,
        landed_at
    from confirms
)

select * from final
