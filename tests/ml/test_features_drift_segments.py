"""Unit tests: rolling-origin cutoff plan, PSI, CLV formula, segment rules, driver texts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import drift
from ml.client_value import segments
from ml.client_value.features import plan_cutoffs

pytestmark = pytest.mark.unit


def test_cutoff_plan_holdout_is_latest_complete_and_training_windows_end_before_it():
    months = pd.date_range("2023-01-31", periods=36, freq="ME")
    cutoffs = pd.DataFrame({"cutoff_on": months, "complete": [True] * 24 + [False] * 12,
                            "has_billing": [True] * 35 + [False]})
    plan = plan_cutoffs(cutoffs, step_months=3)
    assert plan.holdout == months[23]
    assert plan.scoring == months[34]
    assert max(plan.train) + pd.DateOffset(months=12) <= plan.holdout
    assert max(plan.train) == months[11] and all(b - a > pd.Timedelta(days=80)
                                                 for a, b in zip(plan.train, plan.train[1:], strict=False))
    with pytest.raises(ValueError):
        plan_cutoffs(cutoffs.assign(complete=False))


def test_psi_is_zero_for_the_same_population_and_flags_a_shift():
    rng = np.random.default_rng(1)
    reference = drift.reference_bins(rng.normal(size=5000))
    assert drift.psi(reference, rng.normal(size=5000)) < 0.02
    shifted = drift.psi(reference, rng.normal(loc=1.0, size=5000))
    assert shifted > drift.RETRAIN_PSI and drift.status(shifted) == "retrain"
    with_missing = np.where(rng.random(5000) < 0.3, np.nan, rng.normal(size=5000))
    assert drift.psi(reference, with_missing) > drift.WARN_PSI


def test_clv_formula_and_segments():
    policy = segments.ValuePolicy(horizon_years=3, discount_rate=0.10)
    value = segments.clv([1000.0, 1000.0], [0.0, 0.5], policy)
    assert value[0] == pytest.approx(1000 / 1.1 + 1000 / 1.1 ** 2 + 1000 / 1.1 ** 3)
    assert value[1] == pytest.approx(1000 / 1.1 + 500 / 1.1 ** 2 + 250 / 1.1 ** 3)
    pct = np.array([95.0, 95.0, 50.0, 10.0, 10.0])
    risk = np.array([0.05, 0.60, 0.05, 0.90, 0.05])
    assert list(segments.assign_segments(pct, risk)) == [
        segments.HIGH_VALUE_GROWTH, segments.AT_RISK, segments.CORE,
        segments.SERVICE_EFFICIENTLY, segments.SERVICE_EFFICIENTLY]
    assert segments.value_percentile([3.0, 1.0, 2.0]).tolist() == [100.0, 0.0, 50.0]
    moves = segments.transitions(pd.DataFrame({"household_id": ["a", "b"], "segment": ["x", "y"]}),
                                 pd.DataFrame({"household_id": ["a", "b", "c"], "segment": ["x", "x", "x"]}))
    assert dict(zip(moves["previous_segment"], moves["households"], strict=True)) == {"(new)": 1, "x": 1, "y": 1}


def test_driver_texts_pick_the_largest_contributions():
    features = pd.DataFrame({"fees_12m": [12000.0], "complaints_90d": [2.0], "tenure_years": [7.5],
                             "aum_band_code": [3.0]})
    contribs = np.array([[0.9, -1.2, 0.1, 0.3, 5.0]])  # last column: bias
    text = segments.driver_texts(contribs, features, "raises value", "lowers value")[0]
    assert text == ("complaints, last 90 days: 2 (lowers value); fees billed, last 12 months: $12,000 "
                    "(raises value); AUM band: 5M-25M (raises value)")
