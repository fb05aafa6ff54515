"""CLV, value x risk segments and the advisor-readable top drivers.

CLV over a multi-year horizon (``horizon_years`` H, default 5; annual ``discount_rate`` d, default 8%):

    CLV = sum_{t=1..H} R * s^(t-1) / (1 + d)^t

with R the predicted revenue of the next 12 months (already net of attrition within year 1, since the
regressor learns the expected fees billed, zeros included) and s = 1 - p the annual retention from the
attrition classifier, assumed constant over later years. Fees are treated as flat in real terms (no
growth term): growth is what the value model would have to prove first.

Segments (names are read in Salesforce; never rename them):

| segment | rule (checked in this order) |
|---|---|
| At-Risk Retention Priority | attrition probability >= ``risk_threshold`` (0.25) and value percentile >= ``core_percentile`` (40) |
| High-Value Growth Potential | value percentile >= ``high_value_percentile`` (80) |
| Core - Maintain | value percentile >= ``core_percentile`` (40) |
| Service Efficiently | everyone else (the lower 40% by CLV, whatever their risk) |

Value percentile = the household's CLV rank among the households scored in the same run (0..100).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HIGH_VALUE_GROWTH = "High-Value Growth Potential"
AT_RISK = "At-Risk Retention Priority"
CORE = "Core - Maintain"
SERVICE_EFFICIENTLY = "Service Efficiently"
SEGMENTS = (HIGH_VALUE_GROWTH, AT_RISK, CORE, SERVICE_EFFICIENTLY)


@dataclass(frozen=True)
class ValuePolicy:
    horizon_years: int = 5
    discount_rate: float = 0.08
    high_value_percentile: float = 80.0
    core_percentile: float = 40.0
    risk_threshold: float = 0.25

    def as_dict(self) -> dict:
        return dict(self.__dict__)


DEFAULT_POLICY = ValuePolicy()


def clv(revenue_12m, attrition_probability, policy: ValuePolicy = DEFAULT_POLICY) -> np.ndarray:
    revenue = np.clip(np.asarray(revenue_12m, dtype=float), 0.0, None)
    survival = 1.0 - np.clip(np.asarray(attrition_probability, dtype=float), 0.0, 1.0)
    years = np.arange(1, policy.horizon_years + 1, dtype=float)
    factors = survival[:, None] ** (years - 1) / (1.0 + policy.discount_rate) ** years
    return revenue * factors.sum(axis=1)


def value_percentile(values) -> np.ndarray:
    """0..100 by average rank (ties share a percentile); the highest value scores 100."""
    series = pd.Series(np.asarray(values, dtype=float))
    if len(series) == 1:
        return np.array([100.0])
    return ((series.rank(method="average") - 1) / (len(series) - 1) * 100.0).to_numpy()


def assign_segments(percentile, attrition_probability, policy: ValuePolicy = DEFAULT_POLICY) -> np.ndarray:
    pct = np.asarray(percentile, dtype=float)
    risk = np.asarray(attrition_probability, dtype=float)
    return np.select(
        [(risk >= policy.risk_threshold) & (pct >= policy.core_percentile),
         pct >= policy.high_value_percentile,
         pct >= policy.core_percentile],
        [AT_RISK, HIGH_VALUE_GROWTH, CORE], default=SERVICE_EFFICIENTLY).astype(object)


def transitions(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Households per (previous segment, current segment) between two runs (``household_id``, ``segment``);
    new households count under previous segment ``(new)``."""
    merged = current[["household_id", "segment"]].merge(
        previous[["household_id", "segment"]].rename(columns={"segment": "previous_segment"}),
        on="household_id", how="left")
    merged["previous_segment"] = merged["previous_segment"].fillna("(new)")
    return (merged.groupby(["previous_segment", "segment"]).size().rename("households").reset_index())


# ---------------------------------------------------------------- drivers

