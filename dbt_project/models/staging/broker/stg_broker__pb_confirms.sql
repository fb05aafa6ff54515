-- Every prime broker's dialect in one shape: side BUY/SELL, canonical asset class, prices on the
-- internal book's convention (equities/ETFs per share, bonds in % of par, FX forwards as the
-- forward rate, options premium per share with the contract multiplier alongside).
-- The broker's product codes are mapped once, at landing, by its dialect (ingest/dialects/<broker>.yaml):
-- the landing's asset_class and side are already canonical (asset_class_code / side_code keep the delivered
-- codes), and its price convention and contract multiplier are the dialect's, so nothing here maps codes again.
{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **replace_by_key('business_date')
    )
}}

with

source as (
    {% if is_incremental() %}
        {{ broker_current_rows(source('broker', 'pb_confirms'), in_business_dates('landed.business_date')) }}
    {% else %}
        {{ broker_current_rows(source('broker', 'pb_confirms')) }}
    {% endif %}
),

renamed as (
    select
        {{ surrogate_key(['source._source_file', 'source._source_line']) }}
            as confirm_id,
        cast(source.trade_id as string) as trade_id,
        lower(cast(source.prime_broker as string)) as prime_broker,
        cast(source.business_date as date) as business_date,
        {{ parse_date('source.trade_date') }} as trade_date,
        {{ parse_date('source.settle_date') }} as settle_date,
        cast(source.account_number as string) as account_number,
        cast(source.instrument_id as string) as instrument_id,
        upper(cast(source.asset_class as string)) as asset_class,
        upper(cast(source.side as string)) as side,
        cast(source.quantity as double) as quantity,
        case lower(cast(source.price_convention as string))
            when 'fraction_of_par' then cast(source.price as double) * 100
            when
                'per_contract'
                then cast(source.price as double) / coalesce(nullif(cast(source.contract_multiplier as double), 0), 100)
            else cast(source.price as double)
        end as price,
        cast(source.price as double) as price_as_delivered,
        lower(cast(source.price_convention as string)) as price_convention,
        coalesce(cast(source.contract_multiplier as double), 1) as contract_multiplier,
        upper(cast(source.currency as string)) as currency,
        cast(source.gross_amount as double) as gross_amount,
        cast(source.commission as double) as commission,
        cast(source.fees as double) as fees,
        upper(cast(source.executing_broker as string)) as executing_broker,
        cast(source._source_file as string) as source_file,
        cast(source._source_line as integer) as source_line,
        cast(source._file_sha256 as string) as file_sha256,
        cast(source._file_version as integer) as file_version,
        cast(source._run_id as string) as run_id,
        {{ to_utc_timestamp('source._landed_at') }} as landed_at
    from source
),

final as (
    select * from renamed
)

select * from final
