"""Trade-level features for the break-anomaly model, computed in SQL in the DuckDB warehouse (read-only).

The unit is a *trade*: one allocation, keyed by ``trade_id``, from the internal book
(``fct_internal_executions``) or, when the book has no row for it (a ``missing_internal`` break), from
the prime-broker confirm (``fct_prime_broker_confirms``). Every trade gets a feature row; a break
(``fct_trade_breaks`` row) is scored through its trade (allocation-level breaks) or the trades of its order
(order-level breaks), see :mod:`ml.anomaly.score`.

Leakage rules (no label is ever read here; these are about not letting a trade explain itself):

* price deviation compares an order's price with the *other* orders in the same instrument that day
  (leave-one-out mean/std of log prices, the range of the others via the top-2 / bottom-2 prices) and with
  the instrument's median price on *earlier* business dates;
* account habit is the account's notional on *earlier* business dates only (running sums over the
  account-day table), plus the same-day leave-one-out mean as a second opinion;
* account status is the brokerage account's status at the trade's business date.

Money is converted to USD with rates read from the day's own FX-forward trades (``EURUSD`` prices give
USD per EUR, ``USDJPY`` gives JPY per USD), so an account's habit is comparable across currencies without
any external rate source.

Sums run over DECIMAL logs (exact, so the result does not depend on DuckDB's parallel summation order) and
the feature frame is rounded: the same warehouse gives the same snapshot hash on every run.

Categorical columns are one-hot encoded against the fixed level lists below (an unseen level falls in no
column), so the feature matrix has the same columns on every run and for every model version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import northstar.warehouse

ASSET_CLASSES = ("EQUITY", "ETF", "BOND", "FX_FWD", "OPTION")
EXECUTING_BROKERS = ("BRKA", "BRKB", "BRKC")
PRIME_BROKERS = ("atlas", "meridian")
BREAK_TYPES = (
    "missing_internal", "missing_broker", "missing_confirm", "quantity", "price", "side",
    "settlement_date", "account", "commission", "currency", "duplicate",
)

# Identifiers carried next to the features (never fed to a model).
ID_COLUMNS = ("trade_id", "order_id", "business_date", "account_number", "instrument_id", "asset_class",
              "notional_usd")

NUMERIC_FEATURES = (
    # price against the instrument's range that day (other orders) and earlier days
    "price_dev_log_vs_peers", "price_z_vs_peers", "price_outside_peer_range_log", "peer_order_count",
    "price_dev_log_vs_history",
    # size against the account's habit
    "notional_usd_log", "size_dev_log_vs_account_history", "size_z_vs_account_history",
    "account_history_trade_count", "size_dev_log_vs_account_same_day", "size_dev_log_vs_asset_class_day",
    # account status
    "is_account_closed", "days_since_account_closed", "is_account_unknown", "is_account_not_yet_open",
    # time of day (New York)
    "minutes_after_session_open", "is_outside_session",
    # what the reconciliation saw
    "has_internal", "has_confirm", "is_sell", "order_allocation_count", "order_fill_count",
    "confirm_price_diff_bps", "break_count", "order_break_count", "break_max_abs_difference_log",
    "break_max_relative_difference",
)
ONE_HOT_FEATURES = (
    *(f"is_asset_{a.lower()}" for a in ASSET_CLASSES),
    *(f"is_executing_{b.lower()}" for b in EXECUTING_BROKERS),
    *(f"is_prime_{b.lower()}" for b in PRIME_BROKERS),
    *(f"has_break_{t}" for t in BREAK_TYPES),
)
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + ONE_HOT_FEATURES

# Short readable words for the strongest features, used in the "top reasons" of a flagged trade.
FEATURE_LABELS = {
    "price_dev_log_vs_peers": "price off the instrument's other orders today",
    "price_z_vs_peers": "price off the instrument's other orders today",
    "price_outside_peer_range_log": "price outside today's range",
    "price_dev_log_vs_history": "price off the instrument's earlier days",
    "notional_usd_log": "trade size",
    "size_dev_log_vs_account_history": "size off the account's habit",
    "size_z_vs_account_history": "size off the account's habit",
    "size_dev_log_vs_account_same_day": "size off the account's other trades today",
    "size_dev_log_vs_asset_class_day": "size off the asset class today",
    "is_account_closed": "account closed",
    "days_since_account_closed": "account closed",
    "is_account_unknown": "account unknown",
    "is_account_not_yet_open": "account not yet open",
    "minutes_after_session_open": "time of day",
    "is_outside_session": "outside market hours",
    "has_internal": "not in the trade book",
    "has_confirm": "no prime-broker confirm",
    "order_fill_count": "FIX fills of the order",
    "confirm_price_diff_bps": "confirm price differs",
    "break_count": "reconciliation break",
    "order_break_count": "order-level break",
    "break_max_abs_difference_log": "break amount",
    "break_max_relative_difference": "break amount",
    **{f"has_break_{t}": f"{t.replace('_', ' ')} break" for t in BREAK_TYPES},
    **{f"is_asset_{a.lower()}": f"asset class {a}" for a in ASSET_CLASSES},
    **{f"is_executing_{b.lower()}": f"executing broker {b}" for b in EXECUTING_BROKERS},
    **{f"is_prime_{b.lower()}": f"prime broker {b}" for b in PRIME_BROKERS},
}


def _one_hot_sql() -> str:
    parts = [f"cast(coalesce(asset_class = '{a}', false) as double) as is_asset_{a.lower()}" for a in ASSET_CLASSES]
    parts += [f"cast(coalesce(executing_broker = '{b}', false) as double) as is_executing_{b.lower()}"
              for b in EXECUTING_BROKERS]
    parts += [f"cast(coalesce(prime_broker = '{b}', false) as double) as is_prime_{b.lower()}" for b in PRIME_BROKERS]
    parts += [f"cast(coalesce(has_break_{t}, false) as double) as has_break_{t}" for t in BREAK_TYPES]
    return ",\n        ".join(parts)


def _break_flags_sql() -> str:
    return ",\n        ".join(f"bool_or(break_type = '{t}') as has_break_{t}" for t in BREAK_TYPES)


# The feature query. Everything is computed over every business date in the warehouse (the history
# features need earlier days); the caller filters the dates it wants afterwards. `{<table>}` is a
# warehouse table by its dbt name (northstar.warehouse.render).
FEATURE_SQL = f"""
with

