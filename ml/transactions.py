"""Transaction logs for CLV: loading, customer-day aggregation, RFM summaries and calibration features.

A transaction log is a table with columns ``customer_id``, ``date``, ``amount`` (CSV or Parquet). Every
model here counts a *customer-day* as one transaction: several purchases by one customer on one day
are summed into one row. Periods are closed on the right: the calibration period is every day up to and
including ``calibration_end``, the holdout is ``(calibration_end, holdout_end]``. Only customers whose
first purchase falls in the calibration period are scored (the BG/NBD convention).

Time is measured in days throughout (``recency``, ``T``, horizons).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = Path(__file__).resolve().parent / "datasets"
CDNOW_PATH = DATASETS / "cdnow_master.txt.gz"
# The reference split on CDNOW: 39 weeks of calibration, 39 weeks of holdout.
CDNOW_CALIBRATION_END = "1997-09-30"
CDNOW_HOLDOUT_END = "1998-06-30"

LOG_COLUMNS = ["customer_id", "date", "amount"]

# Two public logs besides CDNOW (source, licence and conversion in ``ml/datasets/README.md``).
APPAREL_PATH = DATASETS / "apparel_trans.csv.gz"
APPAREL_CALIBRATION_END = "2007-12-31"
APPAREL_HOLDOUT_END = "2010-12-20"
ONLINE_RETAIL_PATH = DATASETS / "online_retail_invoices.csv.gz"
ONLINE_RETAIL_CALIBRATION_END = "2011-06-30"
ONLINE_RETAIL_HOLDOUT_END = "2011-12-09"


class TransactionLogError(ValueError):
    """A log that cannot be used as it is; the message is one line meant for the person who supplied it."""


@dataclass(frozen=True)
class LogCounts:
    """What happened to every row of a raw log: rows read = without id + non-positive + purchase rows."""
    rows_read: int
    rows_without_customer: int
    rows_non_positive_amount: int
    purchase_rows: int
    customer_days: int

    def summary(self) -> str:
        return (f"{self.rows_read} rows read: {self.purchase_rows} purchases summed to {self.customer_days} "
                f"customer-days; ignored {self.rows_without_customer} without a customer id and "
                f"{self.rows_non_positive_amount} with a non-positive amount (returns, zero-value rows)")


def to_customer_days(log: pd.DataFrame) -> pd.DataFrame:
    """Validate a raw log and sum it to one row per customer-day, sorted by customer then date."""
    return customer_days_with_counts(log)[0]


def customer_days_with_counts(log: pd.DataFrame) -> tuple[pd.DataFrame, LogCounts]:
    """The customer-day log and the count of every row set aside.

    Rows without a customer id cannot be attributed and are counted, not kept. Rows with a zero or negative
    amount (returns, refunds, free items) are not purchases: they are counted and left out, so they neither
    make a purchase day nor lower a day's spend.
    """
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise TransactionLogError(f"transaction log is missing column(s) {', '.join(missing)} "
                                  f"(found {', '.join(map(str, log.columns))}); it needs {', '.join(LOG_COLUMNS)}")
    if log.empty:
        raise TransactionLogError("transaction log has no rows")
    customer = log["customer_id"].astype("string").str.strip()
    has_customer = customer.notna() & (customer != "")
    dates = pd.to_datetime(log["date"], errors="coerce")
    amounts = pd.to_numeric(log["amount"], errors="coerce")
    bad_dates = int((has_customer & dates.isna()).sum())
    bad_amounts = int((has_customer & amounts.isna()).sum())
    if bad_dates or bad_amounts:
        raise TransactionLogError(f"transaction log has {bad_dates} row(s) with an empty or unreadable date and "
                                  f"{bad_amounts} with an empty or non-numeric amount")
    positive = has_customer & (amounts > 0)
    frame = pd.DataFrame({
        "customer_id": customer[positive].astype(str),
        "date": dates[positive].dt.normalize(),
        "amount": amounts[positive].astype(float),
    })
    if frame.empty:
        raise TransactionLogError("transaction log has no purchase (no row with a customer id and a positive amount)")
    days = frame.groupby(["customer_id", "date"], as_index=False, sort=True)["amount"].sum().reset_index(drop=True)
    counts = LogCounts(rows_read=len(log), rows_without_customer=int((~has_customer).sum()),
                       rows_non_positive_amount=int((has_customer & ~positive).sum()),
                       purchase_rows=int(positive.sum()), customer_days=len(days))
    return days, counts


def read_log(path: str | Path) -> pd.DataFrame:
    """A CSV (optionally gzipped) or Parquet log as read, before any validation."""
    path = Path(path)
    if not path.exists():
        raise TransactionLogError(f"transaction log {path} does not exist")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"customer_id": str})
    except pd.errors.EmptyDataError as exc:
        raise TransactionLogError(f"transaction log {path} is empty") from exc


def load_transactions_with_counts(path: str | Path) -> tuple[pd.DataFrame, LogCounts]:
    return customer_days_with_counts(read_log(path))


def load_transactions(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet log (``customer_id``, ``date``, ``amount``) as customer-days."""
    return load_transactions_with_counts(path)[0]


def load_cdnow(path: str | Path = CDNOW_PATH) -> pd.DataFrame:
    """The CDNOW master file (see ``ml/datasets/README.md``) as a customer-day log."""
    return load_cdnow_with_counts(path)[0]


