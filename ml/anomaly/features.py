"""Trade-level features for the break-anomaly model, read from the dbt mart ``fct_trade_anomaly_features``.

The unit is a *trade*: one allocation, keyed by ``trade_id``, from the internal book or, when the book has no row
for it (a ``missing_internal`` break), from the prime-broker confirm. Every trade gets a feature row; a break is
scored through its trade (allocation-level breaks) or the trades of its order (order-level breaks), see
:mod:`ml.anomaly.score`. What each feature means, its leakage rules (no trade explains itself; history only from
earlier business dates) and the firm-time session are the mart's: dbt_project/models/marts/trading/
fct_trade_anomaly_features.sql, contracted and documented in ``_trading__models.yml``.

This module owns the model's view of the mart: which columns are inputs (``FEATURE_COLUMNS``), the one-hot
encoding of the categories against the fixed level lists below (an unseen level falls in no column, so the
matrix has the same columns on every run and for every model version), the rounding that makes the frame (and
its ``snapshot_hash``) reproducible, and the readable words for the strongest features.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import northstar.warehouse
from northstar.errors import ExpectedError

ASSET_CLASSES = ("EQUITY", "ETF", "BOND", "FX_FWD", "OPTION")
EXECUTING_BROKERS = ("BRKA", "BRKB", "BRKC")
PRIME_BROKERS = ("atlas", "meridian")
BREAK_TYPES = (
    "missing_internal", "missing_broker", "missing_confirm", "quantity", "price", "side",
    "settlement_date", "account", "commission", "currency", "duplicate",
)

class FeaturesMissing(ExpectedError):
    """The feature mart has not been built in this warehouse yet."""


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
    # time of day (firm time: settings' timezone, passed to dbt)
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


def one_hot(frame: pd.DataFrame) -> pd.DataFrame:
    """The ONE_HOT_FEATURES of mart rows: asset class, brokers and break types against the fixed level lists."""
    columns: dict[str, np.ndarray] = {}
    for column, prefix, levels in (("asset_class", "is_asset", ASSET_CLASSES),
                                   ("executing_broker", "is_executing", EXECUTING_BROKERS),
                                   ("prime_broker", "is_prime", PRIME_BROKERS)):
        for level in levels:
            columns[f"{prefix}_{level.lower()}"] = (frame[column] == level).to_numpy(dtype="float64")
    types = frame["break_types"].explode()
    for break_type in BREAK_TYPES:
        columns[f"has_break_{break_type}"] = frame.index.isin(types.index[types == break_type]).astype("float64")
    return pd.DataFrame(columns, index=frame.index)


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
    """The feature frame of ``business_dates`` (dates or ISO strings; default every date) from the mart
    ``fct_trade_anomaly_features`` in the warehouse (on DuckDB the file ``warehouse``, opened read-only). The mart's history features
    already use every earlier date in the warehouse."""
    wanted = sorted({pd.Timestamp(d).date() for d in business_dates or ()})
    dated = f"where business_date in ({', '.join('?' for _ in wanted)}) " if wanted else ""
    with northstar.warehouse.open_warehouse(read_only=True, path=warehouse) as engine:
        if not engine.exists("fct_trade_anomaly_features"):
            raise FeaturesMissing(f"fct_trade_anomaly_features is not built in {warehouse}: run the dbt selector "
                                  "break_anomaly_features (nightly_all and intraday_trading_scored include it)")
        mart = engine.frame("select * from {fct_trade_anomaly_features} "  # noqa: S608 - one placeholder per date
                            + dated + "order by business_date, trade_id", wanted)
    frame = pd.concat([mart[list(ID_COLUMNS + NUMERIC_FEATURES)], one_hot(mart)], axis=1)
    frame["business_date"] = pd.to_datetime(frame["business_date"]).dt.date
    # DuckDB's parallel sums differ in the last bits from run to run; rounding makes the snapshot hash (and the
    # model input) reproducible
    for column in (*FEATURE_COLUMNS, "notional_usd"):
        frame[column] = frame[column].astype("float64").round(8)
    return FeatureSnapshot(frame=frame, snapshot_hash=snapshot_hash(frame), warehouse=str(warehouse))
