{{ config(materialized='table', tags=['break_anomaly']) }}

-- The break-anomaly model's features: one row per trade (allocation), keyed by trade_id, from the internal
-- book (fct_internal_executions) or, when the book has no row for it (a missing_internal break), from the
-- prime-broker confirm. Computed over every business date (the history features need earlier days);
-- ml/anomaly reads the dates it scores or trains on. No label is read here. Leakage rules, so that a trade
-- does not explain itself:
-- * price deviation compares an order's price with the *other* orders in the instrument that day
--   (leave-one-out mean/std of log prices, the others' range via the top-2 / bottom-2 prices) and with the
--   instrument's median price on *earlier* business dates;
-- * account habit is the account's notional on *earlier* business dates only (running sums over the
--   account-day table), plus the same-day leave-one-out mean as a second opinion;
-- * account status is the brokerage account's status at the trade's business date.
-- Money is converted to USD with rates read from the day's own FX-forward trades (EURUSD prices give USD per
-- EUR, USDJPY gives JPY per USD). Log sums run over DECIMAL (exact: the result does not depend on the order
-- of a parallel sum). Time of day is read in the firm's timezone (var firm_timezone, from settings).
with

internal as (
    -- one row per trade id: a duplicated book row keeps its first landed copy
    select *
    from {{ ref('fct_internal_executions') }}
    qualify row_number() over (partition by trade_id order by landed_at, source_file, source_line) = 1
),

confirms as (
    select *
    from {{ ref('fct_prime_broker_confirms') }}
    qualify row_number() over (partition by trade_id order by landed_at, source_file, source_line) = 1
),

trades as (
    select
        coalesce(internal.trade_id, confirms.trade_id) as trade_id,
        internal.order_id,
        coalesce(internal.business_date, confirms.business_date) as business_date,
        internal.traded_at,
        coalesce(internal.account_number, confirms.account_number) as account_number,
        coalesce(internal.instrument_id, confirms.instrument_id) as instrument_id,
        coalesce(internal.asset_class, confirms.asset_class) as asset_class,
        coalesce(internal.side, confirms.side) as side,
        coalesce(internal.quantity, confirms.quantity) as quantity,
        coalesce(internal.price, confirms.price) as price,
        coalesce(internal.currency, confirms.currency) as currency,
        coalesce(internal.executing_broker, confirms.executing_broker) as executing_broker,
        coalesce(internal.prime_broker, confirms.prime_broker) as prime_broker,
        internal.trade_id is not null as has_internal,
        confirms.trade_id is not null as has_confirm,
        confirms.price as confirm_price
    from internal
    full outer join confirms
        on internal.trade_id = confirms.trade_id
),

fx_quotes as (
    select
        business_date,
        substr(instrument_id, 1, 3) as base_currency,
        substr(instrument_id, 4, 3) as quote_currency,
        price
    from trades
    where asset_class = 'FX_FWD' and price > 0 and length(instrument_id) >= 6
),

day_rates as (
    -- USD value of one unit of a currency on a business date, from that day's FX forwards
    select
        business_date,
        base_currency as currency,
        median(price) as usd_per_unit
    from fx_quotes
    where quote_currency = 'USD' and base_currency <> 'USD'
    group by business_date, base_currency
    union all
    select
        business_date,
        quote_currency as currency,
        median(1.0 / price) as usd_per_unit
    from fx_quotes
    where base_currency = 'USD' and quote_currency <> 'USD'
    group by business_date, quote_currency
),

overall_rates as (
    select
        currency,
        median(usd_per_unit) as usd_per_unit
    from day_rates
    group by currency
),

priced as (
    select
        trades.*,
        coalesce(trades.order_id, trades.trade_id) as order_key,
        abs(trades.quantity) * trades.price
        * case trades.asset_class when 'BOND' then 0.01 when 'OPTION' then 100.0 else 1.0 end
        * case
            when trades.currency = 'USD' then 1.0
            else coalesce(day_rates.usd_per_unit, overall_rates.usd_per_unit, 1.0)
        end as notional_usd
    from trades
    left join day_rates
        on trades.business_date = day_rates.business_date and trades.currency = day_rates.currency
    left join overall_rates
        on trades.currency = overall_rates.currency
),