def load_cdnow_with_counts(path: str | Path = CDNOW_PATH) -> tuple[pd.DataFrame, LogCounts]:
    with gzip.open(path, "rt") as handle:
        raw = pd.read_csv(handle, sep=r"\s+", skiprows=1, header=None,
                          names=["customer_id", "date", "cds", "amount"], dtype={"customer_id": str})
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    return customer_days_with_counts(raw[LOG_COLUMNS])


def load_apparel() -> pd.DataFrame:
    return load_transactions(APPAREL_PATH)


def load_online_retail() -> pd.DataFrame:
    return load_transactions(ONLINE_RETAIL_PATH)


def window_totals(days: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    """Spend and number of purchase days per customer in ``(start, end]`` (``start=None``: from the beginning)."""
    mask = days["date"] <= end
    if start is not None:
        mask &= days["date"] > start
    grouped = days.loc[mask].groupby("customer_id")["amount"]
    return pd.DataFrame({"spend": grouped.sum(), "transactions": grouped.size().astype(float)})


def rfm_summary(days: pd.DataFrame, calibration_end) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma inputs per customer at ``calibration_end``, indexed by ``customer_id``.

    ``frequency``: repeat purchase days; ``recency``: days from first to last purchase; ``T``: days from
    first purchase to ``calibration_end``; ``monetary``: mean spend over *repeat* purchase days (0 when
    there are none), the Gamma-Gamma convention.
    """
    cut = pd.Timestamp(calibration_end)
    cal = days.loc[days["date"] <= cut]
    grouped = cal.groupby("customer_id")
    first = grouped["date"].min()
    last = grouped["date"].max()
    n_days = grouped.size()
    total = grouped["amount"].sum()
    first_amount = grouped["amount"].first()  # days are sorted by date within a customer
    frequency = (n_days - 1).astype(float)
    repeat_total = total - first_amount
    monetary = np.where(frequency > 0, repeat_total / frequency.clip(lower=1), 0.0)
    return pd.DataFrame({
        "frequency": frequency,
        "recency": (last - first).dt.days.astype(float),
        "T": (cut - first).dt.days.astype(float),
        "monetary": monetary,
    }, index=first.index)


DECAY_DAYS = (30, 90, 365)
RECENT_WINDOW_DAYS = 90


def cutoff_features(days: pd.DataFrame, cut) -> pd.DataFrame:
    """Per-customer features at ``cut`` from rows on or before it, indexed by ``customer_id``.

    Built to be comparable across cut-offs, so that rows from several rolling origins can be stacked:
    rates per day of tenure, recency as a share of tenure, spend decayed by age rather than summed over a
    history whose length depends on the cut, and fixed-length recent windows.
    """
    cut = pd.Timestamp(cut)
    cal = days.loc[days["date"] <= cut].copy()
    cal["age"] = (cut - cal["date"]).dt.days.astype(float)  # days before the cut
    cal["gap"] = cal.groupby("customer_id")["date"].diff().dt.days
    grouped = cal.groupby("customer_id", sort=True)
    rfm = rfm_summary(days, cut)
    tenure = rfm["T"]
    n_days = grouped.size().astype(float)
    total = grouped["amount"].sum()
    features = pd.DataFrame(index=rfm.index)
    features["tenure_days"] = tenure
    features["days_since_last"] = tenure - rfm["recency"]
    # A customer first seen on the cut day has no tenure yet: NaN lets the trees learn a branch for it.
    features["recency_share"] = rfm["recency"] / tenure.where(tenure > 0)
    features["repeat_days"] = rfm["frequency"]
    features["purchase_days_per_day"] = rfm["frequency"] / tenure.clip(lower=1.0)
    features["spend_per_day"] = (total - grouped["amount"].first()) / tenure.clip(lower=1.0)
    features["mean_spend"] = total / n_days
    features["max_spend"] = grouped["amount"].max()
    features["first_amount"] = grouped["amount"].first()  # days are sorted by date within a customer
    features["last_amount"] = grouped["amount"].last()
    features["repeat_mean_spend"] = rfm["monetary"]
    gaps = grouped["gap"]
    features["mean_gap"] = gaps.mean()
    features["last_gap"] = gaps.last()
    features["overdue"] = features["days_since_last"] / features["mean_gap"]
    for tau in DECAY_DAYS:
        weight = np.exp(-cal["age"] / tau)
        features[f"decayed_spend_{tau}"] = (cal["amount"] * weight).groupby(cal["customer_id"]).sum()
        features[f"decayed_days_{tau}"] = weight.groupby(cal["customer_id"]).sum()
    recent = cal.loc[cal["age"] < RECENT_WINDOW_DAYS].groupby("customer_id")["amount"]
    features[f"days_last_{RECENT_WINDOW_DAYS}"] = recent.size().reindex(features.index, fill_value=0).astype(float)
    features[f"spend_last_{RECENT_WINDOW_DAYS}"] = recent.sum().reindex(features.index, fill_value=0.0)
    return features


def holdout_actuals(days: pd.DataFrame, customers: pd.Index, calibration_end, holdout_end) -> pd.DataFrame:
    """Actual holdout spend and purchase days for ``customers`` (zeros for those who did not buy)."""
    totals = window_totals(days, pd.Timestamp(calibration_end), pd.Timestamp(holdout_end))
    return totals.reindex(customers, fill_value=0.0)
