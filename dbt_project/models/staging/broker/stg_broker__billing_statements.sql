with

source as (
    {{ broker_current_rows(source('broker', 'billing')) }}
),

renamed as (
    select
        {{ surrogate_key(['source.account_number', 'source.period_end']) }}
            as billing_statement_id,
        cast(source.account_number as string) as account_number,
        {{ parse_date('source.period_end') }} as period_end_on,
        cast(source.market_value as double) as market_value,
        cast(source.net_flows as double) as net_flows,
        cast(source.fees_billed as double) as fees_billed,
        upper(cast(source.currency as string)) as currency,
        upper(cast(source.account_status as string)) as account_status,
        coalesce(upper(cast(source.account_status as string)) = 'OPEN', false) as is_account_open,
        cast(source._source_file as string) as source_file,
        cast(source._source_line as integer) as source_line,
        cast(source._file_version as integer) as file_version,
        cast(source._run_id as string) as run_id,
        {{ to_utc_timestamp('source._landed_at') }} as landed_at
    from source
),

final as (
    select * from renamed
)

select * from final
