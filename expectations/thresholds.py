"""Every number a gate compares against, in one place.

Defaults are below; override any of them without a code change with ``NORTHSTAR_GATE_THRESHOLDS``,
either inline JSON (``{"landing_max_quarantined_ratio": 0.1}``) or the path of a JSON file holding
such an object. Unknown keys are an error (a typo must not silently keep the default).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

ENV_VAR = "NORTHSTAR_GATE_THRESHOLDS"


@dataclass(frozen=True)
class Thresholds:
    # --- landing ---------------------------------------------------------------------------
    # a delivered file whose quarantined share of records exceeds this fails the gate: a broker
    # file that is 40% garbage is an incident, not a footnote
    landing_max_quarantined_ratio: float = 0.20
    # above this (but under the critical bound) a file is reported as a warning
    landing_warn_quarantined_ratio: float = 0.01
    # a trade's own date against the business date in its file name: late files are normal,
    # trades dated after the file's business date or far before it are not
    landing_max_trade_date_lag_days: int = 31
    landing_max_trade_date_lead_days: int = 0
    # settlement after trade date by at most this many days (FX forwards settle months out)
    landing_max_settle_days: int = 400
    # no business date, trade date or billing period before this is plausible
    landing_min_plausible_date: str = "2000-01-01"
    # --- marts -----------------------------------------------------------------------------
    # share of null values allowed in a model feature over all cutoffs (critical) and at the
    # latest cutoff (warning: the scoring cutoff)
    marts_max_feature_null_rate: float = 0.25
    marts_max_core_feature_null_rate: float = 0.05
    # reconciliation, per business date (all brokers together)
    marts_min_match_rate: float = 0.95
    marts_warn_match_rate: float = 0.98
    marts_max_break_ratio: float = 0.05  # open breaks / items compared
    marts_warn_break_ratio: float = 0.02
    # freshness: hours since the newest landed row of each source (matches the dbt sources'
    # warn_after / error_after), against the run's logical time
    marts_salesforce_error_after_hours: float = 50.0
    marts_salesforce_warn_after_hours: float = 26.0
    marts_trades_error_after_hours: float = 26.0
    marts_trades_warn_after_hours: float = 4.0
    marts_billing_error_after_days: float = 62.0
    marts_billing_warn_after_days: float = 35.0
    # identity (domain ``identity``): a person with more records than any real client has, or a resolved
    # household spanning more Accounts than any real family's split, means the linker chained strangers
    # (critical); the person-size distribution moving by more than this (total variation distance
    # between the latest and the previous resolution run's shares of persons with 1, 2, 3, 4+ records)
    # is a warning: a new source or a changed rule does it too
    marts_identity_giant_person_records: int = 40
    marts_identity_giant_household_accounts: int = 5
    marts_identity_warn_size_shift: float = 0.05
    # --- scores ----------------------------------------------------------------------------
    # against the last pushed run (the latest earlier scoring run whose scores gate passed)
    scores_max_segment_share_shift: float = 0.10  # absolute, per segment
    scores_warn_segment_share_shift: float = 0.05
    scores_max_psi: float = 0.25  # population stability index of clv / attrition_probability
    scores_warn_psi: float = 0.10
    scores_max_row_count_change: float = 0.20  # relative change of households scored
    scores_psi_bins: int = 10

    def as_dict(self) -> dict:
        return asdict(self)


def load_thresholds(overrides: dict | None = None) -> Thresholds:
    """Defaults, then ``NORTHSTAR_GATE_THRESHOLDS``, then ``overrides`` (tests, CLI)."""
    merged: dict = {}
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        merged.update(json.loads(raw if raw.startswith("{") else Path(raw).read_text()))
    merged.update(overrides or {})
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ValueError(f"unknown gate thresholds {unknown}; known: {sorted(known)}")
    return replace(Thresholds(), **merged)