# How an advisor reads each model input: (label, value format).
DRIVER_LABELS = {
    "tenure_years": ("years as a client", "{:.1f}"),
    "fee_schedule_bps": ("contracted fee", "{:.0f} bps"),
    "open_account_count": ("open accounts", "{:.0f}"),
    "aum_at_cutoff": ("assets under management", "${:,.0f}"),
    "aum_avg_3m": ("average assets, last 3 months", "${:,.0f}"),
    "aum_avg_12m": ("average assets, last 12 months", "${:,.0f}"),
    "aum_growth_12m": ("asset growth over 12 months", "{:+.0%}"),
    "fees_3m": ("fees billed, last 3 months", "${:,.0f}"),
    "fees_12m": ("fees billed, last 12 months", "${:,.0f}"),
    "net_flows_3m": ("net deposits, last 3 months", "${:,.0f}"),
    "net_flows_12m": ("net deposits, last 12 months", "${:,.0f}"),
    "fee_bps_trailing_12m": ("effective fee rate", "{:.0f} bps"),
    "calls_90d": ("calls, last 90 days", "{:.0f}"),
    "calls_365d": ("calls, last year", "{:.0f}"),
    "emails_90d": ("emails, last 90 days", "{:.0f}"),
    "emails_365d": ("emails, last year", "{:.0f}"),
    "meetings_90d": ("meetings, last 90 days", "{:.0f}"),
    "meetings_365d": ("meetings, last year", "{:.0f}"),
    "cases_90d": ("service cases, last 90 days", "{:.0f}"),
    "cases_365d": ("service cases, last year", "{:.0f}"),
    "complaints_90d": ("complaints, last 90 days", "{:.0f}"),
    "complaints_365d": ("complaints, last year", "{:.0f}"),
    "open_cases_at_cutoff": ("open service cases", "{:.0f}"),
    "days_since_last_interaction": ("days since last contact", "{:.0f}"),
    "open_opportunities": ("open opportunities", "{:.0f}"),
    "opportunities_created_365d": ("new opportunities, last year", "{:.0f}"),
    "won_opportunity_amount_365d": ("won opportunities, last year", "${:,.0f}"),
    "aum_band_code": ("AUM band", None),
    "age_band_code": ("client age band", None),
    "risk_profile_code": ("risk profile", None),
    "is_active": ("has open accounts", None),
    "net_flow_ratio_12m": ("net deposits vs assets, 12 months", "{:+.0%}"),
    "fees_3m_annualised_ratio": ("recent fees vs the 12-month run rate", "{:.2f}x"),
}


def _format_value(feature: str, value: float) -> str:
    from ml.client_value.features import AGE_BANDS, AUM_BANDS, RISK_PROFILES

    if value != value:  # NaN
        return "none on record"
    label_format = DRIVER_LABELS.get(feature, (feature, "{:.2f}"))[1]
    if feature in {"aum_band_code", "age_band_code", "risk_profile_code"}:
        levels = {"aum_band_code": AUM_BANDS, "age_band_code": AGE_BANDS, "risk_profile_code": RISK_PROFILES}[feature]
        return levels[int(value)] if 0 <= int(value) < len(levels) else "unknown"
    if feature == "is_active":
        return "yes" if value > 0 else "no"
    return label_format.format(value)


def _formatted(feature: str, values: np.ndarray) -> list[str]:
    """``_format_value`` over an array (one format string per feature, so the loop stays cheap)."""
    if feature in {"aum_band_code", "age_band_code", "risk_profile_code", "is_active"}:
        return [_format_value(feature, v) for v in values]
    fmt = DRIVER_LABELS.get(feature, (feature, "{:.2f}"))[1] or "{:.2f}"
    return ["none on record" if v != v else fmt.format(v) for v in values.tolist()]


def driver_texts(contributions: np.ndarray, features: pd.DataFrame, raises: str, lowers: str,
                 top: int = 3) -> list[str]:
    """The ``top`` inputs with the largest absolute contribution per row, as '; '-joined short phrases.

    ``contributions`` is XGBoost's ``pred_contribs`` output (n x (features + 1), bias last), in the
    model's margin units; ``raises``/``lowers`` name the effect of a positive/negative contribution.
    Inputs with a zero contribution are left out.
    """
    contribs = contributions[:, :-1]
    names = list(features.columns)
    n = contribs.shape[0]
    k = min(top, contribs.shape[1])
    if n == 0:
        return []
    order = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :k]
    values = features.to_numpy(dtype=float)
    rows = np.arange(n)
    parts = []
    for rank in range(k):
        picks = order[:, rank]
        picked = contribs[rows, picks]
        text = np.full(n, "", dtype=object)
        for j in np.unique(picks):
            idx = np.flatnonzero(picks == j)
            label = DRIVER_LABELS.get(names[j], (names[j], None))[0]
            shown = _formatted(names[j], values[idx, j])
            effect = np.where(picked[idx] > 0, f" ({raises})", f" ({lowers})")
            text[idx] = [f"{label}: {v}{e}" for v, e in zip(shown, effect, strict=True)]
        text[picked == 0] = ""
        parts.append(text)
    joined = []
    for items in zip(*parts, strict=True):
        kept = [t for t in items if t]
        joined.append("; ".join(kept) if kept else "no strong drivers")
    return joined
