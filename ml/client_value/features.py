"""Household features for the client-value models, read from the point-in-time mart.

``fct_household_features`` has one row per household x ``cutoff_on``; every feature of a row uses
only what was known by the end of its cutoff (the mart's own contract, proven by
tests/ml/test_no_leakage.py). This module owns:

* which mart columns are model inputs (``FEATURE_COLUMNS``) and how the three ordered categories
  (AUM band, age band, risk profile) become numbers (fixed code lists, so a code never changes meaning
  between runs);
* the rolling-origin split: the *holdout* is the latest cutoff whose 12-month label window is complete;
  training uses the earlier cutoffs whose label windows end on or before the holdout cutoff (so no
  training label overlaps the holdout's outcome window), every ``cutoff_step_months`` months;
* the lineage of a feature read: the snapshot hash and the cutoffs.

The scoring cutoff is the mart's latest ``cutoff_on`` that has billing data (labels still incomplete there).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import northstar.warehouse
from northstar.settings import Settings, settings

AUM_BANDS = ["<250K", "250K-1M", "1M-5M", "5M-25M", "25M+"]
AGE_BANDS = ["under_40", "40_54", "55_64", "65_74", "75_plus"]
RISK_PROFILES = ["Conservative", "Moderate", "Balanced", "Growth", "Aggressive"]
ORDINALS = {
    "aum_band": ("aum_band_code", AUM_BANDS),
    "primary_contact_age_band": ("age_band_code", AGE_BANDS),
    "risk_profile": ("risk_profile_code", RISK_PROFILES),
}

NUMERIC_COLUMNS = [
    "tenure_years", "fee_schedule_bps", "open_account_count", "aum_at_cutoff", "aum_avg_3m", "aum_avg_12m",
    "aum_growth_12m", "fees_3m", "fees_12m", "net_flows_3m", "net_flows_12m", "fee_bps_trailing_12m",
    "calls_90d", "calls_365d", "emails_90d", "emails_365d", "meetings_90d", "meetings_365d", "cases_90d",
    "cases_365d", "complaints_90d", "complaints_365d", "open_cases_at_cutoff", "days_since_last_interaction",
    "open_opportunities", "opportunities_created_365d", "won_opportunity_amount_365d",
]
# Derived in ``model_matrix`` from mart columns of the same row (no other data).
DERIVED_COLUMNS = ["is_active", "net_flow_ratio_12m", "fees_3m_annualised_ratio"]
FEATURE_COLUMNS = NUMERIC_COLUMNS + [code for code, _ in ORDINALS.values()] + DERIVED_COLUMNS

LABEL_REVENUE = "revenue_next_12m"
LABEL_ATTRITION = "is_attrited_within_12m"
SEGMENT_COLUMNS = ["aum_band", "primary_contact_age_band", "advisor_id"]


def connect(cfg: Settings | None = None, read_only: bool = True) -> northstar.warehouse.Warehouse:
    """The warehouse on the configured engine (``northstar.warehouse.open_warehouse``)."""
    return northstar.warehouse.open_warehouse(read_only=read_only, cfg=cfg or settings())


def available_cutoffs(cfg: Settings | None = None) -> pd.DataFrame:
    """Every cutoff in the mart with its household count and whether its label window is complete."""
    with connect(cfg) as warehouse:
        return warehouse.frame("""
            select
                cutoff_on,
                count(*) as households,
                bool_and(is_label_window_complete) as complete,
                count(aum_at_cutoff) > 0 as has_billing
            from {fct_household_features} group by cutoff_on order by cutoff_on
        """)


# Model selection happens inside the training cutoffs: validated at the latest training cutoff, fitted on cutoffs
# whose 12-month label windows end by it. A mart too short for that gap gets the shorter one (label windows then
# overlap the validation window by 12 - gap months; the model card says so). Never the holdout.
VALIDATION_GAPS_MONTHS = (12, 6)


@dataclass(frozen=True)
class CutoffPlan:
    train: list[pd.Timestamp]
    holdout: pd.Timestamp
    scoring: pd.Timestamp
    validation: pd.Timestamp | None = None  # the latest training cutoff, where candidates are compared
    validation_train: list[pd.Timestamp] = field(default_factory=list)  # what candidates are fitted on there
    validation_gap_months: int | None = None

    def as_dict(self) -> dict:
        return {"train_cutoffs": [str(c.date()) for c in self.train], "holdout_cutoff": str(self.holdout.date()),
                "scoring_cutoff": str(self.scoring.date()),
                "validation_cutoff": str(self.validation.date()) if self.validation is not None else None,
                "validation_train_cutoffs": [str(c.date()) for c in self.validation_train],
                "validation_gap_months": self.validation_gap_months}


def _every(cutoffs: list[pd.Timestamp], step_months: int, limit: int | None) -> list[pd.Timestamp]:
    """Every ``step_months``-th cutoff counted back from the latest, at most ``limit`` of them."""
    picked = cutoffs[::-1][::max(1, step_months)][::-1]
    return picked[-limit:] if limit else picked


def plan_cutoffs(cutoffs: pd.DataFrame, step_months: int = 1, max_train_cutoffs: int | None = None) -> CutoffPlan:
    """Rolling origins: holdout = latest complete cutoff; training cutoffs end their label window by it."""
    dates = pd.to_datetime(cutoffs["cutoff_on"])
    complete = sorted(dates[cutoffs["complete"].astype(bool).to_numpy()])
    if not complete:
        raise ValueError("no cutoff in the feature mart has a complete 12-month label window yet")
    holdout = complete[-1]
    latest_train = holdout - pd.DateOffset(months=12)
    eligible = [c for c in complete if c <= latest_train + pd.offsets.MonthEnd(0)]
    if not eligible:
        raise ValueError(f"no training cutoff ends its label window by the holdout {holdout.date()}: "
                         "the mart needs at least 25 months of cutoffs")
    train = _every(eligible, step_months, max_train_cutoffs)  # count back from the latest eligible one
    validation, validation_train, gap = None, [], None
    for months in VALIDATION_GAPS_MONTHS:
        latest_fit = train[-1] - pd.DateOffset(months=months)
        fit = [c for c in complete if c <= latest_fit + pd.offsets.MonthEnd(0)]
        if fit:
            validation, validation_train, gap = train[-1], _every(fit, step_months, max_train_cutoffs), months
            break
    # A cutoff whose feature month has no billing statement yet (the mart's calendar month end after the
    # last statement, e.g. 2026-10-31 when billing ran to 2026-10-30) has every household inactive and no
    # AUM: score at the latest cutoff that has billing instead.
    billed = dates[cutoffs["has_billing"].astype(bool).to_numpy()] if "has_billing" in cutoffs else dates
    return CutoffPlan(train=train, holdout=holdout, scoring=billed.max(), validation=validation,
                      validation_train=validation_train, validation_gap_months=gap)


def load_features(cutoffs: list[pd.Timestamp], cfg: Settings | None = None,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Mart rows at ``cutoffs`` (with the household's advisor for the fairness view), sorted by key."""
    dates = sorted({pd.Timestamp(c).date() for c in cutoffs})
    wanted = ", ".join("?" for _ in dates) or "null"
    with connect(cfg) as warehouse:
        frame = warehouse.frame(f"""
            select f.*, h.advisor_id
            from {{fct_household_features}} as f
            left join {{dim_households}} as h on f.household_id = h.household_id
            where f.cutoff_on in ({wanted})
            order by f.cutoff_on, f.household_id
        """, dates)  # noqa: S608 - one placeholder per date
    frame["cutoff_on"] = pd.to_datetime(frame["cutoff_on"])
    return frame[columns] if columns else frame