order_prices as (
    select
        business_date,
        instrument_id,
        order_key,
        cast(avg(cast(ln(price) as decimal(18, 12))) as decimal(18, 12)) as log_price,
        count(*) as allocation_count
    from priced
    where price > 0
    group by business_date, instrument_id, order_key
),

instrument_days as (
    select
        business_date,
        instrument_id,
        count(*) as order_count,
        sum(log_price) as log_price_sum,
        sum(log_price * log_price) as log_price_sumsq,
        {{ top_values('log_price', 2) }} as top_two,
        {{ bottom_values('log_price', 2) }} as bottom_two,
        {{ median_decimal("log_price") }} as median_log_price
    from order_prices
    group by business_date, instrument_id
),

instrument_history as (
    -- median over earlier business dates of the instrument's daily median log price
    select
        today.business_date,
        today.instrument_id,
        {{ median_decimal("earlier.median_log_price") }} as history_log_price
    from instrument_days as today
    inner join instrument_days as earlier
        on today.instrument_id = earlier.instrument_id and today.business_date > earlier.business_date
    group by today.business_date, today.instrument_id
),

order_price_features as (
    select
        order_prices.business_date,
        order_prices.instrument_id,
        order_prices.order_key,
        order_prices.allocation_count,
        instrument_days.order_count - 1 as peer_order_count,
        case when instrument_days.order_count > 1 then
                order_prices.log_price
                - (instrument_days.log_price_sum - order_prices.log_price) / (instrument_days.order_count - 1)
        end as price_dev_log_vs_peers,
        case when instrument_days.order_count > 2 then
                (instrument_days.log_price_sumsq - order_prices.log_price * order_prices.log_price)
                / (instrument_days.order_count - 1)
                - pow((instrument_days.log_price_sum - order_prices.log_price) / (instrument_days.order_count - 1), 2)
        end as peer_log_price_variance,
        case when instrument_days.order_count > 1 then
                case when order_prices.log_price >= {{ list_item('instrument_days.top_two', 1) }}
                        then {{ list_item('instrument_days.top_two', 2) }}
                    else {{ list_item('instrument_days.top_two', 1) }}
                end
        end as peer_max_log_price,
        case when instrument_days.order_count > 1 then
                case when order_prices.log_price <= {{ list_item('instrument_days.bottom_two', 1) }}
                        then {{ list_item('instrument_days.bottom_two', 2) }}
                    else {{ list_item('instrument_days.bottom_two', 1) }}
                end
        end as peer_min_log_price,
        cast(order_prices.log_price - instrument_history.history_log_price as double) as price_dev_log_vs_history
    from order_prices
    inner join instrument_days
        on order_prices.business_date = instrument_days.business_date
            and order_prices.instrument_id = instrument_days.instrument_id
    left join instrument_history
        on order_prices.business_date = instrument_history.business_date
            and order_prices.instrument_id = instrument_history.instrument_id
),

sized as (
    select
        *,
        cast(ln(greatest(notional_usd, 1.0)) as decimal(18, 12)) as log_notional
    from priced
),

account_days as (
    select
        account_number,
        business_date,
        count(*) as trade_count,
        sum(log_notional) as log_notional_sum,
        sum(log_notional * log_notional) as log_notional_sumsq
    from sized
    group by account_number, business_date
),

account_history as (
    -- running totals over the account's earlier business dates only
    select
        account_number,
        business_date,
        trade_count,
        log_notional_sum,
        coalesce(sum(trade_count) over earlier_days, 0) as history_count,
        -- exact sums, read as doubles: every use divides them, which DuckDB does in double arithmetic
        -- (and Spark, dividing decimals, in decimals cut to fewer digits)
        cast(sum(log_notional_sum) over earlier_days as double) as history_sum,
        cast(sum(log_notional_sumsq) over earlier_days as double) as history_sumsq
    from account_days
    window earlier_days as (
        partition by account_number order by business_date rows between unbounded preceding and 1 preceding
    )
),