internal as (
    -- one row per trade id: a duplicated book row keeps its first landed copy
    select *
    from {{fct_internal_executions}}
    qualify row_number() over (partition by trade_id order by landed_at, source_file, source_line) = 1
),

confirms as (
    select *
    from {{fct_prime_broker_confirms}}
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
    select business_date, base_currency as currency, median(price) as usd_per_unit
    from fx_quotes
    where quote_currency = 'USD' and base_currency <> 'USD'
    group by business_date, base_currency
    union all
    select business_date, quote_currency as currency, median(1.0 / price) as usd_per_unit
    from fx_quotes
    where base_currency = 'USD' and quote_currency <> 'USD'
    group by business_date, quote_currency
),

overall_rates as (
    select currency, median(usd_per_unit) as usd_per_unit
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
        max(log_price, 2) as top_two,
        min(log_price, 2) as bottom_two,
        median(log_price) as median_log_price
    from order_prices
    group by business_date, instrument_id
),

instrument_history as (
    -- median over earlier business dates of the instrument's daily median log price
    select
        today.business_date,
        today.instrument_id,
        median(earlier.median_log_price) as history_log_price
    from instrument_days as today
    inner join instrument_days as earlier
        on today.instrument_id = earlier.instrument_id and earlier.business_date < today.business_date
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
            case when order_prices.log_price >= instrument_days.top_two[1]
                then instrument_days.top_two[2] else instrument_days.top_two[1] end
        end as peer_max_log_price,
        case when instrument_days.order_count > 1 then
            case when order_prices.log_price <= instrument_days.bottom_two[1]
                then instrument_days.bottom_two[2] else instrument_days.bottom_two[1] end
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
        sum(log_notional_sum) over earlier_days as history_sum,
        sum(log_notional_sumsq) over earlier_days as history_sumsq
    from account_days
    window earlier_days as (
        partition by account_number order by business_date rows between unbounded preceding and 1 preceding
    )
),

asset_class_days as (
    select business_date, asset_class, median(log_notional) as median_log_notional
    from sized
    group by business_date, asset_class
),

brokerage_accounts as (
    select *
    from {{stg_salesforce__brokerage_accounts}}
    qualify row_number() over (partition by account_number order by system_modstamp_at desc) = 1
),