def model_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model inputs (``FEATURE_COLUMNS``, float) of mart rows."""
    out = pd.DataFrame(index=frame.index)
    for column in NUMERIC_COLUMNS:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for source, (code, levels) in ORDINALS.items():
        mapping = {level: float(i) for i, level in enumerate(levels)}
        out[code] = frame[source].map(mapping).astype(float)  # unknown / missing -> NaN
    out["is_active"] = frame["is_active_at_cutoff"].fillna(False).astype(float)
    aum = out["aum_avg_12m"].where(out["aum_avg_12m"] > 0)
    out["net_flow_ratio_12m"] = out["net_flows_12m"] / aum
    out["fees_3m_annualised_ratio"] = (4 * out["fees_3m"]) / out["fees_12m"].where(out["fees_12m"] > 0)
    return out[FEATURE_COLUMNS]


def snapshot_hash(frame: pd.DataFrame) -> str:
    """A content hash of the feature rows read (order-independent over rows, sensitive to every value)."""
    keyed = frame.sort_values(["cutoff_on", "household_id"], kind="stable").reset_index(drop=True)
    row_hashes = pd.util.hash_pandas_object(keyed, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(",".join(map(str, keyed.columns)).encode())
    return digest.hexdigest()[:16]


def latest_dbt_invocation_id(cfg: Settings | None = None) -> str | None:
    """The invocation id of the last dbt run that wrote ``run_results.json`` in the target folder."""
    import json

    cfg = cfg or settings()
    path = cfg.paths.dbt_target_dir / "run_results.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["metadata"]["invocation_id"]
    except (KeyError, ValueError):
        return None


@dataclass
class TrainingData:
    """The rows the client-value models learn from and are judged on."""
    plan: CutoffPlan
    train: pd.DataFrame
    holdout: pd.DataFrame
    snapshot_hash: str
    dbt_invocation_id: str | None
    extra: dict = field(default_factory=dict)
    validation_train: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows at plan.validation_train

    @property
    def validation(self) -> pd.DataFrame:
        """Training rows at the validation cutoff (empty when the mart is too short to validate)."""
        if self.plan.validation is None:
            return self.train.iloc[0:0]
        return self.train.loc[self.train["cutoff_on"] == self.plan.validation].reset_index(drop=True)

    def lineage(self) -> dict:
        return {**self.plan.as_dict(), "feature_snapshot_hash": self.snapshot_hash,
                "dbt_invocation_id": self.dbt_invocation_id or "unknown",
                "train_rows": len(self.train), "holdout_rows": len(self.holdout)}


def training_data(cfg: Settings | None = None, step_months: int = 1, max_train_cutoffs: int | None = None,
                  dbt_invocation_id: str | None = None) -> TrainingData:
    plan = plan_cutoffs(available_cutoffs(cfg), step_months, max_train_cutoffs)
    frame = load_features(sorted({*plan.validation_train, *plan.train, plan.holdout}), cfg)
    frame = frame.loc[frame["is_label_window_complete"].fillna(False).astype(bool)]
    holdout = frame.loc[frame["cutoff_on"] == plan.holdout].reset_index(drop=True)
    train = frame.loc[frame["cutoff_on"].isin(plan.train)].reset_index(drop=True)
    validation_train = frame.loc[frame["cutoff_on"].isin(plan.validation_train)].reset_index(drop=True)
    return TrainingData(plan, train, holdout, snapshot_hash(frame),
                        dbt_invocation_id or latest_dbt_invocation_id(cfg), validation_train=validation_train)


def household_months(until: pd.Timestamp, cfg: Settings | None = None) -> pd.DataFrame:
    """Monthly fee billings up to ``until`` as a transaction log (customer_id, date, amount > 0).

    The BG/NBD + Gamma-Gamma baseline needs purchase events; a household's "purchase" is a month in
    which it was billed a fee (dated at the month end, amount = fees billed). Months with no fee are not
    events, so a household that closed its accounts stops "purchasing".
    """
    with connect(cfg) as warehouse:
        log = warehouse.frame("""
            select household_id as customer_id, month_end_on as date, sum(fees_billed) as amount
            from {fct_household_months}
            where month_end_on <= ? and fees_billed > 0
            group by household_id, month_end_on order by 1, 2
        """, [pd.Timestamp(until).date()])
    log["date"] = pd.to_datetime(log["date"])
    return log


def clip_nonnegative(values) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=float), 0.0, None)