asset_class_days as (
    select
        business_date,
        asset_class,
        {{ median_decimal("log_notional") }} as median_log_notional
    from sized
    group by business_date, asset_class
),

brokerage_accounts as (
    select *
    from {{ ref('stg_salesforce__brokerage_accounts') }}
    qualify row_number() over (partition by account_number order by system_modstamp_at desc) = 1
),

trade_breaks as (
    select
        trade_id,
        count(*) as break_count,
        max(abs(difference)) as break_max_abs_difference,
        max(abs(difference) / nullif(abs(try_cast(coalesce(internal_value, broker_value) as double)), 0))
            as break_max_relative_difference,
        {{ sorted_distinct_agg('break_type') }} as break_types
    from {{ ref('fct_trade_breaks') }}
    where trade_id is not null
    group by trade_id
),

order_breaks as (
    select
        order_id,
        count(*) as order_break_count,
        bool_or(break_type = 'missing_broker') as has_order_missing_broker
    from {{ ref('fct_trade_breaks') }}
    where break_level = 'order' and order_id is not null
    group by order_id
),

order_matches as (
    select
        order_id,
        max(fill_count) as fill_count
    from {{ ref('fct_trade_matches') }}
    where match_level = 'order'
    group by order_id
),

features as (
    select
        sized.trade_id,
        sized.order_id,
        sized.business_date,
        sized.account_number,
        sized.instrument_id,
        sized.asset_class,
        sized.notional_usd,
        sized.executing_broker,
        sized.prime_broker,
        order_price_features.price_dev_log_vs_peers,
        order_price_features.price_dev_log_vs_peers
        / greatest(sqrt(greatest(order_price_features.peer_log_price_variance, 0)), 0.005) as price_z_vs_peers,
        case when order_price_features.peer_order_count > 0 then
                greatest(
                    ln(greatest(sized.price, 1e-12)) - order_price_features.peer_max_log_price,
                    order_price_features.peer_min_log_price - ln(greatest(sized.price, 1e-12)),
                    0
                )
        end as price_outside_peer_range_log,
        cast(coalesce(order_price_features.peer_order_count, 0) as double) as peer_order_count,
        order_price_features.price_dev_log_vs_history,
        cast(sized.log_notional as double) as notional_usd_log,
        case when account_history.history_count > 0 then
                sized.log_notional - account_history.history_sum / account_history.history_count
        end as size_dev_log_vs_account_history,
        case when account_history.history_count > 1 then
                (sized.log_notional - account_history.history_sum / account_history.history_count)
                / greatest(sqrt(greatest(
                    account_history.history_sumsq / account_history.history_count
                    - pow(account_history.history_sum / account_history.history_count, 2), 0
                )), 0.25)
        end as size_z_vs_account_history,
        cast(account_history.history_count as double) as account_history_trade_count,
        case when account_history.trade_count > 1 then
                sized.log_notional
                - (account_history.log_notional_sum - sized.log_notional) / (account_history.trade_count - 1)
        end as size_dev_log_vs_account_same_day,
        cast(sized.log_notional - asset_class_days.median_log_notional as double) as size_dev_log_vs_asset_class_day,
        cast(coalesce(
            brokerage_accounts.status = 'Closed'
            and (brokerage_accounts.closed_on is null or brokerage_accounts.closed_on <= sized.business_date),
            false
        ) as double) as is_account_closed,
        case when brokerage_accounts.closed_on <= sized.business_date then
                cast({{ days_between('brokerage_accounts.closed_on', 'sized.business_date') }} as double)
        end as days_since_account_closed,
        cast(brokerage_accounts.account_number is null as double) as is_account_unknown,
        cast(coalesce(brokerage_accounts.opened_on > sized.business_date, false) as double)
            as is_account_not_yet_open,
        (
            extract(hour from {{ to_firm_time('sized.traded_at') }}) * 60
            + extract(minute from {{ to_firm_time('sized.traded_at') }})
            - 570.0
        ) as minutes_after_session_open,
        case when sized.traded_at is not null then
                cast(
                    extract(hour from {{ to_firm_time('sized.traded_at') }}) * 60
                    + extract(minute from {{ to_firm_time('sized.traded_at') }})
                    not between 570 and 960
                    as double
                )
        end as is_outside_session,
        cast(sized.has_internal as double) as has_internal,
        cast(sized.has_confirm as double) as has_confirm,
        cast(sized.side = 'SELL' as double) as is_sell,
        cast(order_price_features.allocation_count as double) as order_allocation_count,
        cast(order_matches.fill_count as double) as order_fill_count,
        case when sized.has_internal and sized.has_confirm and sized.price > 0 then
                abs(sized.confirm_price - sized.price) / sized.price * 10000
        end as confirm_price_diff_bps,
        cast(coalesce(trade_breaks.break_count, 0) as double) as break_count,
        cast(coalesce(order_breaks.order_break_count, 0) as double) as order_break_count,
        ln(1 + trade_breaks.break_max_abs_difference) as break_max_abs_difference_log,
        trade_breaks.break_max_relative_difference,
        -- the break types on the trade, and an order-level missing_broker on its order
        {{ sorted_distinct_union(
            'trade_breaks.break_types',
            "case when order_breaks.has_order_missing_broker then " ~ string_list(["'missing_broker'"]) ~ " end",
        ) }} as break_types
    from sized
    left join order_price_features
        on sized.business_date = order_price_features.business_date
            and sized.instrument_id = order_price_features.instrument_id
            and sized.order_key = order_price_features.order_key
    left join account_history
        on sized.account_number = account_history.account_number
            and sized.business_date = account_history.business_date
    left join asset_class_days
        on sized.business_date = asset_class_days.business_date
            and sized.asset_class = asset_class_days.asset_class
    left join brokerage_accounts
        on sized.account_number = brokerage_accounts.account_number
    left join trade_breaks
        on sized.trade_id = trade_breaks.trade_id
    left join order_breaks
        on sized.order_id = order_breaks.order_id
    left join order_matches
        on sized.order_id = order_matches.order_id
),