trade_breaks as (
    select
        trade_id,
        count(*) as break_count,
        max(abs(difference)) as break_max_abs_difference,
        max(abs(difference) / nullif(abs(try_cast(coalesce(internal_value, broker_value) as double)), 0))
            as break_max_relative_difference,
        {_break_flags_sql()}
    from {{fct_trade_breaks}}
    where trade_id is not null
    group by trade_id
),

order_breaks as (
    select
        order_id,
        count(*) as order_break_count,
        bool_or(break_type = 'missing_broker') as has_order_missing_broker
    from {{fct_trade_breaks}}
    where break_level = 'order' and order_id is not null
    group by order_id
),

order_matches as (
    select order_id, max(fill_count) as fill_count
    from {{fct_trade_matches}}
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
                - pow(account_history.history_sum / account_history.history_count, 2), 0)), 0.25)
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
            cast(sized.business_date - brokerage_accounts.closed_on as double)
        end as days_since_account_closed,
        cast(brokerage_accounts.account_number is null as double) as is_account_unknown,
        cast(coalesce(brokerage_accounts.opened_on > sized.business_date, false) as double)
            as is_account_not_yet_open,
        (extract(hour from timezone('America/New_York', sized.traded_at at time zone 'UTC')) * 60
         + extract(minute from timezone('America/New_York', sized.traded_at at time zone 'UTC'))
         - 570.0) as minutes_after_session_open,
        case when sized.traded_at is not null then
            cast(
                extract(hour from timezone('America/New_York', sized.traded_at at time zone 'UTC')) * 60
                + extract(minute from timezone('America/New_York', sized.traded_at at time zone 'UTC'))
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
        {', '.join(f'trade_breaks.has_break_{t}' for t in BREAK_TYPES if t != 'missing_broker')},
        coalesce(trade_breaks.has_break_missing_broker, false)
        or coalesce(order_breaks.has_order_missing_broker, false) as has_break_missing_broker
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
        {', '.join(ID_COLUMNS)},
        {', '.join(NUMERIC_FEATURES)},
        {_one_hot_sql()}
    from features
)

select * from final
-- $1: the business dates wanted (an empty list = every date); the history above still sees every date
where len($1::date[]) = 0 or list_contains($1::date[], business_date)
order by business_date, trade_id
"""  # noqa: S608 - built from module constants only, no user input


@dataclass(frozen=True)
class FeatureSnapshot:
    """The feature frame of one run and what it was computed from."""

    frame: pd.DataFrame  # ID_COLUMNS + FEATURE_COLUMNS, one row per trade
    snapshot_hash: str  # sha256 of the frame's content (lineage: logged with the model and the scores)
    warehouse: str

    @property
    def business_dates(self) -> list:
        return sorted(self.frame["business_date"].unique())

    def matrix(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        frame = self.frame if frame is None else frame
        return feature_matrix(frame)


def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model input: FEATURE_COLUMNS as float64 (NaN where a feature does not apply)."""
    return frame.loc[:, list(FEATURE_COLUMNS)].astype("float64")


def snapshot_hash(frame: pd.DataFrame) -> str:
    row_hashes = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
    digest = hashlib.sha256(np.ascontiguousarray(row_hashes).tobytes())
    digest.update(",".join(frame.columns).encode())
    return digest.hexdigest()


def compute_trade_features(warehouse: str | Path, business_dates: list | None = None) -> FeatureSnapshot:
    """Compute the feature frame from the warehouse file (opened read-only).

    ``business_dates`` (dates or ISO strings) keeps only those dates' trades; the history features still
    use every earlier date in the warehouse.
    """
    with northstar.warehouse.connect(read_only=True, path=warehouse) as con:
        con.execute("set TimeZone = 'UTC'")
        wanted = sorted({pd.Timestamp(d).date() for d in business_dates or ()})
        frame = con.execute(northstar.warehouse.render(FEATURE_SQL), [wanted]).df()
    frame["business_date"] = pd.to_datetime(frame["business_date"]).dt.date
    # DuckDB's parallel sums differ in the last bits from run to run; rounding makes the snapshot hash (and the
    # model input) reproducible
    for column in (*FEATURE_COLUMNS, "notional_usd"):
        frame[column] = frame[column].astype("float64").round(8)
    return FeatureSnapshot(frame=frame, snapshot_hash=snapshot_hash(frame), warehouse=str(warehouse))