final as (
    select
        trade_id,
        order_id,
        business_date,
        account_number,
        instrument_id,
        asset_class,
        executing_broker,
        prime_broker,
        cast(notional_usd as double) as notional_usd,
        cast(price_dev_log_vs_peers as double) as price_dev_log_vs_peers,
        cast(price_z_vs_peers as double) as price_z_vs_peers,
        cast(price_outside_peer_range_log as double) as price_outside_peer_range_log,
        cast(peer_order_count as double) as peer_order_count,
        cast(price_dev_log_vs_history as double) as price_dev_log_vs_history,
        cast(notional_usd_log as double) as notional_usd_log,
        cast(size_dev_log_vs_account_history as double) as size_dev_log_vs_account_history,
        cast(size_z_vs_account_history as double) as size_z_vs_account_history,
        cast(account_history_trade_count as double) as account_history_trade_count,
        cast(size_dev_log_vs_account_same_day as double) as size_dev_log_vs_account_same_day,
        cast(size_dev_log_vs_asset_class_day as double) as size_dev_log_vs_asset_class_day,
        cast(is_account_closed as double) as is_account_closed,
        cast(days_since_account_closed as double) as days_since_account_closed,
        cast(is_account_unknown as double) as is_account_unknown,
        cast(is_account_not_yet_open as double) as is_account_not_yet_open,
        cast(minutes_after_session_open as double) as minutes_after_session_open,
        cast(is_outside_session as double) as is_outside_session,
        cast(has_internal as double) as has_internal,
        cast(has_confirm as double) as has_confirm,
        cast(is_sell as double) as is_sell,
        cast(order_allocation_count as double) as order_allocation_count,
        cast(order_fill_count as double) as order_fill_count,
        cast(confirm_price_diff_bps as double) as confirm_price_diff_bps,
        cast(break_count as double) as break_count,
        cast(order_break_count as double) as order_break_count,
        cast(break_max_abs_difference_log as double) as break_max_abs_difference_log,
        cast(break_max_relative_difference as double) as break_max_relative_difference,
        break_types
    from features
)

select * from final
